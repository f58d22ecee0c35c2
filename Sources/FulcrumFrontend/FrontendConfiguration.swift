import FulcrumMetrics
import FulcrumService

/// Everything a frontend needs to start, read once from flags by `fulcrum-frontend`.
public struct FrontendConfiguration: Sendable {
    /// Where the public gRPC inference service listens.
    public var grpc: HostPort
    /// Where the HTTP/REST form of the inference protocol listens (Triton's default port is
    /// 8000); nil serves gRPC only.
    public var http: HostPort?
    /// The balancer whose pool snapshots route requests.
    public var balancer: HostPort
    /// The largest request or response message accepted (larger requests get RESOURCE_EXHAUSTED).
    public var maxMessageBytes: Int
    /// An id for logs and the balancer's status.
    public var id: String
    /// If set, the bound addresses are written here as JSON once listening.
    public var addressFile: String?
    /// Stop when the parent process goes away.
    public var exitWithParent: Bool
    /// Where to serve Prometheus metrics (nil: no metrics endpoint).
    public var metrics: MetricsSettings?
    /// Where finished spans go (none by default; `traceparent` is propagated either way).
    public var tracing: TracingSettings
    /// Whether repository load/unload calls are allowed (off by default).
    public var modelControl: ModelControl = .disabled
    /// Predictions held at once (gRPC and HTTP together) before new ones are refused with
    /// RESOURCE_EXHAUSTED / 429.
    public var maxInFlight = 2048
    /// Bytes of request tensors held at once before new requests are refused (nil: an eighth of
    /// the machine's memory, at most 1 GiB).
    public var maxInFlightBytes: Int? = nil
    /// `--admission`: how the request limit is set.
    public var admission = AdmissionMode.adaptive
    /// `--admission-tolerance`: with adaptive admission, how many times its floor latency an
    /// answer may take and still count as prompt (the limit falls while fewer than half are).
    public var admissionTolerance = 2.0
    /// Connections, timeouts and bytes still arriving, for the gRPC edge (the idle timeout also
    /// for HTTP).
    public var edgeLimits = EdgeLimits()
    /// The model repository whose pipelines and processors this frontend runs
    /// (`--model-repository`); nil: none.
    public var modelRepository: String? = nil
    /// Where and how much to record of the predictions (`--prediction-log`; nil: nothing).
    public var predictionLog: PredictionLog.Settings? = nil
    /// The processor kinds config.pbtxt may name: the built-in ones, and a custom frontend's own.
    public var processors: [ProcessorKind] = ProcessorKind.builtIn
    /// The API keys file (`--api-keys`); nil: no keys needed.
    public var apiKeysFile: String? = nil
    /// The cluster's mutual TLS for the connections to workers and the balancer (nil: plaintext).
    public var tls: ClusterTLS? = nil
    /// TLS on the public gRPC and HTTP ports (`--edge-tls-cert`, `--edge-tls-key`); nil: plaintext.
    public var edgeTLS: EdgeTLSFiles? = nil

    /// The certificate and key files of the public ports' TLS.
    public struct EdgeTLSFiles: Sendable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    public init(
        grpc: HostPort = HostPort(host: "127.0.0.1", port: 8001),
        tracing: TracingSettings = TracingSettings(),
        http: HostPort? = nil,
        balancer: HostPort = HostPort(host: "127.0.0.1", port: 7000),
        maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes,
        id: String = "",
        addressFile: String? = nil,
        exitWithParent: Bool = false,
        metrics: MetricsSettings? = nil
    ) {
        self.metrics = metrics
        self.tracing = tracing
        self.grpc = grpc
        self.http = http
        self.balancer = balancer
        self.maxMessageBytes = maxMessageBytes
        self.id = id
        self.addressFile = addressFile
        self.exitWithParent = exitWithParent
    }
}

/// How the frontend's request limit is set (`--admission`).
public enum AdmissionMode: String, Sendable, CaseIterable {
    /// `--max-inflight`, fixed.
    case `static`
    /// `--max-inflight` until requests in flight keep growing while answers queue (an overload,
    /// not a closed loop); then moved by the latencies seen (`ConcurrencyLimit`) until nothing
    /// needs refusing. The default.
    case adaptive
}

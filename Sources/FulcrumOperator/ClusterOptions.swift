import FulcrumService

/// What `fulcrum up` starts: a balancer, one frontend and `workers` workers on `host`.
public struct ClusterOptions: Sendable {
    public var modelRepository: String
    public var workers: Int
    public var host: String
    public var grpcPort: Int
    /// The frontend's HTTP/REST port (0 picks a free one).
    public var httpPort: Int
    public var balancerPort: Int
    public var maxMessageBytes: Int
    /// Compute threads per worker (OpenBLAS); default splits the cores between the workers.
    public var threadsPerWorker: Int
    /// Where to write the endpoints as JSON once ready.
    public var endpointsFile: String?
    /// The folder holding the fulcrum-* executables.
    public var binDirectory: String
    /// How long to wait for the whole cluster to become ready.
    public var startTimeout: Duration
    public var logLevel: String
    /// The autoscaler may grow the pool up to this many workers (default: `workers`, a fixed pool).
    public var maxWorkers: Int
    /// `fulcrum-worker --emulate` profile for every worker (capacity experiments).
    public var emulate: String?
    /// Every worker's `--backend` (`cpu` or `vulkan`) and, for vulkan, `--device`.
    public var backend = "cpu"
    public var device = 0
    /// Every worker's `--backend emulated --profile` file (a rehearsal).
    public var profile: String?
    /// More `fulcrum-balancer` arguments (autoscaler settings).
    public var balancerArguments: [String]
    /// Every service serves Prometheus metrics on a free port (listed in the endpoints).
    public var metrics: Bool
    /// The frontend's and every worker's `--trace-file` / `--otlp-endpoint` (one file for all:
    /// each span is one appended line).
    public var tracing = TracingSettings()
    /// `--model-control` and `--admin-token-file` for the frontend and every worker (empty: off).
    public var modelControlArguments: [String] = []
    /// More `fulcrum-frontend` arguments (`--api-keys`, `--edge-tls-*`).
    public var frontendArguments: [String] = []
    /// The frontend's public ports serve TLS (`--edge-tls-*` among `frontendArguments`): the
    /// readiness check then speaks TLS to it too.
    public var edgeTLS = false
    /// Plaintext between the tiers; by default the cluster gets a throwaway CA and mutual TLS.
    public var insecure = false

    public init(
        modelRepository: String, workers: Int, host: String, grpcPort: Int, balancerPort: Int,
        maxMessageBytes: Int, threadsPerWorker: Int, endpointsFile: String?, binDirectory: String,
        startTimeout: Duration, logLevel: String, httpPort: Int = 8000, maxWorkers: Int? = nil, emulate: String? = nil,
        balancerArguments: [String] = [], metrics: Bool = false
    ) {
        self.metrics = metrics
        self.maxWorkers = max(maxWorkers ?? workers, workers)
        self.emulate = emulate
        self.balancerArguments = balancerArguments
        self.modelRepository = modelRepository
        self.workers = workers
        self.host = host
        self.grpcPort = grpcPort
        self.httpPort = httpPort
        self.balancerPort = balancerPort
        self.maxMessageBytes = maxMessageBytes
        self.threadsPerWorker = threadsPerWorker
        self.endpointsFile = endpointsFile
        self.binDirectory = binDirectory
        self.startTimeout = startTimeout
        self.logLevel = logLevel
    }
}

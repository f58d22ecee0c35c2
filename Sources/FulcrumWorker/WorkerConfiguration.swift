import FulcrumKernels
import FulcrumMetrics
import FulcrumRuntime
import FulcrumService

/// Everything a worker needs to start, read once from flags by `fulcrum-worker` and validated
/// before anything listens.
public struct WorkerConfiguration: Sendable {
    /// The model repository in Triton's layout (`<repo>/<model>/config.pbtxt`, `<repo>/<model>/<version>/model.onnx`).
    public var modelRepository: String
    /// Where the inference service listens (port 0 picks a free port).
    public var listen: HostPort
    /// The address frontends should use; defaults to the bound address (set it behind NAT or in pods).
    public var advertise: HostPort?
    /// The balancer to join; nil runs the worker standalone (still serving its port).
    public var balancer: HostPort?
    /// A stable name for logs and status (the balancer assigns the worker id).
    public var name: String
    /// The zone reported to the balancer, for zone-aware routing.
    public var zone: String
    /// Compute threads for the CPU backend (OpenBLAS and the runtime's own kernels).
    public var threads: Int
    /// The largest request or response message accepted.
    public var maxMessageBytes: Int
    /// If set, the bound address is written here as JSON once the server listens.
    public var addressFile: String?
    /// Stop when the parent process goes away (used by `fulcrum up` and the process scaler).
    public var exitWithParent: Bool
    /// How long a stopping worker keeps serving after telling the balancer it is draining, so that
    /// frontends stop routing to it before its port closes.
    public var drainGrace: Duration
    /// Replace model execution by waits of this profile (capacity experiments; `EmulationProfile`).
    public var emulation: EmulationProfile?
    /// Where models run: the CPU, or a Vulkan device (`--backend vulkan --device N`); a model's
    /// `instance_group` kind can override it.
    public var backend: DevicePlacement.Backend = .cpu
    /// With a Vulkan backend: run the models on the CPU instead when no device can be opened
    /// (`--cpu-fallback`), rather than exiting.
    public var cpuFallback = false
    /// The CPU kernels `CPUKernelSelection.establish` settled on (nil: not chosen, OpenBLAS's own).
    public var cpuKernels: CPUKernelChoice?
    /// Where to serve Prometheus metrics (nil: no metrics endpoint).
    public var metrics: MetricsSettings?
    /// Where finished spans go (none by default; `traceparent` is propagated either way).
    public var tracing = TracingSettings()
    /// Whether repository load/unload calls are allowed (off by default; the balancer's
    /// placement does not need them).
    public var modelControl: ModelControl = .disabled
    /// The cluster's mutual TLS for the inference port and the balancer link (nil: plaintext).
    public var tls: ClusterTLS?

    /// What the worker reports as its backend.
    public var backendName: String {
        if emulation != nil { return "emulated" }
        if case .vulkan = backend { return "vulkan" }
        return "cpu"
    }

    public init(
        modelRepository: String,
        listen: HostPort = HostPort(host: "127.0.0.1", port: 0),
        advertise: HostPort? = nil,
        balancer: HostPort? = nil,
        name: String = "",
        zone: String = "",
        threads: Int = 1,
        maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes,
        addressFile: String? = nil,
        exitWithParent: Bool = false,
        drainGrace: Duration = .milliseconds(600),
        emulation: EmulationProfile? = nil,
        metrics: MetricsSettings? = nil
    ) {
        self.metrics = metrics
        self.emulation = emulation
        self.modelRepository = modelRepository
        self.listen = listen
        self.advertise = advertise
        self.balancer = balancer
        self.name = name
        self.zone = zone
        self.threads = threads
        self.maxMessageBytes = maxMessageBytes
        self.addressFile = addressFile
        self.exitWithParent = exitWithParent
        self.drainGrace = drainGrace
    }
}

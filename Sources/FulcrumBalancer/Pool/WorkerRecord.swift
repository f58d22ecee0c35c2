/// A pool member as the balancer's registry, placement, autoscaler and scalers see it: where it
/// serves, on what, in what state, what it hosts and how loaded it was at its last report. Kept
/// by `Registry`; mapped to the wire's `WorkerInfo` only where the pool is published
/// (`Pool+Wire.swift`).
public struct WorkerRecord: Sendable, Equatable {
    /// Where a worker is in its life. Only READY workers are routed to.
    public enum State: Sendable, Equatable {
        /// The worker said nothing the balancer knows.
        case unspecified
        /// Joined, loading models.
        case starting
        /// Serving.
        case ready
        /// Finishing in-flight and queued work before it stops.
        case draining
        /// Alive but unable to serve (for example a lost device).
        case unready
    }

    /// The device a worker computes on, as it describes it.
    public struct Device: Sendable, Equatable {
        public var name: String
        public var vendor: String
        public var driver: String
        /// Memory for model weights; 0 when unknown.
        public var memoryBytes: UInt64

        public init(name: String = "", vendor: String = "", driver: String = "", memoryBytes: UInt64 = 0) {
            self.name = name
            self.vendor = vendor
            self.driver = driver
            self.memoryBytes = memoryBytes
        }
    }

    /// The id the registry gave it (its name when that was free).
    public var id: String
    /// host:port where frontends reach its inference service.
    public var address: String
    public var zone: String
    /// cpu, vulkan, emulated.
    public var backend: String
    public var device: Device
    public var pid: Int32
    /// The name the operator or the scaler chose, may be empty.
    public var name: String
    /// host:port of its Prometheus endpoint; empty when it serves none.
    public var metricsAddress: String
    public var state: State
    public var models: [HostedModel]
    /// Its load at its last report; nil before its first.
    public var lastLoad: WorkerLoad?
    /// Wall-clock times of its join and its last report, ms since 1970.
    public var joinedUnixMs: Int64
    public var lastReportUnixMs: Int64

    public init(
        id: String, address: String, zone: String = "", backend: String = "", device: Device = Device(), pid: Int32 = 0, name: String = "",
        metricsAddress: String = "", state: State = .starting, models: [HostedModel] = [], lastLoad: WorkerLoad? = nil,
        joinedUnixMs: Int64 = 0, lastReportUnixMs: Int64 = 0
    ) {
        self.id = id
        self.address = address
        self.zone = zone
        self.backend = backend
        self.device = device
        self.pid = pid
        self.name = name
        self.metricsAddress = metricsAddress
        self.state = state
        self.models = models
        self.lastLoad = lastLoad
        self.joinedUnixMs = joinedUnixMs
        self.lastReportUnixMs = lastReportUnixMs
    }

    /// Requests queued and in flight at its last report (0 before its first).
    public var outstanding: Int {
        lastLoad.map { Int($0.queueDepth) + Int($0.inFlight) } ?? 0
    }
}

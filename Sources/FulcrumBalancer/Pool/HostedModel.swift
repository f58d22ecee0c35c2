/// A model version a worker hosts, or failed to load (with the reason), as it reported it.
public struct HostedModel: Sendable, Equatable {
    /// READY, LOADING or UNAVAILABLE (Triton's repository index states), and UNLOADING in the
    /// pool the balancer publishes while placement moves the model off a worker. A state this
    /// balancer does not know is kept as the worker said it.
    public struct State: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Loaded and serving.
        public static let ready = State(rawValue: "READY")
        /// Being loaded.
        public static let loading = State(rawValue: "LOADING")
        /// Failed to load (see `reason`).
        public static let unavailable = State(rawValue: "UNAVAILABLE")
        /// Being moved away by placement: not routed to.
        public static let unloading = State(rawValue: "UNLOADING")

        public var description: String { rawValue }
    }

    public var name: String
    /// Empty for a model that failed before any version was read.
    public var version: String
    public var state: State
    /// Why it is UNAVAILABLE; empty otherwise.
    public var reason: String
    /// A hash of the model's files, so identical copies can be told apart from different ones.
    public var contentHash: String
    /// Its `fulcrum.latency_target_ms` (0: none set) and `max_batch_size` (0: no batching).
    public var latencyTargetMs: Double
    public var maxBatchSize: UInt32
    /// Memory the loaded model holds (on the device for an accelerator backend).
    public var memoryBytes: UInt64

    public init(
        name: String, version: String = "", state: State, reason: String = "", contentHash: String = "", latencyTargetMs: Double = 0,
        maxBatchSize: UInt32 = 0, memoryBytes: UInt64 = 0
    ) {
        self.name = name
        self.version = version
        self.state = state
        self.reason = reason
        self.contentHash = contentHash
        self.latencyTargetMs = latencyTargetMs
        self.maxBatchSize = maxBatchSize
        self.memoryBytes = memoryBytes
    }
}

/// A worker's load as its latest report gave it: queue and in-flight requests, utilisation, and
/// per model the traffic and executions since its previous report.
public struct WorkerLoad: Sendable, Equatable {
    /// One model version's traffic since the worker's previous report.
    public struct Model: Sendable, Equatable {
        public var name: String
        public var version: String
        /// Requests that arrived.
        public var arrivals: UInt64
        public var queueDepth: UInt32
        /// Executions finished: batch size and service time.
        public var batches: [Batch]
        /// Requests that left the queue for an execution, and the time they waited there in all.
        public var dequeued: UInt64
        public var queueMicroseconds: UInt64

        public init(
            name: String, version: String = "", arrivals: UInt64 = 0, queueDepth: UInt32 = 0, batches: [Batch] = [], dequeued: UInt64 = 0,
            queueMicroseconds: UInt64 = 0
        ) {
            self.name = name
            self.version = version
            self.arrivals = arrivals
            self.queueDepth = queueDepth
            self.batches = batches
            self.dequeued = dequeued
            self.queueMicroseconds = queueMicroseconds
        }
    }

    /// One execution: its batch size and service time.
    public struct Batch: Sendable, Equatable {
        public var size: UInt32
        public var serviceMicroseconds: UInt64

        public init(size: UInt32, serviceMicroseconds: UInt64) {
            self.size = size
            self.serviceMicroseconds = serviceMicroseconds
        }
    }

    public var queueDepth: UInt32
    public var inFlight: UInt32
    public var utilization: Double
    public var models: [Model]
    /// When the worker sent the report, ms since 1970.
    public var sentUnixMs: Int64

    public init(queueDepth: UInt32 = 0, inFlight: UInt32 = 0, utilization: Double = 0, models: [Model] = [], sentUnixMs: Int64 = 0) {
        self.queueDepth = queueDepth
        self.inFlight = inFlight
        self.utilization = utilization
        self.models = models
        self.sentUnixMs = sentUnixMs
    }
}

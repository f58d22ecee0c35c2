/// What a worker's report tells the capacity model, in the balancer's own terms (taken from the
/// registry's `WorkerReport`, which the control service maps from the wire).
public struct WorkerCapacityReport: Sendable, Equatable {
    /// A model the worker has loaded and serves.
    public struct Hosted: Sendable, Equatable {
        public var name: String
        /// Its `max_batch_size` (at least 1).
        public var maxBatchSize: Int
        /// Its `fulcrum.latency_target_ms`, seconds; nil when its configuration sets none.
        public var target: Double?

        public init(name: String, maxBatchSize: Int, target: Double?) {
            self.name = name
            self.maxBatchSize = maxBatchSize
            self.target = target
        }
    }

    /// One model's traffic and executions since the worker's previous report.
    public struct Load: Sendable, Equatable {
        public var name: String
        /// Requests that arrived.
        public var arrivals: UInt64
        /// Requests that left the queue for execution, and their summed queue time (µs).
        public var dequeued: UInt64
        public var queueMicroseconds: UInt64
        /// Executions: batch size and service time, seconds.
        public var batches: [Batch]

        public struct Batch: Sendable, Equatable {
            public var size: Int
            public var seconds: Double
            public init(size: Int, seconds: Double) {
                self.size = size
                self.seconds = seconds
            }
        }

        public init(name: String, arrivals: UInt64, dequeued: UInt64 = 0, queueMicroseconds: UInt64 = 0, batches: [Batch] = []) {
            self.name = name
            self.arrivals = arrivals
            self.dequeued = dequeued
            self.queueMicroseconds = queueMicroseconds
            self.batches = batches
        }
    }

    /// The models in state READY (others do not count).
    public var hosted: [Hosted]
    public var load: [Load]

    public init(hosted: [Hosted] = [], load: [Load] = []) {
        self.hosted = hosted
        self.load = load
    }

    /// The part of `report` the capacity model reads: its READY models' batch limits and latency
    /// targets, and its traffic and executions per model.
    public init(_ report: WorkerReport) {
        let hosted = report.models.filter { $0.state == .ready }.map { model -> Hosted in
            let target: Double? = model.latencyTargetMs > 0 ? model.latencyTargetMs / 1000 : nil
            return Hosted(name: model.name, maxBatchSize: max(1, Int(model.maxBatchSize)), target: target)
        }
        let load = report.load.models.map { load -> Load in
            let batches = load.batches.map { Load.Batch(size: Int($0.size), seconds: Double($0.serviceMicroseconds) / 1_000_000) }
            return Load(name: load.name, arrivals: load.arrivals, dequeued: load.dequeued, queueMicroseconds: load.queueMicroseconds, batches: batches)
        }
        self.init(hosted: hosted, load: load)
    }
}

/// A frontend's network measurements since its previous report, per model.
public struct NetworkReport: Sendable, Equatable {
    public struct Sample: Sendable, Equatable {
        public var model: String
        /// Requests answered, their summed network time and its 99th percentile, µs.
        public var requests: UInt64
        public var totalMicroseconds: UInt64
        public var p99Microseconds: UInt64

        public init(model: String, requests: UInt64, totalMicroseconds: UInt64, p99Microseconds: UInt64 = 0) {
            self.model = model
            self.requests = requests
            self.totalMicroseconds = totalMicroseconds
            self.p99Microseconds = p99Microseconds
        }
    }

    public var samples: [Sample]

    public init(samples: [Sample]) { self.samples = samples }
}

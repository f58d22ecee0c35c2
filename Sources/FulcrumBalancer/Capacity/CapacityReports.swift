/// What a worker's report tells the capacity model, in the balancer's own terms (mapped from the
/// wire at the control service, `CapacityReports+Wire.swift`).
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

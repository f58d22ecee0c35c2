import FulcrumService

/// Everything one load test needs, read once from the command line or a scenario and validated
/// before anything connects.
public struct LoadOptions: Sendable {
    /// How requests are paced.
    public enum Mode: Sendable, Equatable {
        /// Open loop: arrivals follow the schedule whatever the server does.
        case open(schedule: RateSchedule, poisson: Bool)
        /// Closed loop: this many requests always in flight, each sent when the previous one on
        /// its slot completes, for `seconds`.
        case closed(concurrency: Int, seconds: Double)
    }

    /// The inference endpoint (any open inference protocol gRPC server).
    public var target: HostPort
    /// Model name.
    public var model: String
    /// Model version ("" = the server's choice).
    public var version: String = ""
    /// Pacing.
    public var mode: Mode
    /// Seconds at the start whose requests are not measured.
    public var warmup: Double = 0
    /// gRPC connections (one client each); requests go round-robin over them.
    public var connections: Int = 1
    /// Batch size of each request (the leading -1 dimension).
    public var batch: Int = 1
    /// Size for any other variable (-1) dimension.
    public var dimensionValue: Int?
    /// Seed of the Poisson draws and the random inputs.
    public var seed: UInt64 = 1
    /// Open loop: most requests in flight at once; arrivals beyond it are dropped and counted.
    public var maxInFlight: Int = 1024
    /// Deadline of each request.
    public var timeout: Duration = .seconds(10)
    /// Largest message in either direction.
    public var maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes
    /// A Fulcrum balancer to sample the pool size from every second, if any.
    public var balancer: HostPort?
    /// The admin credentials for a balancer with mutual TLS (nil: plaintext).
    public var balancerTLS: ClusterTLS?
    /// A file of requests in perf_analyzer's `--input-data` JSON format (`RequestFactory`);
    /// nil sends random inputs.
    public var inputData: String?

    /// Options with the defaults above.
    public init(target: HostPort, model: String, mode: Mode) {
        self.target = target
        self.model = model
        self.mode = mode
    }

    /// Total seconds of the test, warm-up included.
    public var duration: Double {
        switch mode {
        case .open(let schedule, _): schedule.duration
        case .closed(_, let seconds): seconds
        }
    }

    /// Fails with a message naming the option when a value cannot work.
    public func validate() throws {
        guard !model.isEmpty else { throw LoadError("the model name is empty") }
        guard connections >= 1 else { throw LoadError("--connections must be at least 1 (got \(connections))") }
        guard batch >= 1 else { throw LoadError("--batch must be at least 1 (got \(batch))") }
        guard maxInFlight >= 1 else { throw LoadError("--max-in-flight must be at least 1 (got \(maxInFlight))") }
        guard warmup >= 0, warmup < duration else {
            throw LoadError("--warmup (\(warmup) s) must be ≥ 0 and shorter than the test (\(duration) s)")
        }
        if let dimensionValue, dimensionValue < 1 { throw LoadError("--dim-value must be at least 1") }
        switch mode {
        case .open(let schedule, _):
            guard schedule.peakRate > 0 else { throw LoadError("the schedule never sends: every rate is 0") }
            guard schedule.segments.allSatisfy({ $0.from >= 0 && $0.to >= 0 && $0.seconds > 0 }) else {
                throw LoadError("every schedule segment needs rates ≥ 0 and a duration > 0")
            }
        case .closed(let concurrency, let seconds):
            guard concurrency >= 1 else { throw LoadError("--concurrency must be at least 1 (got \(concurrency))") }
            guard seconds > 0 else { throw LoadError("--duration must be positive") }
        }
    }
}

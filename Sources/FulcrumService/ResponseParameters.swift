import FulcrumProtocol

/// The `fulcrum.` response parameters that split a prediction's latency by hop.
public enum ResponseParameters {
    /// Time spent in the frontend itself (validation, routing, encoding), µs.
    public static let frontend = "fulcrum.frontend_us"
    /// Round trip between frontend and worker minus the worker's own time, µs.
    public static let network = "fulcrum.network_us"
    /// Time queued in the worker before execution, µs.
    public static let queue = "fulcrum.queue_us"
    /// Model execution time, µs.
    public static let compute = "fulcrum.compute_us"
    /// The worker's whole time for the request (decode, queue, compute, encode), µs. The frontend
    /// uses it to work out the network time.
    public static let workerTotal = "fulcrum.worker_us"
    /// Samples in the batch the request executed in (dynamic batching combines requests).
    public static let batchSize = "fulcrum.batch_size"
    /// The id of the worker that served the request.
    public static let worker = "fulcrum.worker"
    /// The W3C trace id of the request (the caller's `traceparent`, or one the frontend started):
    /// find its spans with it.
    public static let traceID = "fulcrum.trace_id"
}

/// Trailing metadata a worker puts on a refusal it made on purpose (full queue, expired queue
/// timeout), so a frontend can tell it from a failed connection: it may try another worker but
/// does not treat this one as broken.
public enum RejectionMetadata {
    /// The key; the value says why (`queue-full`, `timeout`, `deadline`).
    public static let key = "fulcrum-rejected"
}

extension Inference_InferParameter {
    /// An int64 parameter.
    public static func int64(_ value: Int64) -> Self {
        var p = Self()
        p.int64Param = value
        return p
    }

    /// A string parameter.
    public static func string(_ value: String) -> Self {
        var p = Self()
        p.stringParam = value
        return p
    }

    /// The value as an integer when it is int64 or uint64.
    public var integerValue: Int64? {
        switch parameterChoice {
        case .int64Param(let v): v
        case .uint64Param(let v): Int64(clamping: v)
        default: nil
        }
    }
}

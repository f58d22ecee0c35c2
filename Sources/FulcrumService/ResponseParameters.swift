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
    /// The id of the worker that served the request.
    public static let worker = "fulcrum.worker"
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

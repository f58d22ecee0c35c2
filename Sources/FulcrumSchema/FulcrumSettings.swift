/// Fulcrum's own settings for a model: the `parameters` entries named `fulcrum.*` in its
/// config.pbtxt, read and checked once, when the configuration is read
/// (`ModelConfiguration.parse`), into typed fields. The entries stay in `parameters` too, so the
/// ModelConfig RPC reports them as written.
public struct FulcrumSettings: Sendable, Equatable {
    /// How requests are batched (`fulcrum.batching`).
    public enum Batching: String, Sendable, Equatable {
        /// Triton's dynamic batcher as configured (the default).
        case dynamic
        /// The batch limit follows the latency target (docs/scheduling.md).
        case adaptive
    }

    /// `fulcrum.batching`: `dynamic` (default) or `adaptive`.
    public var batching: Batching
    /// `fulcrum.latency_target_ms`: the model's p99 target, nil when it sets none.
    public var latencyTarget: Duration?
    /// `fulcrum.max_queue_bytes`: the most bytes of queued request tensors, nil for the default.
    public var maxQueueBytes: Int?

    /// The keys Fulcrum reads; any other `fulcrum.*` key is refused as a likely typo.
    public static let keys = ["fulcrum.batching", "fulcrum.latency_target_ms", "fulcrum.max_queue_bytes"]

    public init(batching: Batching = .dynamic, latencyTarget: Duration? = nil, maxQueueBytes: Int? = nil) {
        self.batching = batching
        self.latencyTarget = latencyTarget
        self.maxQueueBytes = maxQueueBytes
    }

    /// Reads the `fulcrum.*` entries of `parameters`. `problem(key, message)` makes the error for
    /// an entry (the parser adds the file and line); the message names the parameter and value.
    public init(parameters: [String: String], problem: (String, String) -> RuntimeError) throws(RuntimeError) {
        self.init()
        for key in parameters.keys.sorted() where key.hasPrefix("fulcrum.") && !Self.keys.contains(key) {
            throw problem(key, "parameter \(key) is not one Fulcrum reads (\(Self.keys.joined(separator: ", ")))")
        }
        if let text = parameters["fulcrum.batching"] {
            guard let batching = Batching(rawValue: text) else {
                throw problem("fulcrum.batching", "parameter fulcrum.batching: '\(text)' is not 'dynamic' or 'adaptive'")
            }
            self.batching = batching
        }
        if let text = parameters["fulcrum.latency_target_ms"] {
            guard let ms = Double(text), ms.isFinite, ms > 0, ms <= 86_400_000 else {
                throw problem(
                    "fulcrum.latency_target_ms",
                    "parameter fulcrum.latency_target_ms: '\(text)' is not a positive number of milliseconds (at most a day)")
            }
            latencyTarget = .microseconds(Int64((ms * 1000).rounded()))
        }
        if let text = parameters["fulcrum.max_queue_bytes"] {
            guard let value = Int(text), value > 0 else {
                throw problem("fulcrum.max_queue_bytes", "parameter fulcrum.max_queue_bytes: '\(text)' is not a positive integer")
            }
            maxQueueBytes = value
        }
    }

    /// What the settings need from the rest of the configuration: adaptive batching needs a
    /// dynamic_batching block, a batch dimension and a latency target. Returns the problem, or nil.
    public func conflict(maxBatchSize: Int, dynamicBatching: Bool) -> String? {
        guard batching == .adaptive else { return nil }
        if !dynamicBatching || maxBatchSize <= 0 {
            return "fulcrum.batching: adaptive needs max_batch_size > 0 and a dynamic_batching block"
        }
        if latencyTarget == nil {
            return "fulcrum.batching: adaptive needs parameter fulcrum.latency_target_ms (a positive number of milliseconds)"
        }
        return nil
    }
}

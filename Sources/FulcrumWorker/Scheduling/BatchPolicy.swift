import FulcrumRuntime
import FulcrumSchema

/// How a model's requests are queued and batched, read from its configuration with Triton's
/// semantics (`max_batch_size`, `dynamic_batching { ... }`) plus Fulcrum's extensions in
/// `parameters` (`fulcrum.batching: adaptive`, `fulcrum.latency_target_ms`,
/// `fulcrum.max_queue_bytes`).
public struct BatchPolicy: Sendable, Equatable {
    /// One priority level's queue policy (Triton's ModelQueuePolicy).
    public struct QueuePolicy: Sendable, Equatable {
        /// 0 = unbounded (then only `maxQueuedBytes` bounds the queue).
        public var maxQueueSize: Int
        /// 0 = requests never time out in the queue unless they carry a timeout.
        public var defaultTimeout: Duration
        public var allowTimeoutOverride: Bool
        /// REJECT (false) or DELAY (true) a request whose timeout passes while queued.
        public var delayOnTimeout: Bool

        public init(maxQueueSize: Int = 0, defaultTimeout: Duration = .zero, allowTimeoutOverride: Bool = false, delayOnTimeout: Bool = false) {
            self.maxQueueSize = maxQueueSize
            self.defaultTimeout = defaultTimeout
            self.allowTimeoutOverride = allowTimeoutOverride
            self.delayOnTimeout = delayOnTimeout
        }
    }

    /// Adaptive batching: the batch limit follows measured latency against a target (AIMD).
    public struct Adaptive: Sendable, Equatable {
        public var latencyTarget: Duration
        public init(latencyTarget: Duration) { self.latencyTarget = latencyTarget }
    }

    /// Whether requests are combined into batches at all (a `dynamic_batching` block is present
    /// and `max_batch_size > 0`). Without it every request executes alone, in arrival order.
    public var batching: Bool
    /// The most samples in one execution (at least 1).
    public var maxBatchSize: Int
    /// Batch sizes to aim for, ascending; empty means "as large as possible".
    public var preferredBatchSizes: [Int]
    /// How long the oldest request may wait for a fuller batch.
    public var maxQueueDelay: Duration
    /// Number of priority levels (at least 1); level 1 is served first.
    public var priorityLevels: Int
    /// The level of a request that names none.
    public var defaultPriorityLevel: Int
    /// Queue policy per level (index 0 = level 1).
    public var queuePolicies: [QueuePolicy]
    /// Bound on the tensor bytes held by queued requests; beyond it requests are rejected.
    public var maxQueuedBytes: Int
    /// Adaptive batch sizing, if enabled.
    public var adaptive: Adaptive?

    public init(
        batching: Bool, maxBatchSize: Int, preferredBatchSizes: [Int] = [], maxQueueDelay: Duration = .zero,
        priorityLevels: Int = 1, defaultPriorityLevel: Int = 1, queuePolicies: [QueuePolicy] = [QueuePolicy()],
        maxQueuedBytes: Int = BatchPolicy.defaultMaxQueuedBytes, adaptive: Adaptive? = nil
    ) {
        self.batching = batching
        self.maxBatchSize = max(1, maxBatchSize)
        self.preferredBatchSizes = preferredBatchSizes.filter { $0 >= 1 && $0 <= max(1, maxBatchSize) }.sorted()
        self.maxQueueDelay = maxQueueDelay
        self.priorityLevels = max(1, priorityLevels)
        self.defaultPriorityLevel = min(max(1, defaultPriorityLevel), max(1, priorityLevels))
        self.queuePolicies = queuePolicies.isEmpty ? [QueuePolicy()] : queuePolicies
        self.maxQueuedBytes = maxQueuedBytes
        self.adaptive = adaptive
    }

    /// 256 MiB of queued tensors per model unless `fulcrum.max_queue_bytes` says otherwise.
    public static let defaultMaxQueuedBytes = 256 * 1024 * 1024

    /// The policy for priority `level` (1-based).
    func queuePolicy(level: Int) -> QueuePolicy {
        queuePolicies[min(max(level, 1), queuePolicies.count) - 1]
    }

    /// The policy a model's configuration asks for. Fulcrum's own parameters arrive checked and
    /// typed (`ModelConfiguration.fulcrum`, read with the rest of config.pbtxt); this throws only
    /// for what the dynamic_batching block gets wrong.
    public init(configuration: ModelConfiguration) throws(FulcrumSchema.RuntimeError) {
        func invalid(_ message: String) -> FulcrumSchema.RuntimeError {
            RuntimeError(code: .invalidConfiguration, message: "model '\(configuration.name)': \(message)")
        }
        let settings = configuration.fulcrum
        let maxQueuedBytes = settings.maxQueueBytes ?? Self.defaultMaxQueuedBytes
        if let conflict = settings.conflict(maxBatchSize: configuration.maxBatchSize, dynamicBatching: configuration.dynamicBatching != nil) {
            throw invalid(conflict)
        }
        let adaptive = settings.batching == .adaptive ? settings.latencyTarget.map { Adaptive(latencyTarget: $0) } : nil
        guard let batching = configuration.dynamicBatching, configuration.maxBatchSize > 0 else {
            self.init(batching: false, maxBatchSize: max(1, configuration.maxBatchSize), maxQueuedBytes: maxQueuedBytes)
            return
        }
        let levels = max(1, Int(batching.priorityLevels))
        let defaultLevel = Int(batching.defaultPriorityLevel)
        if batching.priorityLevels > 0 && (defaultLevel < 1 || defaultLevel > levels) {
            throw invalid("dynamic_batching.default_priority_level \(defaultLevel) is outside 1...\(levels)")
        }
        func policy(_ p: ModelConfiguration.QueuePolicy?) -> QueuePolicy {
            guard let p else { return QueuePolicy() }
            return QueuePolicy(
                maxQueueSize: Int(p.maxQueueSize),
                defaultTimeout: .microseconds(Int64(clamping: p.defaultTimeoutMicroseconds)),
                allowTimeoutOverride: p.allowTimeoutOverride,
                delayOnTimeout: p.timeoutAction == .delay
            )
        }
        let base = policy(batching.defaultQueuePolicy)
        let policies = (1...levels).map { level in
            batching.priorityQueuePolicy[UInt64(level)].map { policy($0) } ?? base
        }
        self.init(
            batching: true,
            maxBatchSize: configuration.maxBatchSize,
            preferredBatchSizes: batching.preferredBatchSizes,
            maxQueueDelay: .microseconds(Int64(clamping: batching.maxQueueDelayMicroseconds)),
            priorityLevels: levels,
            defaultPriorityLevel: batching.priorityLevels == 0 ? 1 : defaultLevel,
            queuePolicies: policies,
            maxQueuedBytes: maxQueuedBytes,
            adaptive: adaptive
        )
    }
}

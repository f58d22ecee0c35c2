/// The dynamic batcher's decisions for one model, as a pure state machine over a clock: requests,
/// finished executions and the passing of time go in; "execute these requests on that instance",
/// "reject that request" and "wake me at" come out. It sleeps nowhere and owns no threads;
/// `ModelScheduler` carries its actions out, and tests drive it with a manual clock.
///
/// Semantics follow Triton's dynamic batcher:
/// - Requests wait in one FIFO queue per priority level; level 1 is served first. A request's
///   level is its `priority` parameter (0 = the model's default level).
/// - A free instance takes the highest-priority request and adds requests behind it whose
///   non-batch shapes match, up to the batch limit (max_batch_size, or the adaptive limit).
///   It executes at once when the batch reaches the limit or a preferred batch size (the largest
///   preferred size that can be formed), or when its oldest request has waited
///   max_queue_delay; otherwise it waits for more requests until then.
/// - A level's max_queue_size (0 = unbounded) and the model's queued-bytes bound reject new
///   requests at once. A request whose queue timeout passes is rejected (REJECT) or moved behind
///   every request that has not timed out (DELAY). A request whose deadline passes while queued
///   is dropped before it uses compute, and one that cannot make its deadline — the batches
///   already queued ahead of it, at its level or above, take longer than it has left — is
///   refused on arrival instead of waiting to be dropped (queue time counts against the
///   caller's deadline).
/// - Without dynamic batching, each request executes alone, in arrival order.
public struct BatchScheduler<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    /// A request as the scheduler sees it.
    public struct Request: Sendable {
        public var id: UInt64
        /// Samples it carries (its batch dimension; 1 for models that do not batch).
        public var samples: Int
        /// The non-batch dimensions of its inputs: only requests with equal keys share a batch.
        public var shapeKey: [Int]
        /// 1-based priority level, or 0 for the model's default.
        public var priority: Int
        /// Its own queue timeout (the `timeout` parameter), if it gave one.
        public var timeout: Duration?
        /// When the caller stops waiting (the gRPC deadline), if any.
        public var deadline: Instant?
        /// Tensor bytes it holds while queued.
        public var bytes: Int

        public init(id: UInt64, samples: Int, shapeKey: [Int] = [], priority: Int = 0, timeout: Duration? = nil, deadline: Instant? = nil, bytes: Int = 0) {
            self.id = id
            self.samples = samples
            self.shapeKey = shapeKey
            self.priority = priority
            self.timeout = timeout
            self.deadline = deadline
            self.bytes = bytes
        }
    }

    /// Why a request did not execute.
    public enum Rejection: Sendable, Equatable {
        /// Its level's queue holds max_queue_size requests.
        case queueFull(level: Int, size: Int)
        /// Queued requests already hold the model's byte bound.
        case memoryFull(limit: Int)
        /// Its queue timeout passed and the policy is REJECT.
        case timedOut
        /// Its deadline passed (or cannot be met) before it executed.
        case deadlineExceeded
        /// Its priority is not one of the model's levels.
        case invalidPriority(levels: Int)
    }

    /// What the caller must do.
    public enum Action: Sendable, Equatable {
        /// Run these requests, in this order, as one batch on `instance`.
        case execute(instance: Int, requests: [UInt64], epoch: Int)
        /// Answer this request with an error; it has left the queue.
        case reject(UInt64, Rejection)
        /// Call `wake(now:)` at (or after) this time.
        case wake(at: Instant)
    }

    private struct Queued: Sendable {
        var request: Request
        var level: Int
        var arrival: Instant
        /// When its queue timeout passes, if it has one.
        var timeoutAt: Instant?
        var delayed: Bool
    }

    public let policy: BatchPolicy
    private var queues: [[Queued]]
    private var freeInstances: [Int]
    private let instanceCount: Int
    private var queuedBytes = 0
    /// Adaptive sizing, when the policy enables it.
    public private(set) var adaptive: AdaptiveBatchLimit?

    /// A scheduler for `instances` execution instances numbered 0..<instances.
    public init(policy: BatchPolicy, instances: Int) {
        self.policy = policy
        self.queues = Array(repeating: [], count: policy.priorityLevels)
        self.freeInstances = Array((0..<max(1, instances)).reversed())
        self.instanceCount = max(1, instances)
        if let adaptive = policy.adaptive, policy.batching {
            self.adaptive = AdaptiveBatchLimit(target: adaptive.latencyTarget, maximum: policy.maxBatchSize)
        }
    }

    /// Requests waiting now.
    public var queueDepth: Int { queues.reduce(0) { $0 + $1.count } }

    /// Instances not executing now.
    public var idleInstances: Int { freeInstances.count }

    /// The batch limit in force (the adaptive limit when adaptive batching is on).
    public var batchLimit: Int { adaptive?.limit ?? policy.maxBatchSize }

    /// A request arrives. It is admitted (and possibly executed at once) or rejected at once.
    /// `minimumService` is the shortest time an execution is expected to take: a request whose
    /// deadline is closer than that, plus that time for every round of full batches queued
    /// ahead of it (`earliestCompletion`), is rejected before it queues.
    public mutating func submit(_ request: Request, now: Instant, minimumService: Duration = .zero) -> [Action] {
        let level = request.priority == 0 ? policy.defaultPriorityLevel : request.priority
        guard (1...policy.priorityLevels).contains(level) else {
            return [.reject(request.id, .invalidPriority(levels: policy.priorityLevels))]
        }
        if let deadline = request.deadline, deadline <= earliestCompletion(level: level, now: now, minimumService: minimumService) {
            return [.reject(request.id, .deadlineExceeded)]
        }
        let queuePolicy = policy.queuePolicy(level: level)
        if queuePolicy.maxQueueSize > 0 && queues[level - 1].count >= queuePolicy.maxQueueSize {
            return [.reject(request.id, .queueFull(level: level, size: queuePolicy.maxQueueSize))]
        }
        if queuedBytes + request.bytes > policy.maxQueuedBytes && queueDepth > 0 {
            return [.reject(request.id, .memoryFull(limit: policy.maxQueuedBytes))]
        }
        var timeout = queuePolicy.defaultTimeout > .zero ? queuePolicy.defaultTimeout : nil
        if let own = request.timeout, own > .zero {
            if queuePolicy.allowTimeoutOverride || timeout == nil {
                timeout = min(own, timeout ?? own)
            }
        }
        queues[level - 1].append(
            Queued(request: request, level: level, arrival: now, timeoutAt: timeout.map { now.advanced(by: $0) }, delayed: false)
        )
        queuedBytes += request.bytes
        return schedule(now: now)
    }

    /// The soonest a request arriving now at `level` can finish: one execution of its own after
    /// every round of full batches queued at its level or above has run on all the instances.
    /// Counting only full rounds (and no execution already running) keeps it a lower bound, so a
    /// request is refused only when it would certainly miss its deadline.
    func earliestCompletion(level: Int, now: Instant, minimumService: Duration) -> Instant {
        guard minimumService > .zero else { return now }
        var ahead = 0
        for queue in queues[0..<level] { for queued in queue { ahead += queued.request.samples } }
        let perRound = (policy.batching ? max(1, batchLimit) : 1) * instanceCount
        return now.advanced(by: minimumService * min(ahead / perRound + 1, 1 << 20))
    }

    /// The caller gave up on a request (cancelled). Returns true if it was still queued (and is
    /// now removed); false if it already executed or was answered.
    public mutating func cancel(_ id: UInt64) -> Bool {
        for level in queues.indices {
            if let index = queues[level].firstIndex(where: { $0.request.id == id }) {
                queuedBytes -= queues[level][index].request.bytes
                queues[level].remove(at: index)
                return true
            }
        }
        return false
    }

    /// An instance finished executing a batch formed in `epoch` of `batchSize` samples, with
    /// batch latency `latency` (the batcher's wait plus the execution: `AdaptiveBatchLimit`).
    public mutating func finished(instance: Int, batchSize: Int, epoch: Int, latency: Duration, now: Instant) -> [Action] {
        freeInstances.append(instance)
        adaptive?.record(batchSize: batchSize, formedInEpoch: epoch, latency: latency)
        return schedule(now: now)
    }

    /// Time passed: expire timeouts and deadlines, dispatch batches whose delay is over.
    public mutating func wake(now: Instant) -> [Action] {
        schedule(now: now)
    }

    // MARK: - Decisions

    private mutating func schedule(now: Instant) -> [Action] {
        var actions = expire(now: now)
        while !freeInstances.isEmpty {
            guard let batch = formBatch() else { break }
            if shouldDispatch(batch, now: now) {
                let instance = freeInstances.removeLast()
                let ids = remove(batch.members)
                actions.append(.execute(instance: instance, requests: ids, epoch: adaptive?.epoch ?? 0))
            } else {
                actions.append(.wake(at: batch.oldestArrival.advanced(by: policy.maxQueueDelay)))
                break
            }
        }
        if let next = nextExpiry() {
            actions.append(.wake(at: next))
        }
        return actions
    }

    /// Rejects or delays requests whose timeout passed; drops those whose deadline passed.
    private mutating func expire(now: Instant) -> [Action] {
        var actions: [Action] = []
        for level in queues.indices {
            var kept: [Queued] = []
            kept.reserveCapacity(queues[level].count)
            for var queued in queues[level] {
                if let deadline = queued.request.deadline, deadline <= now {
                    actions.append(.reject(queued.request.id, .deadlineExceeded))
                    queuedBytes -= queued.request.bytes
                    continue
                }
                if !queued.delayed, let timeoutAt = queued.timeoutAt, timeoutAt <= now {
                    if policy.queuePolicy(level: queued.level).delayOnTimeout {
                        queued.delayed = true
                    } else {
                        actions.append(.reject(queued.request.id, .timedOut))
                        queuedBytes -= queued.request.bytes
                        continue
                    }
                }
                kept.append(queued)
            }
            queues[level] = kept
        }
        return actions
    }

    private struct Batch {
        /// (level index, position) of each member, in dispatch order.
        var members: [(Int, Int)]
        var samples: Int
        var oldestArrival: Instant
        /// Whether every queued request with the head's shape fits in it (no more can join now).
        var limitReached: Bool
        /// Samples after each member, for choosing a preferred size.
        var prefixSamples: [Int]
    }

    /// The batch a free instance would take now: the highest-priority request first (requests
    /// that have not timed out before delayed ones), then compatible requests behind it.
    private func formBatch() -> Batch? {
        var order: [(Int, Int)] = []
        for pass in [false, true] {
            for level in queues.indices {
                for (position, queued) in queues[level].enumerated() where queued.delayed == pass {
                    order.append((level, position))
                }
            }
        }
        guard let head = order.first else { return nil }
        let headRequest = queues[head.0][head.1]
        let limit = policy.batching ? batchLimit : 1
        var batch = Batch(members: [head], samples: headRequest.request.samples, oldestArrival: headRequest.arrival, limitReached: false, prefixSamples: [headRequest.request.samples])
        guard policy.batching else {
            batch.limitReached = true
            return batch
        }
        for member in order.dropFirst() {
            let queued = queues[member.0][member.1]
            guard queued.request.shapeKey == headRequest.request.shapeKey else { continue }
            if batch.samples + queued.request.samples > limit {
                batch.limitReached = true
                break
            }
            batch.members.append(member)
            batch.samples += queued.request.samples
            batch.prefixSamples.append(batch.samples)
            if queued.arrival < batch.oldestArrival { batch.oldestArrival = queued.arrival }
        }
        if batch.samples >= limit { batch.limitReached = true }
        return batch
    }

    /// Whether to execute `batch` now, trimming it to the largest preferred size it can form.
    private func shouldDispatch(_ batch: Batch, now: Instant) -> Bool {
        if !policy.batching || batch.limitReached { return true }
        if policy.preferredBatchSizes.contains(where: { batch.prefixSamples.contains($0) }) { return true }
        return now >= batch.oldestArrival.advanced(by: policy.maxQueueDelay)
    }

    /// Takes the members out of their queues (the prefix reaching the largest preferred size
    /// when the batch is not full and one can be formed); returns their ids in dispatch order.
    private mutating func remove(_ members: [(Int, Int)]) -> [UInt64] {
        var chosen = members
        if policy.batching, !policy.preferredBatchSizes.isEmpty {
            var samples = 0
            var cut: Int? = nil
            for (index, member) in members.enumerated() {
                samples += queues[member.0][member.1].request.samples
                if policy.preferredBatchSizes.contains(samples) { cut = index + 1 }
            }
            let total = samples
            if let cut, total < batchLimit { chosen = Array(members.prefix(cut)) }
        }
        let ids = chosen.map { queues[$0.0][$0.1].request.id }
        for (level, position) in chosen.sorted(by: { ($0.0, $0.1) > ($1.0, $1.1) }) {
            queuedBytes -= queues[level][position].request.bytes
            queues[level].remove(at: position)
        }
        return ids
    }

    /// The earliest pending timeout or deadline.
    private func nextExpiry() -> Instant? {
        var next: Instant? = nil
        for level in queues {
            for queued in level {
                for candidate in [queued.delayed ? nil : queued.timeoutAt, queued.request.deadline].compactMap({ $0 }) {
                    if next == nil || candidate < next! { next = candidate }
                }
            }
        }
        return next
    }
}

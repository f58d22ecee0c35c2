/// The batch-size limit of adaptive batching: additive increase, multiplicative decrease.
///
/// After each execution its batch latency — the batcher's own wait (`max_queue_delay`) plus the
/// execution — is compared with the target. (Not the oldest request's whole wait: under
/// overload that includes the backlog, which small batches only lengthen, so the limit would
/// collapse to 1 exactly when throughput is needed; the backlog is admission control's job.) Over the target, the limit halves (at most once per round of executions that
/// were formed under the old limit, so batches already in flight do not halve it again); under
/// the target while the limit was what stopped the batch growing, it grows by one. The limit so
/// settles at the largest batch whose latency meets the target, and follows load and hardware.
public struct AdaptiveBatchLimit: Sendable, Equatable {
    public let target: Duration
    public let maximum: Int
    /// The current limit, 1...maximum.
    public private(set) var limit: Int
    /// Increases on every decrease; batches formed before it cannot decrease again.
    public private(set) var epoch: Int = 0

    public init(target: Duration, maximum: Int, initial: Int = 1) {
        self.target = target
        self.maximum = max(1, maximum)
        self.limit = min(max(1, initial), max(1, maximum))
    }

    /// Records one execution of `batchSize` samples, formed in `epoch`, with batch latency `latency`.
    public mutating func record(batchSize: Int, formedInEpoch: Int, latency: Duration) {
        if latency > target {
            guard formedInEpoch == epoch else { return }
            limit = max(1, limit / 2)
            epoch += 1
        } else if batchSize >= limit && limit < maximum {
            limit += 1
        }
    }
}

/// Sizes the compute pool for one model: from its arrival rate λ, its service-time curve
/// s(b) = fixed + perSample·b, its largest batch B and its latency target T, the number of
/// workers needed and the p99 latency predicted for each pool size.
///
/// The model (docs/capacity.md): requests arrive as a Poisson stream, spread evenly over n
/// workers (λ/n each). A worker under load runs batches back to back; a batch collects what
/// arrived while the previous one ran. The steady batch size b* is the smallest that keeps up:
/// b*/s(b*) ≥ λ/n, i.e. b* = ⌈(λ/n)·fixed / (1 − (λ/n)·perSample)⌉, which needs b* ≤ B. The
/// arrivals in one cycle are Poisson with mean μ = (λ/n)·s(b*); their 99th percentile is
/// b99 = ⌈μ + 2.33·√μ⌉ (normal approximation), between 1 and B. A request waits for the batch
/// in progress (at most one steady cycle) and then runs in the next, which holds what arrived
/// meanwhile: p99 ≈ s(b*) + s(b99). Utilisation is ρ = (λ/n) / (B / s(B)), the share of the worker's
/// best throughput in use. The planner picks the smallest n with b* ≤ B, ρ ≤ 1 − headroom and
/// p99 ≤ T. Network time between frontend and worker is added to the prediction.
public struct Planner: Sendable {
    /// One row of a plan: a pool size and what it would give.
    public struct Row: Sendable, Equatable {
        public var workers: Int
        public var utilisation: Double
        /// Steady batch size, nil when this many workers cannot keep up.
        public var batchSize: Int?
        /// Predicted p99 latency in seconds, nil when this many workers cannot keep up.
        public var p99: Double?
    }

    /// The outcome for one arrival rate.
    public struct Plan: Sendable, Equatable {
        public var rate: Double
        /// Workers needed, nil when even `maxWorkers` cannot meet the target.
        public var workers: Int?
        /// The row for `workers` (or for `maxWorkers` when the target cannot be met).
        public var row: Row
    }

    public var curve: ServiceCurve
    public var maxBatchSize: Int
    /// Seconds.
    public var latencyTarget: Double
    /// Fraction of each worker's best throughput kept free (0.2 = plan for 80 % utilisation).
    public var headroom: Double
    /// Seconds of network time on the data path, added to predictions.
    public var networkSeconds: Double

    public init(curve: ServiceCurve, maxBatchSize: Int, latencyTarget: Double, headroom: Double = 0.2, networkSeconds: Double = 0) {
        self.curve = curve
        self.maxBatchSize = max(1, maxBatchSize)
        self.latencyTarget = latencyTarget
        self.headroom = headroom
        self.networkSeconds = networkSeconds
    }

    /// What `workers` workers give at `rate` requests per second.
    public func row(rate: Double, workers: Int) -> Row {
        let perWorker = rate / Double(max(workers, 1))
        let best = Double(maxBatchSize) / curve.seconds(batch: maxBatchSize)
        let utilisation = perWorker / best
        let denominator = 1 - perWorker * curve.perSample
        guard denominator > 0 else { return Row(workers: workers, utilisation: utilisation, batchSize: nil, p99: nil) }
        let steady = max(1, Int((perWorker * curve.fixed / denominator).rounded(.up)))
        guard steady <= maxBatchSize, utilisation < 1 else {
            return Row(workers: workers, utilisation: utilisation, batchSize: nil, p99: nil)
        }
        let mean = perWorker * curve.seconds(batch: steady)
        let b99 = min(maxBatchSize, max(1, Int((mean + 2.33 * mean.squareRoot()).rounded(.up))))
        // Wait for the batch in progress (up to one steady cycle), then run in the next one.
        let p99 = curve.seconds(batch: steady) + curve.seconds(batch: b99) + networkSeconds
        return Row(workers: workers, utilisation: utilisation, batchSize: steady, p99: p99)
    }

    /// The smallest pool (up to `maxWorkers`) that meets the target at `rate`.
    public func plan(rate: Double, maxWorkers: Int = 64) -> Plan {
        var last = row(rate: rate, workers: maxWorkers)
        for workers in 1...max(1, maxWorkers) {
            let candidate = row(rate: rate, workers: workers)
            last = candidate
            if let p99 = candidate.p99, p99 <= latencyTarget, candidate.utilisation <= 1 - headroom {
                return Plan(rate: rate, workers: workers, row: candidate)
            }
        }
        return Plan(rate: rate, workers: nil, row: last)
    }
}

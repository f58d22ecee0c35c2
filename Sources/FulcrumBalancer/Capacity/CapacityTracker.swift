/// The balancer's capacity model: for every model, its arrival rate (short and long window), its
/// service-time curve fitted from batch samples, its queue delay and its latency target, all fed
/// by worker reports; and the planner's answer for the pool. A pure value over a clock: reports
/// and ticks carry their time, so it is tested without sleeping (docs/capacity.md).
public struct CapacityTracker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    /// Cluster-wide settings for planning.
    public struct Settings: Sendable {
        /// Latency target for models whose config sets none (`fulcrum.latency_target_ms`), seconds.
        public var defaultTarget: Double
        /// Fraction of each worker's best throughput kept free.
        public var headroom: Double
        /// Network time on the data path, seconds, added to predictions.
        public var networkSeconds: Double
        /// The most workers the planner considers.
        public var maxWorkers: Int

        public init(defaultTarget: Double = 0.05, headroom: Double = 0.2, networkSeconds: Double = 0, maxWorkers: Int = 64) {
            self.defaultTarget = defaultTarget
            self.headroom = headroom
            self.networkSeconds = networkSeconds
            self.maxWorkers = maxWorkers
        }
    }

    struct ModelState: Sendable {
        var rate: RateEstimator<Instant>
        var curve = ServiceCurve()
        var pendingArrivals: Double = 0
        var maxBatchSize = 1
        var target: Double?
        var pendingDequeued: UInt64 = 0
        var pendingQueueUs: UInt64 = 0
        /// Mean queue delay over the last tick's interval, seconds.
        var queueDelay: Double = 0
        var pendingNetworkRequests: UInt64 = 0
        var pendingNetworkUs: UInt64 = 0
        /// The largest p99 frontends reported in the interval, microseconds.
        var pendingNetworkP99Us: UInt64 = 0
        /// Frontend-measured network time per request (smoothed), seconds; nil until measured.
        var network: Double?
        /// Its 99th percentile (smoothed the same way), seconds.
        var networkP99: Double?
    }

    public var settings: Settings
    private(set) var models: [String: ModelState] = [:]
    private let shortWindow: Duration
    private let longWindow: Duration

    public init(settings: Settings, shortWindow: Duration = .seconds(2), longWindow: Duration = .seconds(30)) {
        self.settings = settings
        self.shortWindow = shortWindow
        self.longWindow = longWindow
    }

    /// Adds one worker report: its arrivals, batch samples and queue times per model, and the
    /// models' batch limits and targets.
    public mutating func record(_ report: WorkerCapacityReport) {
        for hosted in report.hosted {
            var state = models[hosted.name] ?? newState()
            state.maxBatchSize = max(1, hosted.maxBatchSize)
            state.target = hosted.target
            models[hosted.name] = state
        }
        for load in report.load {
            var state = models[load.name] ?? newState()
            state.pendingArrivals += Double(load.arrivals)
            state.pendingDequeued += load.dequeued
            state.pendingQueueUs += load.queueMicroseconds
            if !load.batches.isEmpty {
                state.curve.add(load.batches.map { (batchSize: $0.size, seconds: $0.seconds) })
            }
            models[load.name] = state
        }
    }

    /// Adds a frontend's network measurements (requests answered and their summed network time
    /// per model).
    public mutating func record(_ report: NetworkReport) {
        for sample in report.samples where sample.requests > 0 {
            var state = models[sample.model] ?? newState()
            state.pendingNetworkRequests += sample.requests
            state.pendingNetworkUs += sample.totalMicroseconds
            state.pendingNetworkP99Us = max(state.pendingNetworkP99Us, sample.p99Microseconds)
            models[sample.model] = state
        }
    }

    /// Closes an interval: the arrivals since the previous tick update the rate estimates, the
    /// queue times the mean queue delay, the frontends' reports the network time (an
    /// exponentially weighted mean, weight 0.3 per interval with at least 3 requests).
    public mutating func tick(now: Instant) {
        for name in models.keys {
            guard var state = models[name] else { continue }
            state.rate.observe(state.pendingArrivals, at: now)
            state.pendingArrivals = 0
            // A mean over a handful of requests is noise (a cold first call, one unlucky
            // batch): the delay follows intervals with at least 3 requests and otherwise decays.
            if state.pendingDequeued >= 3 {
                state.queueDelay = Double(state.pendingQueueUs) / Double(state.pendingDequeued) / 1_000_000
            } else {
                state.queueDelay /= 2
            }
            state.pendingDequeued = 0
            state.pendingQueueUs = 0
            if state.pendingNetworkRequests >= 3 {
                let mean = Double(state.pendingNetworkUs) / Double(state.pendingNetworkRequests) / 1_000_000
                state.network = state.network.map { 0.7 * $0 + 0.3 * mean } ?? mean
                let p99 = max(Double(state.pendingNetworkP99Us) / 1_000_000, mean)
                state.networkP99 = state.networkP99.map { 0.7 * $0 + 0.3 * p99 } ?? p99
                state.pendingNetworkRequests = 0
                state.pendingNetworkUs = 0
                state.pendingNetworkP99Us = 0
            }
            models[name] = state
        }
    }

    /// One model's view, with the planner's answer at its short-window rate.
    public struct ModelView: Sendable, Equatable {
        public var name: String
        public var shortRate: Double
        public var longRate: Double
        public var curve: ServiceCurve
        public var curveSamples: Int
        public var maxBatchSize: Int
        public var target: Double
        public var queueDelay: Double
        /// Workers the planner asks for (nil: no batch samples yet, or the target cannot be met).
        public var plannedWorkers: Int?
        public var plan: Planner.Plan
        /// Worker-equivalents of work at this rate: the rate over one worker's best throughput.
        public var workLoad: Double
        /// The mean network time per request (measured by frontends, else the configured one), seconds.
        public var network: Double = 0
        /// Its 99th percentile, which the planner adds to a p99 (else the configured one), seconds.
        public var networkP99: Double = 0
        /// Whether `network` was measured by frontends.
        public var networkMeasured = false

        /// The plan's utilisation and predicted p99 (seconds) at this rate; 0 before any batch has
        /// run (the curve is only the prior then: no prediction).
        public var predictedUtilisation: Double { curveSamples > 0 ? plan.row.utilisation : 0 }
        public var predictedP99: Double { curveSamples > 0 ? (plan.row.p99 ?? 0) : 0 }
    }

    public func planner(for name: String) -> Planner? {
        guard let state = models[name] else { return nil }
        return Planner(
            curve: state.curve, maxBatchSize: state.maxBatchSize, latencyTarget: state.target ?? settings.defaultTarget,
            headroom: settings.headroom, networkSeconds: state.networkP99 ?? settings.networkSeconds
        )
    }

    public var views: [ModelView] {
        models.keys.sorted().compactMap { name in
            guard let state = models[name], let planner = planner(for: name) else { return nil }
            let rate = state.rate.shortRate
            let plan = planner.plan(rate: rate, maxWorkers: settings.maxWorkers)
            let best = Double(state.maxBatchSize) / state.curve.seconds(batch: state.maxBatchSize)
            return ModelView(
                name: name, shortRate: rate, longRate: state.rate.longRate, curve: state.curve,
                curveSamples: state.curve.sampleCount, maxBatchSize: state.maxBatchSize, target: planner.latencyTarget,
                queueDelay: state.queueDelay, plannedWorkers: state.curve.sampleCount > 0 ? plan.workers : nil, plan: plan,
                workLoad: rate / best, network: state.network ?? settings.networkSeconds, networkP99: planner.networkSeconds,
                networkMeasured: state.network != nil
            )
        }
    }

    /// What the autoscaler needs: the pool the planner asks for and the worst queue delay
    /// against its budget (half the model's latency target).
    ///
    /// Every worker hosts every model, so the pool must satisfy each model's own plan and also
    /// hold their work together: planned = max(maxₘ nₘ, ⌈Σₘ loadₘ / (1 − headroom)⌉).
    public func observation(current: Int) -> Autoscaler<Instant>.Observation {
        let views = self.views.filter { $0.shortRate > 0 || $0.curveSamples > 0 }
        var planned: Int? = nil
        var total = 0.0
        var worst = (delay: 0.0, budget: Double.infinity)
        for view in views {
            total += view.workLoad
            if view.curveSamples > 0 {
                let needed = view.plan.workers ?? settings.maxWorkers
                planned = max(planned ?? 0, needed)
            }
            let budget = view.target / 2
            if budget > 0, view.queueDelay / budget > worst.delay / max(worst.budget, 1e-12) {
                worst = (view.queueDelay, budget)
            }
        }
        if planned != nil {
            let together = Int((total / max(1e-9, 1 - settings.headroom)).rounded(.up))
            planned = max(planned ?? 0, together, 1)
        }
        return .init(current: current, planned: planned, queueDelay: worst.delay, queueDelayBudget: worst.budget)
    }

    /// The learned part of the model, models in name order.
    public var learned: LearnedCapacity {
        LearnedCapacity(
            models: models.keys.sorted().compactMap { name in
                guard let state = models[name] else { return nil }
                return LearnedCapacity.Model(
                    name: name, samples: state.curve.keptSamples.map { LearnedCapacity.Sample(batchSize: $0.batchSize, seconds: $0.seconds) },
                    maxBatchSize: state.maxBatchSize, targetSeconds: state.target, networkSeconds: state.network,
                    networkP99Seconds: state.networkP99)
            })
    }

    /// Takes back what an earlier balancer learned, for the models this one has not heard of
    /// yet. Values no worker could have reported (non-finite or non-positive times, batch sizes
    /// below 1 or absurdly large, more samples than a curve keeps) are dropped, not trusted: the file
    /// is outside the process. Returns the names of the models restored.
    @discardableResult
    public mutating func restore(_ learned: LearnedCapacity) -> [String] {
        guard learned.version == LearnedCapacity.currentVersion else { return [] }
        var restored: [String] = []
        for model in learned.models where models[model.name] == nil && !model.name.isEmpty {
            var state = newState()
            state.maxBatchSize = min(max(1, model.maxBatchSize), 1 << 20)
            state.target = model.targetSeconds.flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
            let valid = model.samples.filter {
                $0.batchSize >= 1 && $0.batchSize <= 1 << 20 && $0.seconds.isFinite && $0.seconds > 0 && $0.seconds < 3600
            }
            state.curve.add(valid.suffix(state.curve.sampleCapacity).map { (batchSize: $0.batchSize, seconds: $0.seconds) })
            state.network = model.networkSeconds.flatMap { $0.isFinite && $0 >= 0 && $0 < 60 ? $0 : nil }
            state.networkP99 = model.networkP99Seconds.flatMap { $0.isFinite && $0 >= 0 && $0 < 60 ? $0 : nil }
            models[model.name] = state
            restored.append(model.name)
        }
        return restored
    }

    private func newState() -> ModelState {
        ModelState(rate: RateEstimator(shortWindow: shortWindow, longWindow: longWindow))
    }
}

/// What the model has learned that is worth keeping across a restart of the balancer
/// (`capacity.json` under `--state-dir`): per model, the service-curve samples, its batch limit
/// and target, and the frontends' network estimates. Arrival rates and queue delays are not
/// kept: they describe the traffic of the moment, and the next reports bring them back.
public struct LearnedCapacity: Codable, Sendable, Equatable {
    public struct Sample: Codable, Sendable, Equatable {
        public var batchSize: Int
        public var seconds: Double
        public init(batchSize: Int, seconds: Double) {
            self.batchSize = batchSize
            self.seconds = seconds
        }
    }

    public struct Model: Codable, Sendable, Equatable {
        public var name: String
        public var samples: [Sample]
        public var maxBatchSize: Int
        public var targetSeconds: Double?
        public var networkSeconds: Double?
        public var networkP99Seconds: Double?

        public init(
            name: String, samples: [Sample], maxBatchSize: Int, targetSeconds: Double? = nil, networkSeconds: Double? = nil,
            networkP99Seconds: Double? = nil
        ) {
            self.name = name
            self.samples = samples
            self.maxBatchSize = maxBatchSize
            self.targetSeconds = targetSeconds
            self.networkSeconds = networkSeconds
            self.networkP99Seconds = networkP99Seconds
        }
    }

    /// The file's format; a balancer ignores a file of another version.
    public var version: Int
    public var models: [Model]

    public static let currentVersion = 1

    public init(models: [Model]) {
        self.version = Self.currentVersion
        self.models = models
    }
}

import Histogram

/// The outcome of one load test as written to `result.json` (keys in snake_case). Built by
/// `init(recorder:...)` from the merged recorder; every number in the summary and the plots
/// comes from here.
public struct LoadResult: Sendable, Codable {
    /// Percentiles of one latency distribution, µs.
    public struct Percentiles: Sendable, Codable, Equatable {
        public var count: Int
        public var min: UInt64
        public var mean: Double
        public var p50: UInt64
        public var p90: UInt64
        public var p99: UInt64
        public var p999: UInt64
        public var max: UInt64

        /// The percentiles of `histogram` (all 0 when it is empty).
        public init<Count>(_ histogram: Histogram<Count>) {
            count = Int(histogram.totalCount)
            let empty = histogram.totalCount == 0
            min = empty ? 0 : histogram.min
            mean = empty ? 0 : histogram.mean
            p50 = empty ? 0 : histogram.valueAtPercentile(50)
            p90 = empty ? 0 : histogram.valueAtPercentile(90)
            p99 = empty ? 0 : histogram.valueAtPercentile(99)
            p999 = empty ? 0 : histogram.valueAtPercentile(99.9)
            max = empty ? 0 : histogram.max
        }
    }

    /// Mean and p99 of one breakdown part, µs.
    public struct Part: Sendable, Codable, Equatable {
        public var count: Int
        public var mean: Double
        public var p99: UInt64
    }

    /// One second of the time series.
    public struct Second: Sendable, Codable, Equatable {
        /// Second since the start.
        public var t: Int
        /// Whether this second lies in the warm-up.
        public var warmup: Bool
        /// Arrivals intended in this second (sent or dropped).
        public var offered: Int
        /// Successes completed in this second (= achieved rate, requests/s).
        public var ok: Int
        public var errors: Int
        public var dropped: Int
        /// Latency percentiles of the successes completed in this second, µs (0 when none).
        public var p50Us: UInt64
        public var p99Us: UInt64
    }

    /// Warm-up counts (not in the totals).
    public struct Warmup: Sendable, Codable, Equatable {
        public var seconds: Double
        public var completed: Int
        public var dropped: Int
    }

    /// The generator's own cost.
    public struct Generator: Sendable, Codable, Equatable {
        public var cpuUserSeconds: Double
        public var cpuSystemSeconds: Double
        /// Requests the CPU time is divided by: every request sent, warm-up included.
        public var requestsSent: Int
        /// (user + system) / requests sent, µs.
        public var cpuUsPerRequest: Double
    }

    /// The command line that produced this result.
    public var command: String
    /// When the test started (ISO 8601, UTC).
    public var startedAt: String
    public var target: String
    public var model: String
    /// `open` or `closed`.
    public var mode: String
    /// Open loop: the schedule in inline form.
    public var schedule: String?
    public var poisson: Bool
    public var concurrency: Int?
    public var connections: Int
    public var batch: Int
    public var seed: UInt64
    /// Seconds measured (the test minus the warm-up).
    public var measuredSeconds: Double
    /// Measured requests that completed: ok + errors.
    public var requests: Int
    public var ok: Int
    public var errors: Int
    public var errorsByCode: [String: Int]
    /// Measured arrivals not sent because `max_in_flight` requests were outstanding.
    public var dropped: Int
    public var maxInFlight: Int?
    /// Arrivals per second the schedule asked for in the measured window (open loop).
    public var offeredRate: Double?
    /// Successes per second over the measured window.
    public var achievedRate: Double
    /// Latency of measured successes, from the intended send time, µs.
    public var latencyUs: Percentiles
    /// Latency of measured failures from the intended send time, µs (nil without failures).
    public var errorLatencyUs: Percentiles?
    /// Fulcrum's breakdown (absent parts: the server did not send them).
    public var breakdownUs: [String: Part]
    /// A pipeline's steps, keyed `<n>.<model>`: each step's round trip as the frontend saw it
    /// (nil for a model).
    public var stepsUs: [String: Part]?
    public var warmup: Warmup
    public var generator: Generator
    public var timeSeries: [Second]
    /// Pool size over time, when a balancer was given.
    public var pool: [PoolSample]?

    /// The result of a test run with `options`, from the merged `recorder`.
    public init(
        recorder: LoadRecorder, options: LoadOptions, command: String, startedAt: String,
        cpu: ProcessCPU, pool: [PoolSample]?
    ) {
        self.command = command
        self.startedAt = startedAt
        target = options.target.description
        model = options.model
        switch options.mode {
        case .open(let schedule, let poisson):
            mode = "open"
            self.schedule = schedule.inlineDescription
            self.poisson = poisson
            concurrency = nil
            maxInFlight = options.maxInFlight
            let measured = schedule.cumulative(at: schedule.duration) - schedule.cumulative(at: options.warmup)
            offeredRate = measured / max(schedule.duration - options.warmup, 1e-9)
        case .closed(let c, _):
            mode = "closed"
            schedule = nil
            poisson = false
            concurrency = c
            maxInFlight = nil
            offeredRate = nil
        }
        connections = options.connections
        batch = options.batch
        seed = options.seed
        measuredSeconds = options.duration - options.warmup
        ok = recorder.ok
        errors = recorder.errorCount
        requests = ok + errors
        errorsByCode = recorder.errors
        dropped = recorder.dropped
        achievedRate = Double(ok) / max(measuredSeconds, 1e-9)
        latencyUs = Percentiles(recorder.latency)
        errorLatencyUs = recorder.errorLatency.totalCount > 0 ? Percentiles(recorder.errorLatency) : nil
        var parts: [String: Part] = [:]
        for (part, histogram) in recorder.breakdown where histogram.totalCount > 0 {
            parts[part.rawValue] = Part(count: Int(histogram.totalCount), mean: histogram.mean, p99: histogram.valueAtPercentile(99))
        }
        breakdownUs = parts
        var steps: [String: Part] = [:]
        for (step, histogram) in recorder.steps where histogram.totalCount > 0 {
            steps[step] = Part(count: Int(histogram.totalCount), mean: histogram.mean, p99: histogram.valueAtPercentile(99))
        }
        stepsUs = steps.isEmpty ? nil : steps
        warmup = Warmup(seconds: options.warmup, completed: recorder.warmupCompleted, dropped: recorder.warmupDropped)
        let sent = requests + recorder.warmupCompleted
        generator = Generator(
            cpuUserSeconds: cpu.user, cpuSystemSeconds: cpu.system, requestsSent: sent,
            cpuUsPerRequest: sent > 0 ? (cpu.user + cpu.system) * 1_000_000 / Double(sent) : 0
        )
        timeSeries = recorder.seconds.enumerated().map { index, second in
            let empty = second.latency.totalCount == 0
            return Second(
                t: index, warmup: Double(index) < options.warmup, offered: second.offered, ok: second.ok,
                errors: second.errors, dropped: second.dropped,
                p50Us: empty ? 0 : second.latency.valueAtPercentile(50), p99Us: empty ? 0 : second.latency.valueAtPercentile(99)
            )
        }
        self.pool = pool
    }
}

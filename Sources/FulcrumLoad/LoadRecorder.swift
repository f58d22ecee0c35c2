import Histogram

/// Everything a load test measures, as a value: latencies in HdrHistograms (µs, 3 significant
/// digits), Fulcrum's timing breakdown, outcomes by gRPC status, and one bucket per second.
/// Pure: times are given in seconds since the start of the test by the caller. Each connection
/// owns one and they are `merge`d at the end, so recording never contends across connections.
///
/// Latency is `completed - intended`: from the time the schedule meant the request to start, not
/// from when the sender got round to it, so a stalled sender or a backlog shows up in the
/// numbers (no coordinated omission). Requests intended before `warmup` are counted apart and
/// kept out of the histograms and totals. Latency histograms hold successful requests only.
public struct LoadRecorder: Sendable {
    /// How one request ended.
    public enum Outcome: Sendable, Equatable {
        /// A response, with Fulcrum's breakdown when the server sent one.
        case ok(Breakdown?)
        /// A failure; the gRPC status code name (`unavailable`, `deadlineExceeded`, ...).
        case failed(code: String)
    }

    /// The `fulcrum.*_us` response parameters of one response.
    public struct Breakdown: Sendable, Equatable {
        /// Microseconds per part, in `BreakdownPart` order; nil where the server sent none.
        public var micros: [BreakdownPart: UInt64]
        /// A pipeline's steps (`fulcrum.step.<n>.<model>_us`): round trip per step, keyed
        /// `<n>.<model>`; empty for a model.
        public var steps: [String: UInt64]

        /// A breakdown from its parts.
        public init(_ micros: [BreakdownPart: UInt64], steps: [String: UInt64] = [:]) {
            self.micros = micros
            self.steps = steps
        }
    }

    /// One second of the test, by completion time (arrivals and drops by intended time).
    public struct Second: Sendable {
        /// Requests whose intended start fell in this second (sent or dropped).
        public var offered = 0
        /// Successful responses completed in this second.
        public var ok = 0
        /// Failures completed in this second.
        public var errors = 0
        /// Requests dropped by the in-flight cap, by intended second.
        public var dropped = 0
        /// Latency of the successes completed in this second (µs, 2 significant digits).
        public var latency = LoadRecorder.secondHistogram()

        /// Adds another connection's bucket for the same second.
        public mutating func merge(_ other: Second) {
            offered += other.offered
            ok += other.ok
            errors += other.errors
            dropped += other.dropped
            latency.add(other.latency)
        }
    }

    /// Requests intended before this many seconds are warm-up.
    public let warmup: Double
    /// Latency of measured successes, µs.
    public private(set) var latency = LoadRecorder.histogram()
    /// Latency of measured failures, µs: how fast a refusal (say, a full queue) comes back.
    public private(set) var errorLatency = LoadRecorder.histogram()
    /// Breakdown parts of measured successes, µs.
    public private(set) var breakdown: [BreakdownPart: Histogram<UInt64>] = [:]
    /// A pipeline's steps in measured successes (key `<n>.<model>`), µs.
    public private(set) var steps: [String: Histogram<UInt64>] = [:]
    /// Measured successes.
    public private(set) var ok = 0
    /// Measured failures by status code name.
    public private(set) var errors: [String: Int] = [:]
    /// Measured arrivals dropped because too many requests were in flight.
    public private(set) var dropped = 0
    /// Warm-up requests that completed (either way).
    public private(set) var warmupCompleted = 0
    /// Warm-up arrivals dropped.
    public private(set) var warmupDropped = 0
    /// Per-second buckets, index = second since the start.
    public private(set) var seconds: [Second] = []

    /// An empty recorder.
    public init(warmup: Double) {
        self.warmup = warmup
    }

    /// The histogram used for whole-test latencies: 1 µs to 60 s (grows if needed), 3 digits.
    public static func histogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    /// The smaller histogram used per second: 2 digits, 32-bit counts.
    public static func secondHistogram() -> Histogram<UInt32> {
        var histogram = Histogram<UInt32>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)
        histogram.autoResize = true
        return histogram
    }

    /// Measured failures, all codes.
    public var errorCount: Int { errors.values.reduce(0, +) }

    /// Records a request intended at `intended` that completed at `completed` (seconds).
    public mutating func record(intended: Double, completed: Double, outcome: Outcome) {
        let micros = UInt64(max(1, ((completed - intended) * 1_000_000).rounded()))
        let arrival = bucket(intended)
        seconds[arrival].offered += 1
        let done = bucket(completed)
        switch outcome {
        case .ok:
            seconds[done].ok += 1
            _ = seconds[done].latency.record(micros)
        case .failed:
            seconds[done].errors += 1
        }
        guard intended >= warmup else {
            warmupCompleted += 1
            return
        }
        switch outcome {
        case .ok(let parts):
            ok += 1
            _ = latency.record(micros)
            if let parts {
                for (part, value) in parts.micros {
                    _ = breakdown[part, default: Self.histogram()].record(max(1, value))
                }
                for (step, value) in parts.steps {
                    _ = steps[step, default: Self.histogram()].record(max(1, value))
                }
            }
        case .failed(let code):
            errors[code, default: 0] += 1
            _ = errorLatency.record(micros)
        }
    }

    /// Records an arrival that was not sent because the in-flight cap was reached.
    public mutating func recordDropped(intended: Double) {
        let index = bucket(intended)
        seconds[index].offered += 1
        seconds[index].dropped += 1
        if intended >= warmup { dropped += 1 } else { warmupDropped += 1 }
    }

    /// Adds everything `other` recorded (another connection's share of the same test).
    public mutating func merge(_ other: LoadRecorder) {
        latency.add(other.latency)
        errorLatency.add(other.errorLatency)
        for (part, histogram) in other.breakdown {
            breakdown[part, default: Self.histogram()].add(histogram)
        }
        for (step, histogram) in other.steps {
            steps[step, default: Self.histogram()].add(histogram)
        }
        ok += other.ok
        errors.merge(other.errors, uniquingKeysWith: +)
        dropped += other.dropped
        warmupCompleted += other.warmupCompleted
        warmupDropped += other.warmupDropped
        if other.seconds.count > seconds.count {
            seconds.append(contentsOf: (seconds.count..<other.seconds.count).map { _ in Second() })
        }
        for (index, second) in other.seconds.enumerated() {
            seconds[index].merge(second)
        }
    }

    /// The bucket of second `index`, if recorded (for live progress).
    public func second(_ index: Int) -> Second? {
        index >= 0 && index < seconds.count ? seconds[index] : nil
    }

    private mutating func bucket(_ time: Double) -> Int {
        let index = max(0, Int(time))
        if index >= seconds.count {
            seconds.append(contentsOf: (seconds.count...index).map { _ in Second() })
        }
        return index
    }
}

/// A progressive rollout of one version: its share of the unversioned requests rises by `step`
/// every `every` up to `target`, as long as its measured answers stay within the bounds; when
/// they break a bound the route goes back to the baseline by itself.
public struct Rollout: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable {
        case running, completed, halted
    }

    /// What a step of the controller does.
    public enum Decision: Sendable, Equatable {
        /// Nothing to do yet.
        case wait
        /// Time for a step, but not enough answers to judge the version by.
        case hold(reason: String)
        /// Raise the version's share to this many basis points.
        case advance(to: Int)
        /// A bound broke: back to the baseline.
        case halt(reason: String)
    }

    /// The version's answers since the last step, summed over the frontends' reports.
    public struct Window: Sendable, Equatable {
        public var requests: UInt64 = 0
        public var errors: UInt64 = 0
        public var latency = LatencyHistogram()

        public init() {}

        public mutating func add(requests: UInt64, errors: UInt64, latency: LatencyHistogram) {
            self.requests &+= requests
            self.errors &+= errors
            self.latency.merge(latency)
        }
    }

    /// Answers needed before the version is judged (a bound is checked, a step taken).
    public static let minimumRequests: UInt64 = 20

    public var version: String
    public var targetBasisPoints: Int
    public var stepBasisPoints: Int
    public var everyMs: Int
    /// nil: no bound.
    public var maxP99Ms: Double?
    /// A fraction (0.001 = 0.1 %); nil: no bound.
    public var maxErrorRate: Double?
    public var state: State = .running
    public var reason: String = ""
    public var lastStepUnixMs: Int64 = 0
    /// The shares the version's share is taken from, and what the route goes back to on a halt.
    public var baseline: [TrafficRoute.Split] = []
    public var baselinePins: [TrafficRoute.Pin] = []

    public init(
        version: String, targetBasisPoints: Int, stepBasisPoints: Int, everyMs: Int, maxP99Ms: Double? = nil, maxErrorRate: Double? = nil
    ) {
        self.version = version
        self.targetBasisPoints = targetBasisPoints
        self.stepBasisPoints = stepBasisPoints
        self.everyMs = everyMs
        self.maxP99Ms = maxP99Ms
        self.maxErrorRate = maxErrorRate
    }

    /// Refuses settings that cannot run: a target outside (0, 100 %], a step outside (0, target],
    /// an interval under a second or over a day, negative or non-finite bounds.
    public func check(model: String) throws(TrafficRoute.Refusal) {
        guard (1...TrafficRoute.wholeBasisPoints).contains(targetBasisPoints) else {
            throw TrafficRoute.Refusal("rollout of '\(model)': the target share must be above 0% and at most 100%")
        }
        guard (1...targetBasisPoints).contains(stepBasisPoints) else {
            throw TrafficRoute.Refusal("rollout of '\(model)': the step must be above 0% and at most the target (\(TrafficRoute.percent(targetBasisPoints))%)")
        }
        guard (1_000...86_400_000).contains(everyMs) else {
            throw TrafficRoute.Refusal("rollout of '\(model)': the interval between steps must be between 1 s and 24 h")
        }
        if let maxP99Ms, !(maxP99Ms.isFinite && maxP99Ms > 0) {
            throw TrafficRoute.Refusal("rollout of '\(model)': the p99 bound must be a positive number of milliseconds")
        }
        if let maxErrorRate, !(maxErrorRate.isFinite && (0...1).contains(maxErrorRate)) {
            throw TrafficRoute.Refusal("rollout of '\(model)': the error-rate bound must be between 0% and 100%")
        }
    }

    /// What to do now, given the version's answers since the last step and its share now.
    public func judge(_ window: Window, share: Int, nowMs: Int64) -> Decision {
        guard state == .running else { return .wait }
        if window.requests >= Self.minimumRequests {
            if let maxP99Ms, let p99 = window.latency.quantileMilliseconds(0.99), p99 > maxP99Ms {
                return .halt(reason: "version \(version)'s p99 \(Self.format(p99)) ms is over the bound of \(Self.format(maxP99Ms)) ms (\(window.requests) requests)")
            }
            if let maxErrorRate {
                let rate = Double(window.errors) / Double(window.requests)
                if rate > maxErrorRate {
                    return .halt(reason: "version \(version)'s error rate \(Self.format(rate * 100))% (\(window.errors) of \(window.requests) requests) is over the bound of \(Self.format(maxErrorRate * 100))%")
                }
            }
        }
        guard nowMs - lastStepUnixMs >= Int64(everyMs) else { return .wait }
        guard window.requests >= Self.minimumRequests else {
            return .hold(reason: "waiting for traffic: \(window.requests) answers from version \(version) since the last step, \(Self.minimumRequests) needed to judge it")
        }
        return .advance(to: min(share + stepBasisPoints, targetBasisPoints))
    }

    /// The route's shares with `version` at `share` basis points and the baseline's versions
    /// scaled into the rest (largest remainders get the odd basis points, so the sum is exact).
    public func splits(share: Int) -> [TrafficRoute.Split] {
        let others = baseline.filter { $0.version != version && $0.basisPoints > 0 }
        let rest = TrafficRoute.wholeBasisPoints - share
        let weight = others.reduce(0) { $0 + $1.basisPoints }
        var result = [TrafficRoute.Split(version: version, basisPoints: others.isEmpty ? TrafficRoute.wholeBasisPoints : share)]
        guard !others.isEmpty, weight > 0 else { return result }
        var scaled = others.map { TrafficRoute.Split(version: $0.version, basisPoints: $0.basisPoints * rest / weight) }
        let remainders = others.indices.sorted { (others[$0].basisPoints * rest) % weight > (others[$1].basisPoints * rest) % weight }
        var missing = rest - scaled.reduce(0) { $0 + $1.basisPoints }
        for index in remainders where missing > 0 {
            scaled[index].basisPoints += 1
            missing -= 1
        }
        result += scaled
        return result
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

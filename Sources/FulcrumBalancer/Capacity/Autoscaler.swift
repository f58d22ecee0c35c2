/// Decides the compute pool's size: a pure function of observations and a clock, so every rule
/// is tested without sleeping.
///
/// desired = clamp(max(planned, reactive), min, max), where `planned` is the planner's size for
/// the current arrival rate and `reactive` corrects for what the planner missed: when the
/// observed queue delay exceeds its budget, the pool grows in proportion
/// (⌈current · delay / budget⌉). It scales up at once; it scales down only after the desired
/// size has stayed below the current one for the whole stabilisation window, one worker at a
/// time, and never while a scale-up is settling.
public struct Autoscaler<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    /// What the autoscaler saw at one moment.
    public struct Observation: Sendable {
        /// Workers in the pool now (ready or starting).
        public var current: Int
        /// The planner's size for the current load (nil: no estimate yet).
        public var planned: Int?
        /// Observed queue delay (seconds) and its budget.
        public var queueDelay: Double
        public var queueDelayBudget: Double

        public init(current: Int, planned: Int?, queueDelay: Double = 0, queueDelayBudget: Double = .infinity) {
            self.current = current
            self.planned = planned
            self.queueDelay = queueDelay
            self.queueDelayBudget = queueDelayBudget
        }
    }

    /// A decision and why it was taken.
    public struct Decision: Sendable, Equatable {
        public var desired: Int
        public var reason: String
    }

    public var minWorkers: Int
    public var maxWorkers: Int
    public var stabilisation: Duration
    public var settle: Duration
    private var lastScaleUp: Instant?
    private var belowSince: Instant?

    public init(minWorkers: Int, maxWorkers: Int, stabilisation: Duration = .seconds(30), settle: Duration = .seconds(10)) {
        self.minWorkers = max(0, minWorkers)
        self.maxWorkers = max(max(0, minWorkers), maxWorkers)
        self.stabilisation = stabilisation
        self.settle = settle
    }

    /// The size to have now.
    public mutating func decide(_ observation: Observation, now: Instant) -> Decision {
        let current = observation.current
        var target = observation.planned ?? current
        var why = observation.planned.map { "planner: \($0) for the current arrival rate" } ?? "no load estimate yet"
        if observation.queueDelay > observation.queueDelayBudget, observation.queueDelayBudget > 0 {
            let reactive = Int((Double(max(current, 1)) * observation.queueDelay / observation.queueDelayBudget).rounded(.up))
            if reactive > target {
                target = reactive
                why = "queue delay \(Self.ms(observation.queueDelay)) over its budget \(Self.ms(observation.queueDelayBudget)): \(reactive)"
            }
        }
        let clamped = min(max(target, minWorkers), maxWorkers)
        if clamped != target { why += ", clamped to \(clamped) (min \(minWorkers), max \(maxWorkers))" }

        if clamped > current {
            lastScaleUp = now
            belowSince = nil
            return Decision(desired: clamped, reason: "scale up \(current) → \(clamped): \(why)")
        }
        if clamped == current {
            belowSince = nil
            return Decision(desired: current, reason: "hold at \(current): \(why)")
        }
        if let up = lastScaleUp, up.duration(to: now) < settle {
            belowSince = nil
            return Decision(desired: current, reason: "hold at \(current): a scale-up is settling (\(why))")
        }
        guard let since = belowSince else {
            belowSince = now
            return Decision(desired: current, reason: "hold at \(current): below for 0 s of the \(stabilisation) window (\(why))")
        }
        guard since.duration(to: now) >= stabilisation else {
            return Decision(desired: current, reason: "hold at \(current): below for less than the \(stabilisation) window (\(why))")
        }
        belowSince = now
        return Decision(desired: current - 1, reason: "scale down \(current) → \(current - 1) after \(stabilisation) below: \(why)")
    }

    private static func ms(_ seconds: Double) -> String {
        "\(Int((seconds * 1000).rounded())) ms"
    }
}

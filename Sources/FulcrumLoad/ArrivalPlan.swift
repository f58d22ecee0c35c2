/// The open-loop arrival process: the intended send time of every request, decided in advance
/// from the schedule alone, never from how fast the server or the sender is. Pure: it holds no
/// clock; the driver asks `step(now:)` what to do at the time it reads from its clock.
///
/// Evenly spaced arrivals are sent where the schedule's cumulative count crosses n + ½; Poisson
/// arrivals where it crosses the points of a unit-rate Poisson process drawn from a seeded
/// generator (time rescaling), so a ramp or a step stays Poisson at every instant.
public struct ArrivalPlan: Sendable {
    /// What the driver should do now.
    public enum Step: Sendable, Equatable {
        /// Send a request whose intended start is this many seconds after the start of the test.
        /// It may lie in the past: a late sender sends at once, and its latency still counts from
        /// this time.
        case send(intended: Double)
        /// Nothing is due before this time (seconds since the start).
        case wait(until: Double)
        /// The schedule is over.
        case finished
    }

    /// The schedule the arrivals follow.
    public let schedule: RateSchedule
    /// Whether gaps are exponential (Poisson) rather than even.
    public let poisson: Bool
    private var generator: SeededGenerator
    private var target: Double
    private var pending: Double?

    /// A plan for `schedule`; `seed` fixes the Poisson draws.
    public init(schedule: RateSchedule, poisson: Bool, seed: UInt64) {
        self.schedule = schedule
        self.poisson = poisson
        generator = SeededGenerator(seed: seed)
        target = 0
        pending = nil
        target = poisson ? generator.exponential(mean: 1) : 0.5
        pending = schedule.time(forCumulative: target)
    }

    /// The next intended send time without consuming it.
    public var nextIntended: Double? { pending }

    /// What to do at `now` (seconds since the start). Each `.send` consumes one arrival; call
    /// again at once to drain a backlog after a stall.
    public mutating func step(now: Double) -> Step {
        guard let due = pending else { return .finished }
        guard due <= now else { return .wait(until: due) }
        target += poisson ? generator.exponential(mean: 1) : 1
        pending = schedule.time(forCumulative: target)
        return .send(intended: due)
    }

    /// Whether a due request may be sent with `inFlight` requests outstanding under `cap`. When
    /// not, the driver records it as dropped (it is never delayed: that would hide the overload).
    public static func admits(inFlight: Int, cap: Int) -> Bool {
        inFlight < cap
    }
}

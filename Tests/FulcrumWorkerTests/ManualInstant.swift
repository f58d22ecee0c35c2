/// A clock reading that tests set by hand: the scheduler's decisions are checked without sleeping.
struct ManualInstant: InstantProtocol, Sendable, CustomStringConvertible {
    var sinceStart: Duration

    static let zero = ManualInstant(sinceStart: .zero)

    static func ms(_ milliseconds: Int) -> ManualInstant {
        ManualInstant(sinceStart: .milliseconds(milliseconds))
    }

    static func us(_ microseconds: Int) -> ManualInstant {
        ManualInstant(sinceStart: .microseconds(microseconds))
    }

    func advanced(by duration: Duration) -> ManualInstant {
        ManualInstant(sinceStart: sinceStart + duration)
    }

    func duration(to other: ManualInstant) -> Duration {
        other.sinceStart - sinceStart
    }

    static func < (lhs: ManualInstant, rhs: ManualInstant) -> Bool {
        lhs.sinceStart < rhs.sinceStart
    }

    var description: String { "t+\(sinceStart)" }
}

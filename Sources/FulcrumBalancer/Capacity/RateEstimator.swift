import Foundation

/// The arrival rate of one model, smoothed over a short and a long window (exponentially
/// weighted, so old observations fade rather than drop off a cliff). Pure: observations carry
/// their own time.
public struct RateEstimator<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    /// Time constants of the two windows.
    public let shortWindow: Duration
    public let longWindow: Duration
    /// Smoothed rates, requests per second.
    public private(set) var shortRate: Double = 0
    public private(set) var longRate: Double = 0
    private var last: Instant?

    public init(shortWindow: Duration = .seconds(2), longWindow: Duration = .seconds(30)) {
        self.shortWindow = shortWindow
        self.longWindow = longWindow
    }

    /// `count` requests arrived since the previous observation, which ends at `now`.
    public mutating func observe(_ count: Double, at now: Instant) {
        guard let last else {
            self.last = now
            return
        }
        let elapsed = Self.seconds(last.duration(to: now))
        guard elapsed > 0 else {
            return
        }
        let instantaneous = count / elapsed
        shortRate += (instantaneous - shortRate) * (1 - Foundation.exp(-elapsed / Self.seconds(shortWindow)))
        longRate += (instantaneous - longRate) * (1 - Foundation.exp(-elapsed / Self.seconds(longWindow)))
        self.last = now
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

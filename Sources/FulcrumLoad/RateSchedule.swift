import Foundation

/// Offered load as a pure function of time since the start of a test: a sequence of segments,
/// each holding a constant rate or ramping linearly between two rates. Steps, sweeps and spikes
/// are written as sequences of segments.
///
/// Inline form (`--schedule`): comma-separated segments, `RATE@SECONDS` for a constant rate and
/// `FROM-TO@SECONDS` for a linear ramp, e.g. `100@10,100-400@20,400@10,1500@2,100@10`.
public struct RateSchedule: Sendable, Hashable, Codable {
    /// One piece of the schedule.
    public struct Segment: Sendable, Hashable, Codable {
        /// Requests per second at the start of the segment.
        public var from: Double
        /// Requests per second at the end of the segment (equal to `from` for a constant rate).
        public var to: Double
        /// Length of the segment in seconds.
        public var seconds: Double

        /// A segment ramping from `from` to `to` over `seconds`.
        public init(from: Double, to: Double, seconds: Double) {
            self.from = from
            self.to = to
            self.seconds = seconds
        }

        /// A constant-rate segment.
        public static func constant(_ rate: Double, seconds: Double) -> Segment {
            Segment(from: rate, to: rate, seconds: seconds)
        }
    }

    /// The segments, in order.
    public var segments: [Segment]

    /// A schedule of the given segments.
    public init(_ segments: [Segment]) {
        self.segments = segments
    }

    /// A constant rate for `seconds`.
    public static func constant(_ rate: Double, seconds: Double) -> RateSchedule {
        RateSchedule([.constant(rate, seconds: seconds)])
    }

    /// Total length in seconds.
    public var duration: Double { segments.reduce(0) { $0 + $1.seconds } }

    /// The highest rate anywhere in the schedule.
    public var peakRate: Double { segments.map { max($0.from, $0.to) }.max() ?? 0 }

    /// The offered rate (requests/s) at `t` seconds; 0 outside the schedule.
    public func rate(at t: Double) -> Double {
        guard t >= 0 else { return 0 }
        var start = 0.0
        for segment in segments {
            if t < start + segment.seconds {
                let fraction = segment.seconds > 0 ? (t - start) / segment.seconds : 0
                return segment.from + (segment.to - segment.from) * fraction
            }
            start += segment.seconds
        }
        return 0
    }

    /// Expected arrivals from 0 to `t` seconds: the integral of the rate.
    public func cumulative(at t: Double) -> Double {
        var start = 0.0
        var total = 0.0
        for segment in segments {
            let s = min(max(t - start, 0), segment.seconds)
            guard s > 0, segment.seconds > 0 else { break }
            total += segment.from * s + (segment.to - segment.from) * s * s / (2 * segment.seconds)
            start += segment.seconds
        }
        return total
    }

    /// The first time at which `cumulative(at:)` reaches `target`, or nil when the schedule ends
    /// first. Arrival n of a load test is sent at `time(forCumulative: n)` (evenly spaced) or at
    /// the n-th point of a unit-rate Poisson process mapped through this (time rescaling, which
    /// gives a Poisson process whose rate follows the schedule).
    public func time(forCumulative target: Double) -> Double? {
        var remaining = max(target, 0)
        var start = 0.0
        for segment in segments {
            let a = segment.from, b = segment.to, length = segment.seconds
            let area = (a + b) / 2 * length
            if remaining <= area, area > 0 {
                let s: Double
                if a == b {
                    s = remaining / a
                } else {
                    let slope = (b - a) / length
                    s = (-a + (max(a * a + 2 * slope * remaining, 0)).squareRoot()) / slope
                }
                return start + min(max(s, 0), length)
            }
            remaining -= area
            start += length
        }
        return nil
    }

    /// Parses the inline form; the error names the segment that is wrong.
    public init(parsing text: String) throws {
        var segments: [Segment] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let pieces = part.split(separator: "@")
            guard pieces.count == 2, let seconds = Double(pieces[1]), seconds > 0 else {
                throw LoadError("schedule segment '\(part)': expected RATE@SECONDS or FROM-TO@SECONDS with SECONDS > 0")
            }
            let rates = pieces[0].split(separator: "-").map { Double($0) }
            guard (1...2).contains(rates.count), rates.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                throw LoadError("schedule segment '\(part)': the rate must be a number ≥ 0 or FROM-TO")
            }
            segments.append(Segment(from: rates[0]!, to: rates.last!!, seconds: seconds))
        }
        guard !segments.isEmpty else { throw LoadError("schedule '\(text)' has no segments; e.g. 100@10,200@10") }
        self.init(segments)
    }

    /// The inline form of this schedule.
    public var inlineDescription: String {
        segments.map { segment in
            let seconds = Self.format(segment.seconds)
            return segment.from == segment.to
                ? "\(Self.format(segment.from))@\(seconds)" : "\(Self.format(segment.from))-\(Self.format(segment.to))@\(seconds)"
        }.joined(separator: ",")
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

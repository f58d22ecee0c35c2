/// Request latencies as counts per bucket, mergeable across frontends: a frontend reports the
/// counts, the balancer adds them up and reads quantiles. Bucket i holds latencies up to
/// `upperBoundsMicroseconds[i]` (20 % apart, 50 µs to about 70 s); the last bucket holds the rest.
public struct LatencyHistogram: Sendable, Equatable {
    public static let upperBoundsMicroseconds: [UInt64] = {
        var bounds: [UInt64] = []
        var bound = 50.0
        while bound < 70_000_000 {
            bounds.append(UInt64(bound.rounded()))
            bound *= 1.2
        }
        return bounds
    }()

    /// One count per bound, plus the overflow bucket.
    public private(set) var counts: [UInt64]

    public init() {
        counts = Array(repeating: 0, count: Self.upperBoundsMicroseconds.count + 1)
    }

    /// Counts from a report; extra entries are folded into the last bucket, missing ones are 0.
    public init(counts reported: [UInt64]) {
        self.init()
        for (index, count) in reported.enumerated() {
            let slot = min(index, counts.count - 1)
            counts[slot] = counts[slot].addingReportingOverflow(count).overflow ? .max : counts[slot] + count
        }
    }

    public var total: UInt64 { counts.reduce(0) { $0.addingReportingOverflow($1).overflow ? .max : $0 + $1 } }

    public mutating func record(microseconds: UInt64) {
        var low = 0
        var high = Self.upperBoundsMicroseconds.count
        while low < high {
            let middle = (low + high) / 2
            if Self.upperBoundsMicroseconds[middle] < microseconds { low = middle + 1 } else { high = middle }
        }
        counts[low] &+= 1
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices {
            let (sum, overflow) = counts[index].addingReportingOverflow(other.counts[index])
            counts[index] = overflow ? .max : sum
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0...1), in milliseconds; nil when empty.
    /// At most 20 % above the true value (the bucket width).
    public func quantileMilliseconds(_ q: Double) -> Double? {
        let all = total
        guard all > 0 else { return nil }
        let rank = max(1, UInt64((Double(all) * q).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank {
                let bound = index < Self.upperBoundsMicroseconds.count ? Self.upperBoundsMicroseconds[index] : Self.upperBoundsMicroseconds.last! * 2
                return Double(bound) / 1000
            }
        }
        return Double(Self.upperBoundsMicroseconds.last! * 2) / 1000
    }
}

/// Assigns arena offsets to tensors with known lifetimes so that tensors alive at the same
/// time never overlap and the arena stays small: greedy by size (largest first), each placed at
/// the lowest 64-byte-aligned offset that fits between the tensors already placed whose
/// lifetimes overlap its own. A pure function of its input, planned once per bound shape.
enum MemoryPlanner {
    /// One tensor: its bytes and the first and last node positions (inclusive) it is alive at.
    struct Interval: Sendable, Equatable {
        var value: Int
        var bytes: Int
        var first: Int
        var last: Int

        func overlaps(_ other: Interval) -> Bool { first <= other.last && other.first <= last }
    }

    /// Offsets per value and the arena size.
    struct Layout: Sendable, Equatable {
        var offsets: [Int: Int]
        var totalBytes: Int
    }

    /// Bytes are rounded up to this, so every tensor starts cache-line (and AVX-512) aligned.
    static let alignment = 64

    /// Plans `intervals` (values must be distinct).
    static func plan(_ intervals: [Interval]) -> Layout {
        let order = intervals.indices.sorted {
            intervals[$0].bytes != intervals[$1].bytes ? intervals[$0].bytes > intervals[$1].bytes : intervals[$0].first < intervals[$1].first
        }
        var placed: [(offset: Int, size: Int, interval: Interval)] = []
        var offsets: [Int: Int] = [:]
        var total = 0
        for index in order {
            let interval = intervals[index]
            let size = (interval.bytes + alignment - 1) / alignment * alignment
            let conflicts = placed.filter { $0.interval.overlaps(interval) }.sorted { $0.offset < $1.offset }
            var offset = 0
            for conflict in conflicts {
                if offset + size <= conflict.offset { break }
                offset = max(offset, conflict.offset + conflict.size)
            }
            placed.append((offset, size, interval))
            offsets[interval.value] = offset
            total = max(total, offset + size)
        }
        return Layout(offsets: offsets, totalBytes: total)
    }
}

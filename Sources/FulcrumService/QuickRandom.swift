import Synchronization

/// A cheap source of random numbers for choices that must be unpredictable enough to spread
/// load or sample, and ids that must be unique, not secret: SplitMix64 over one atomic
/// counter, seeded once from the system's generator. Drawn on every prediction's path (the
/// router's two choices, span ids, sampling), where `SystemRandomNumberGenerator` costs a
/// `getrandom` system call per 8 bytes. Never use it for keys, tokens or anything secret.
public struct QuickRandom: RandomNumberGenerator, Sendable {
    public init() {}

    public mutating func next() -> UInt64 { Self.next() }

    private static let state = Atomic<UInt64>({
        var system = SystemRandomNumberGenerator()
        return system.next()
    }())

    /// The next 64 bits.
    public static func next() -> UInt64 {
        var z = state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `range`, as `Int.random(in:)` draws it.
    public static func int(in range: Range<Int>) -> Int {
        var generator = QuickRandom()
        return Int.random(in: range, using: &generator)
    }
}

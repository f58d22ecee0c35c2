/// A small, fast, seedable random number generator (SplitMix64), so that a load test's Poisson
/// arrivals and random inputs are reproducible from `--seed`. Not for cryptography.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform draw in (0, 1]: never 0, so `-log(u)` is finite.
    public mutating func unitInterval() -> Double {
        (Double(next() >> 11) + 1) / Double(1 << 53)
    }

    /// An exponentially distributed draw with the given mean (inter-arrival times of a Poisson
    /// process).
    public mutating func exponential(mean: Double) -> Double {
        -mean * log(unitInterval())
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

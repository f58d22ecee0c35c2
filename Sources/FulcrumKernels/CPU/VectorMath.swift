/// Vectorised single-precision transcendental functions (8 lanes), used by the CPU kernels.
///
/// `exp` is Cephes' `expf` scheme (range reduction by ln 2 in two parts, degree-6 polynomial,
/// exponent assembled in the bits): within 2 ulp of libm over the whole FP32 range, with inputs
/// clamped to [-87.3, 88.7] (the result underflows to ~1e-38 or saturates at ~3e38 instead of
/// reaching 0 or infinity). Everything else builds on it.
public enum VectorMath {
    /// e^x for 8 lanes (see the type's note on range and accuracy).
    @inlinable @inline(__always)
    public static func exp(_ input: SIMD8<Float>) -> SIMD8<Float> {
        var x = input.clamped(lowerBound: SIMD8(repeating: -87.33654), upperBound: SIMD8(repeating: 88.72283))
        // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick: the sum's low mantissa
        // bits hold the integer, so no (slow, per-lane) float-to-int conversion is needed.
        let magic = SIMD8<Float>(repeating: 12582912)
        let shifted = x * 1.44269504088896341 + magic
        let n = shifted - magic
        x = x - n * 0.693359375
        x = x + n * 2.12194440e-4
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * x + 1.3981999507e-3
        p = p * x + 8.3334519073e-3
        p = p * x + 4.1665795894e-2
        p = p * x + 1.6666665459e-1
        p = p * x + 5.0000001201e-1
        let y = p * (x * x) + x + 1
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let exponent = (integer &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// The logistic function `1 / (1 + e^-x)` for 8 lanes.
    @inlinable @inline(__always)
    public static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
        1 / (1 + exp(-x))
    }
}

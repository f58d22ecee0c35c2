/// Vectorised single-precision functions (8 or 16 lanes), used by the CPU kernels.
///
/// Written with `SIMD8<Float>` and plain comparisons/selects only: the package is compiled for
/// the x86-64 baseline (SSE2, no FMA), so each `SIMD8` operation is two 4-lane instructions, and
/// the standard library's generic `pointwiseMin`/`pointwiseMax`/`max()` are avoided because they
/// are not inlined (a call and a lane-by-lane loop per vector).
///
/// - `exp` is Cephes' `expf` scheme (range reduction by ln 2 in two parts, degree-6 polynomial,
///   exponent assembled in the bits): within 2 ulp of libm over the whole FP32 range, with
///   inputs clamped to [-87.3, 88.7] (the result underflows to ~1e-38 or saturates at ~3e38
///   instead of reaching 0 or infinity).
/// - `erf` is this file's own piecewise approximation (coefficients fitted for Fulcrum by
///   iteratively reweighted least squares on Chebyshev nodes against double-precision erf):
///   `x · P(x²)` for |x| < 1 (P of degree 5) and `1 − e^(−x²) · Q(1 / (1 + 0.4|x|))` above
///   (Q of degree 7, valid to |x| = 10). Relative error ≤ 1.6e-7 (about 3 ulp) over the FP32
///   range.
/// - `gelu` and `tanh` are described at their declarations.
///
/// Polynomial functions also come in 16 lanes (four SSE registers per operation), so that the
/// long dependency chains of neighbouring lanes overlap; `VectorMathTests` compares every
/// function with double-precision libm over its range.
public enum VectorMath {
    /// Lanewise `min(max(x, low), high)` without the generic stdlib path.
    @inlinable @inline(__always)
    public static func clamp(_ x: SIMD8<Float>, _ low: Float, _ high: Float) -> SIMD8<Float> {
        let a = x.replacing(with: low, where: x .< low)
        return a.replacing(with: high, where: a .> high)
    }

    /// Lanewise maximum of two vectors.
    @inlinable @inline(__always)
    public static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        a.replacing(with: b, where: b .> a)
    }

    /// The largest lane.
    @inlinable @inline(__always)
    public static func horizontalMaximum(_ v: SIMD8<Float>) -> Float {
        let four = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
        let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
        return two[0] > two[1] ? two[0] : two[1]
    }

    /// The sum of the lanes (pairwise).
    @inlinable @inline(__always)
    public static func horizontalSum(_ v: SIMD8<Float>) -> Float {
        let four = v.lowHalf + v.highHalf
        let two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    /// e^x for 8 lanes (see the type's note on range and accuracy).
    @inlinable @inline(__always)
    public static func exp(_ input: SIMD8<Float>) -> SIMD8<Float> {
        var x = clamp(input, -87.33654, 88.72283)
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

    /// Whether any lane of `mask` is set (the stdlib's `any` reduces lane by lane).
    @inlinable @inline(__always)
    static func anyLane(_ mask: SIMDMask<SIMD16<Int32>>) -> Bool {
        let v = unsafeBitCast(mask, to: SIMD16<Int32>.self)
        let eight = v.lowHalf | v.highHalf
        let four = eight.lowHalf | eight.highHalf
        return (four[0] | four[1] | four[2] | four[3]) != 0
    }

    /// Whether every lane of `mask` is set.
    @inlinable @inline(__always)
    static func allLanes(_ mask: SIMDMask<SIMD16<Int32>>) -> Bool {
        let v = unsafeBitCast(mask, to: SIMD16<Int32>.self)
        let eight = v.lowHalf & v.highHalf
        let four = eight.lowHalf & eight.highHalf
        return (four[0] & four[1] & four[2] & four[3]) != 0
    }

    /// e^x for 16 lanes: two independent 8-lane evaluations, so their dependency chains overlap.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        SIMD16(lowHalf: exp(x.lowHalf), highHalf: exp(x.highHalf))
    }

    /// The logistic function for 16 lanes.
    @inlinable @inline(__always)
    public static func sigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> {
        1 / (1 + exp(-x))
    }

    /// `|x|` by clearing the sign bits.
    @inlinable @inline(__always)
    static func magnitude(_ x: SIMD16<Float>) -> SIMD16<Float> {
        unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
    }

    /// `magnitude` with the sign of `sign` (both non-NaN).
    @inlinable @inline(__always)
    static func copySign(_ magnitude: SIMD16<Float>, _ sign: SIMD16<Float>) -> SIMD16<Float> {
        let bits = unsafeBitCast(sign, to: SIMD16<UInt32>.self) & 0x8000_0000
        return unsafeBitCast(unsafeBitCast(magnitude, to: SIMD16<UInt32>.self) | bits, to: SIMD16<Float>.self)
    }

    /// `erf(x) / x` for |x| < 1, as a polynomial in `u = x²`.
    @inlinable @inline(__always)
    static func erfSmall(_ u: SIMD16<Float>) -> SIMD16<Float> {
        var p = SIMD16<Float>(repeating: -5.631506792e-4)
        p = p * u + 4.917575046e-3
        p = p * u - 2.671133541e-2
        p = p * u + 1.128018126e-1
        p = p * u - 3.761232495e-1
        return p * u + 1.128379107
    }

    /// `erfc(a)` for 1 ≤ a (a ≥ 0): `e^(−a²) · Q(1 / (1 + 0.4 a))`, Q fitted on [1, 10]
    /// (beyond 10 the exponential has underflowed to ~1e-38 and the result is as good as 0).
    @inlinable @inline(__always)
    static func erfcLarge(_ a: SIMD16<Float>) -> SIMD16<Float> {
        let t = 1 / (1 + 0.4 * a)
        var q = SIMD16<Float>(repeating: -1.188739464e-1)
        q = q * t + 2.512893379e-1
        q = q * t - 1.116588712e-3
        q = q * t + 2.191989124e-1
        q = q * t + 1.964488477e-1
        q = q * t + 2.272045910e-1
        q = q * t + 2.255669385e-1
        q = q * t + 2.906455848e-6
        return exp(-(a * a)) * q
    }

    /// The Gauss error function for 16 lanes (see the type's note on accuracy).
    @inlinable @inline(__always)
    public static func erf(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let a = magnitude(x)
        let small = a .< 1
        let inner = x * erfSmall(x * x)
        if allLanes(small) { return inner }
        let outer = copySign(1 - erfcLarge(a), x)
        return outer.replacing(with: inner, where: small)
    }

    /// Exact Gelu `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))` for 16 lanes, branch-free, as
    /// `0.5 · ((x + |x|) − |x| · erfc(|x| / √2))`: for x < 0 the first term is exactly 0, so
    /// small negative outputs keep their relative accuracy (no cancellation in `1 + erf`).
    /// `erfc(a) = e^(−a²) · R(1 / (1 + 0.4 a))` with R of degree 9 fitted on [0, 10] like `erf`'s
    /// polynomials (relative error of R 3e-8). Measured against double precision: relative
    /// error ≤ 4e-6 for |x| < 6 (from rounding x² inside the exponential), absolute ≤ 4e-7.
    @inlinable @inline(__always)
    public static func gelu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let ax = magnitude(x)
        let a = ax * 0.70710678118654752
        let t = 1 / (1 + 0.28284271247461901 * ax)  // 0.4 · a
        var r = SIMD16<Float>(repeating: 2.868962847e-2)
        r = r * t - 7.471997291e-2
        r = r * t - 6.374449283e-2
        r = r * t + 2.758525908e-1
        r = r * t - 6.860952079e-2
        r = r * t + 2.686550617e-1
        r = r * t + 1.774120927e-1
        r = r * t + 2.313557118e-1
        r = r * t + 2.250825465e-1
        r = r * t + 2.640521598e-5
        let tail = exp(-(a * a)) * r
        let result = 0.5 * ((x + ax) - ax * tail)
        // Beyond |x| ≈ 14 Gelu is Relu in FP32; this also keeps ±infinity finite-safe (∞ − ∞).
        let huge = ax .> 14
        if !anyLane(huge) { return result }
        return result.replacing(with: x.replacing(with: 0, where: x .< 0), where: huge)
    }

    /// `tanh(x)` for 16 lanes: an odd polynomial for |x| < 0.625 and `1 − 2 / (e^(2|x|) + 1)`
    /// with x's sign above (relative error ≤ ~3e-7; exactly ±1 beyond |x| ≈ 9).
    @inlinable @inline(__always)
    public static func tanh(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let a = magnitude(x)
        let small = a .< 0.625
        // x + x³ · P(x²), P of degree 4 fitted like erf's.
        let u = x * x
        var p = SIMD16<Float>(repeating: -6.103833206e-3)
        p = p * u + 2.100343257e-2
        p = p * u - 5.385274068e-2
        p = p * u + 1.333279014e-1
        p = p * u - 3.333332837e-1
        let inner = x + x * u * p
        if allLanes(small) { return inner }
        let outer = copySign(1 - 2 / (exp(2 * a) + 1), x)
        return outer.replacing(with: inner, where: small)
    }
}

import FulcrumKernels
import Testing

/// The vectorised functions against double-precision libm, over their whole useful range, at
/// the tolerances `VectorMath` documents; and the array kernels built on them against scalar
/// loops for counts that exercise the 8/16-lane tails.
@Suite("VectorMath against libm")
struct VectorMathTests {
    let backend = CPUBackend()

    /// `count` points spread over [low, high], plus the given extra points.
    func grid(_ low: Float, _ high: Float, count: Int = 200_003, extra: [Float] = []) -> [Float] {
        (0..<count).map { low + (high - low) * Float($0) / Float(count - 1) } + extra
    }

    /// Applies a 16-lane function to every element (the last vector padded).
    func apply(_ values: [Float], _ f: (SIMD16<Float>) -> SIMD16<Float>) -> [Float] {
        var out: [Float] = []
        var index = 0
        while index < values.count {
            var v = SIMD16<Float>(repeating: 0)
            let n = min(16, values.count - index)
            for lane in 0..<n { v[lane] = values[index + lane] }
            let y = f(v)
            for lane in 0..<n { out.append(y[lane]) }
            index += 16
        }
        return out
    }

    static let tiny: [Float] = [0, -0.0, 1e-30, -1e-30, 1e-7, -3e-6, 0.999_999, 1, 1.000_001, -1, 0.625, -0.625]

    @Test("erf: relative error ≤ 3e-7 against double erf on [-12, 12] and tiny arguments")
    func erf() {
        let xs = grid(-12, 12, extra: Self.tiny)
        let ys = apply(xs, VectorMath.erf)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let reference = _erf(Double(x))
            let error = reference == 0 ? abs(Double(y)) : abs(Double(y) - reference) / abs(reference)
            worst = max(worst, error)
        }
        #expect(worst <= 3e-7, "worst relative error \(worst)")
        let special = apply([.infinity, -.infinity, .nan, 100, -100], VectorMath.erf)
        #expect(special[0] == 1 && special[1] == -1 && special[2].isNaN && special[3] == 1 && special[4] == -1, "\(special)")
    }

    @Test("gelu: within 4e-7 + 5e-6·|gelu| of 0.5·x·erfc(−x/√2) on [-20, 20]")
    func gelu() {
        let xs = grid(-20, 20, extra: Self.tiny)
        let ys = apply(xs, VectorMath.gelu)
        for (x, y) in zip(xs, ys) {
            let reference = 0.5 * Double(x) * _erfc(-Double(x) / 2.0.squareRoot())
            let bound = 4e-7 + 5e-6 * abs(reference)
            if abs(Double(y) - reference) > bound {
                Issue.record("gelu(\(x)) = \(y), expected \(reference)")
                return
            }
        }
        // Negative inputs keep relative accuracy where 1 + erf would cancel.
        for x: Float in [-3, -4, -5, -6] {
            let y = apply([x], VectorMath.gelu)[0]
            let reference = 0.5 * Double(x) * _erfc(-Double(x) / 2.0.squareRoot())
            #expect(abs(Double(y) - reference) <= 5e-6 * abs(reference), "gelu(\(x)) = \(y), expected \(reference)")
        }
        let special = apply([.infinity, -.infinity, .nan], VectorMath.gelu)
        #expect(special[0] == .infinity && special[1] == 0 && special[2].isNaN, "\(special)")
    }

    @Test("tanh: relative error ≤ 5e-7 on [-12, 12]")
    func tanh() {
        let xs = grid(-12, 12, extra: Self.tiny)
        let ys = apply(xs, VectorMath.tanh)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let reference = _tanh(Double(x))
            worst = max(worst, reference == 0 ? abs(Double(y)) : abs(Double(y) - reference) / abs(reference))
        }
        #expect(worst <= 5e-7, "worst relative error \(worst)")
        let special = apply([.infinity, -.infinity, 50, -50], VectorMath.tanh)
        #expect(special == [1, -1, 1, -1], "\(special)")
    }

    @Test("exp: relative error ≤ 3e-7 on [-87, 88]; 8 and 16 lanes agree")
    func exp() {
        let xs = grid(-87, 88)
        let ys = apply(xs, VectorMath.exp)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let reference = _exp(Double(x))
            worst = max(worst, abs(Double(y) - reference) / reference)
        }
        #expect(worst <= 3e-7, "worst relative error \(worst)")
        let v = SIMD8<Float>(-3, -1, 0, 0.5, 1, 2, 10, -20)
        let wide = VectorMath.exp(SIMD16(lowHalf: v, highHalf: v))
        #expect(wide.lowHalf == VectorMath.exp(v) && wide.highHalf == VectorMath.exp(v))
    }

    @Test(
        "unary kernels match their 16-lane function or libm at every count (tails)",
        arguments: [UnaryOperator.erf, .gelu, .geluTanh, .tanh, .exp, .sigmoid], [1, 7, 8, 15, 16, 17, 33, 1000])
    func unaryTails(op: UnaryOperator, count: Int) {
        var random = SplitMix(state: UInt64(count) &* 977)
        let input = random.floats(count).map { $0 * 3 }
        var output = [Float](repeating: .nan, count: count)
        backend.unary(op, input, &output, count: count)
        for (x, y) in zip(input, output) {
            let d = Double(x)
            let reference: Double
            switch op {
            case .erf: reference = _erf(d)
            case .gelu: reference = 0.5 * d * (1 + _erf(d / 2.0.squareRoot()))
            case .geluTanh: reference = 0.5 * d * (1 + _tanh(0.797_884_560_802_865_36 * (d + 0.044715 * d * d * d)))
            case .tanh: reference = _tanh(d)
            case .exp: reference = _exp(d)
            default: reference = 1 / (1 + _exp(-d))
            }
            #expect(abs(Double(y) - reference) <= 1e-6 * max(1, abs(reference)), "\(op)(\(x)) = \(y), expected \(reference)")
        }
        // In place gives the same.
        var inPlace = input
        inPlace.withUnsafeMutableBufferPointer { backend.unary(op, $0.baseAddress!, $0.baseAddress!, count: count) }
        #expect(inPlace == output)
    }
}

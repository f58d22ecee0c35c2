import FulcrumKernels
import Testing

/// Deterministic pseudo-random numbers (SplitMix64) so failures reproduce.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 4 - 2 }
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }
    mutating func int32s(_ count: Int, range: Int32 = 1000) -> [Int32] {
        (0..<count).map { _ in Int32(Int64(next() % UInt64(2 * Int64(range))) - Int64(range)) }
    }
}

/// Index of `outIndex` (flat, in `out` shape) in an input of `shape`, numpy broadcasting.
func broadcastIndex(_ outIndex: Int, out: [Int], input: [Int]) -> Int {
    var remainder = outIndex
    var index = 0
    var step = 1
    let offset = out.count - input.count
    for d in stride(from: out.count - 1, through: 0, by: -1) {
        let coordinate = remainder % out[d]
        remainder /= out[d]
        if d >= offset {
            let size = input[d - offset]
            if size != 1 { index += coordinate * step }
            step *= size
        }
    }
    return index
}

@Suite("CPU backend kernels against reference loops")
struct CPUBackendTests {
    let backend = CPUBackend()

    @Test("clip clamps every element, and a low bound above the high one gives the high bound everywhere (ONNX)")
    func clip() {
        let input: [Float] = (0..<21).map { Float($0) - 10 }
        var out = [Float](repeating: 0, count: input.count)
        backend.clip(input, &out, count: input.count, low: -3, high: 4)
        #expect(out == input.map { Swift.min(Swift.max($0, -3), 4) })
        backend.clip(input, &out, count: input.count, low: 5, high: 1)
        #expect(out == [Float](repeating: 1, count: input.count))
    }

    @Test("supports(op:) answers for the implemented operators")
    func supports() {
        #expect(backend.name == "cpu")
        for op in ["Add", "Sub", "Gemm", "MatMul", "Relu", "Sigmoid", "Softmax"] { #expect(backend.supports(op: op)) }
        #expect(!backend.supports(op: "GridSample"))
        #expect(!backend.supports(op: "add"))
    }

    @Test(
        "sgemm matches a triple loop",
        arguments: [(1, 1, 1), (3, 5, 7), (17, 1, 9), (33, 31, 29), (2, 64, 1), (4, 3, 0)],
        [(false, false), (true, false), (false, true), (true, true)])
    func sgemm(size: (Int, Int, Int), transpose: (Bool, Bool)) {
        let (m, n, k) = size
        var random = SplitMix(state: UInt64(m * 1000 + n * 10 + k))
        let a = random.floats(m * k)
        let b = random.floats(k * n)
        let c0 = random.floats(m * n)
        let (alpha, beta): (Float, Float) = (1.5, -0.5)
        // Stored layouts: A is k×m when transposed, B is n×k when transposed.
        func aAt(_ i: Int, _ p: Int) -> Float { transpose.0 ? a[p * m + i] : a[i * k + p] }
        func bAt(_ p: Int, _ j: Int) -> Float { transpose.1 ? b[j * k + p] : b[p * n + j] }
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += aAt(i, p) * bAt(p, j) }
                expected[i * n + j] = alpha * sum + beta * c0[i * n + j]
            }
        }
        var c = c0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    backend.sgemm(
                        transposeA: transpose.0, transposeB: transpose.1, m: m, n: n, k: k, alpha: alpha,
                        a: pa.baseAddress ?? UnsafePointer(bitPattern: 8)!, lda: transpose.0 ? m : max(k, 1),
                        b: pb.baseAddress ?? UnsafePointer(bitPattern: 8)!, ldb: transpose.1 ? max(k, 1) : n,
                        beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
        for i in 0..<(m * n) {
            #expect(abs(c[i] - expected[i]) <= 1e-4 * Float(max(k, 1)), "element \(i): \(c[i]) vs \(expected[i])")
        }
    }

    static let shapePairs: [([Int], [Int])] = [
        ([7], [7]), ([37], [1]), ([1], [37]), ([], [5]), ([3, 1, 5], [4, 1]), ([2, 3, 4], [3, 4]),
        ([2, 1, 17], [1, 9, 1]), ([1, 1], [1]), ([5, 1, 3, 1], [1, 6, 1, 11]), ([0, 3], [1, 3]), ([], []),
    ]

    @Test("FP32 binary ops broadcast like numpy", arguments: shapePairs, BinaryOperator.allCases)
    func binaryFloat(shapes: ([Int], [Int]), op: BinaryOperator) throws {
        let (sa, sb) = shapes
        let layout = try #require(BroadcastLayout(sa, sb))
        var random = SplitMix(state: 42)
        let a = random.floats(sa.reduce(1, *))
        let b = random.floats(sb.reduce(1, *)).map { $0 + 3 }  // keep divisors away from 0
        var out = [Float](repeating: .nan, count: layout.elementCount)
        backend.binary(op, a, b, &out, layout: layout)
        for i in 0..<layout.elementCount {
            let x = a[broadcastIndex(i, out: layout.outputShape, input: sa)]
            let y = b[broadcastIndex(i, out: layout.outputShape, input: sb)]
            let expected: Float = switch op {
            case .add: x + y
            case .sub: x - y
            case .mul: x * y
            case .div: x / y
            }
            #expect(out[i] == expected, "\(op) \(sa)×\(sb) element \(i)")
        }
    }

    @Test("INT32 binary ops broadcast, wrap and never trap", arguments: shapePairs, BinaryOperator.allCases)
    func binaryInt32(shapes: ([Int], [Int]), op: BinaryOperator) throws {
        let (sa, sb) = shapes
        let layout = try #require(BroadcastLayout(sa, sb))
        var random = SplitMix(state: 7)
        var a = random.int32s(sa.reduce(1, *), range: 1 << 30)
        let b = random.int32s(sb.reduce(1, *), range: 50)  // includes 0 divisors
        if !a.isEmpty { a[0] = .max }
        var out = [Int32](repeating: 0, count: layout.elementCount)
        backend.binary(op, a, b, &out, layout: layout)
        for i in 0..<layout.elementCount {
            let x = a[broadcastIndex(i, out: layout.outputShape, input: sa)]
            let y = b[broadcastIndex(i, out: layout.outputShape, input: sb)]
            let expected: Int32 = switch op {
            case .add: x &+ y
            case .sub: x &- y
            case .mul: x &* y
            case .div: y == 0 ? 0 : x / y
            }
            #expect(out[i] == expected, "\(op) \(sa)×\(sb) element \(i)")
        }
    }

    @Test("incompatible shapes do not broadcast")
    func incompatible() {
        #expect(BroadcastLayout([3], [4]) == nil)
        #expect(BroadcastLayout.broadcastShape([2, 3], [3, 3]) == nil)
        #expect(BroadcastLayout.broadcastShape([-1, 3], [4, 1]) == [4, 3])
        #expect(BroadcastLayout([2, 3], [3])?.outputShape == [2, 3])
    }

    @Test("unary ops match libm", arguments: UnaryOperator.allCases, [1, 8, 13, 100])
    func unary(op: UnaryOperator, count: Int) {
        var random = SplitMix(state: UInt64(count))
        var input = random.floats(count).map { $0 * 20 }
        input[0] = -0.0
        var out = [Float](repeating: .nan, count: count)
        backend.unary(op, input, &out, count: count)
        for i in 0..<count {
            let x = input[i]
            let expected: Float = switch op {
            case .relu: x < 0 ? 0 : x
            case .sigmoid: Float(1 / (1 + _exp(-Double(x))))
            case .tanh: Float(_tanh(Double(x)))
            case .neg: -x
            case .abs: Swift.abs(x)
            case .exp: Float(_exp(Double(x)))
            case .log: Float(_log(Double(x)))
            case .sqrt: x.squareRoot()
            case .identity: x
            case .erf: Float(_erf(Double(x)))
            case .gelu: Float(0.5 * Double(x) * (1 + _erf(Double(x) / 2.0.squareRoot())))
            case .geluTanh: Float(0.5 * Double(x) * (1 + _tanh(0.7978845608028654 * (Double(x) + 0.044715 * pow3(Double(x))))))
            }
            if expected.isNaN {
                #expect(out[i].isNaN, "\(op)(\(x))")
            } else if expected.isInfinite {
                #expect(out[i] == expected, "\(op)(\(x))")
            } else {
                #expect(abs(out[i] - expected) <= 1e-5 * max(1, abs(expected)), "\(op)(\(x)) = \(out[i]), expected \(expected)")
            }
        }
    }

    @Test(
        "softmax normalises along the middle axis (8/16-lane rows and columns, odd sizes)",
        arguments: [(1, 5, 1), (3, 4, 2), (2, 1, 7), (4, 33, 1), (2, 128, 1), (3, 129, 1), (2, 17, 9), (1, 16, 8), (2, 7, 19)],
        [false, true])
    func softmax(shape: (Int, Int, Int), logarithm: Bool) {
        let (outer, axis, inner) = shape
        var random = SplitMix(state: 99)
        let input = random.floats(outer * axis * inner).map { $0 * 10 }
        var out = [Float](repeating: .nan, count: input.count)
        backend.softmax(input, &out, outer: outer, axis: axis, inner: inner, logarithm: logarithm)
        for o in 0..<outer {
            for j in 0..<inner {
                let index = { (k: Int) in (o * axis + k) * inner + j }
                let values = (0..<axis).map { Double(input[index($0)]) }
                let sum = values.map { _exp($0 - values.max()!) }.reduce(0, +)
                for k in 0..<axis {
                    let p = _exp(values[k] - values.max()!) / sum
                    let expected = Float(logarithm ? _log(p) : p)
                    #expect(abs(out[index(k)] - expected) <= 1e-5 * max(1, abs(expected)))
                }
            }
        }
        var inPlace = input
        inPlace.withUnsafeMutableBufferPointer {
            backend.softmax($0.baseAddress!, $0.baseAddress!, outer: outer, axis: axis, inner: inner, logarithm: logarithm)
        }
        #expect(inPlace == out)
    }

    @Test("OpenBLAS thread count can be set")
    func threads() {
        let before = BLASThreading.threadCount
        BLASThreading.setThreadCount(1)
        #expect(BLASThreading.threadCount == 1)
        BLASThreading.setThreadCount(before)
        #expect(BLASThreading.threadCount == before)
    }
}

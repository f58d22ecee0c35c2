import FulcrumKernels
import Testing

/// Every Vulkan kernel against `CPUBackend` on the same random inputs. Tolerances (FP32,
/// relative L2): 1e-5 elementwise, 1e-4 matrix products.
@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanKernelConformanceTests {
    static let gemmShapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 64, 64), (65, 127, 31), (128, 1, 77), (1, 200, 50), (100, 70, 130),
    ]

    struct GemmCase: Sendable, CustomStringConvertible {
        var m, n, k: Int
        var transposeA, transposeB: Bool
        var description: String { "\(m)x\(n)x\(k) tA=\(transposeA) tB=\(transposeB)" }
    }

    static let gemmCases: [GemmCase] = gemmShapes.flatMap { shape in
        [(false, false), (true, false), (false, true), (true, true)].map {
            GemmCase(m: shape.m, n: shape.n, k: shape.k, transposeA: $0.0, transposeB: $0.1)
        }
    }

    /// Runs both backends on the same inputs, with leading dimensions padded by 3 elements.
    func compareGemm(
        _ c: GemmCase, alpha: Float, beta: Float, bias: Bool, activation: Activation, seed: UInt64
    ) throws -> Double {
        let (rowsA, colsA) = c.transposeA ? (c.k, c.m) : (c.m, c.k)
        let (rowsB, colsB) = c.transposeB ? (c.n, c.k) : (c.k, c.n)
        let lda = colsA + 3, ldb = colsB + 3, ldc = c.n + 3
        let a = randomFloats(rowsA * lda, seed: seed)
        let b = randomFloats(rowsB * ldb, seed: seed + 1)
        let c0 = randomFloats(c.m * ldc, seed: seed + 2)
        let biasValues = randomFloats(c.n, seed: seed + 3)

        var expected = c0
        let cpu = CPUBackend()
        expected.withUnsafeMutableBufferPointer { out in
            cpu.sgemm(
                transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: out.baseAddress!, ldc: ldc)
            for row in 0..<c.m {
                let p = out.baseAddress! + row * ldc
                if bias { for j in 0..<c.n { p[j] += biasValues[j] } }
                cpu.apply(activation, p, count: c.n)
            }
        }

        let backend = TestDevice.backend
        let ga = try backend.makeBuffer(a), gb = try backend.makeBuffer(b), gc = try backend.makeBuffer(c0)
        let gbias = try backend.makeBuffer(biasValues)
        try backend.sgemm(
            transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: alpha,
            a: ga, lda: lda, b: gb, ldb: ldb, beta: beta, c: gc, ldc: ldc, bias: bias ? gbias : nil,
            activation: activation)
        let actual = try gc.download()
        // The padding between rows must be untouched.
        for row in 0..<c.m {
            for j in c.n..<ldc { #expect(actual[row * ldc + j] == c0[row * ldc + j]) }
        }
        return relativeL2(actual, expected)
    }

    @Test(arguments: gemmCases)
    func sgemmMatchesCPU(_ c: GemmCase) throws {
        let error = try compareGemm(c, alpha: 1, beta: 0, bias: false, activation: .none, seed: 11)
        #expect(error <= 1e-4, "relative L2 \(error)")
        let scaled = try compareGemm(c, alpha: 0.5, beta: 0.75, bias: false, activation: .none, seed: 21)
        #expect(scaled <= 1e-4, "alpha/beta: relative L2 \(scaled)")
        expectNoValidationMessages(TestDevice.device)
    }

    @Test(arguments: [Activation.none, .relu, .sigmoid, .tanh, .gelu, .geluTanh, .leakyRelu(alpha: 0.1)])
    func sgemmWithBiasAndActivationMatchesCPU(_ activation: Activation) throws {
        for c in [GemmCase(m: 33, n: 65, k: 17, transposeA: false, transposeB: true), GemmCase(m: 8, n: 3, k: 100, transposeA: false, transposeB: false)] {
            let error = try compareGemm(c, alpha: 1, beta: 0, bias: true, activation: activation, seed: 31)
            #expect(error <= 1e-4, "\(c) \(activation): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func sgemmWithEmptyKGivesBetaTimesC() throws {
        let error = try compareGemm(GemmCase(m: 5, n: 6, k: 0, transposeA: false, transposeB: false), alpha: 1, beta: 0.5, bias: false, activation: .none, seed: 41)
        #expect(error <= 1e-6)
    }

    @Test func sgemmRefusesBuffersThatAreTooSmall() throws {
        let backend = TestDevice.backend
        let small = try backend.makeBuffer([1, 2, 3])
        #expect { try backend.sgemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 2, a: small, lda: 2, b: small, ldb: 2, c: small, ldc: 2) } throws: { error in
            (error as? VulkanError)?.code == .invalidArgument
        }
    }

    static let broadcastPairs: [([Int], [Int])] = [
        ([7], [7]), ([3, 5], [5]), ([4, 1, 6], [1, 5, 1]), ([2, 3, 4, 5], [3, 1, 5]), ([1], [9, 11]), ([13, 17], [13, 1]),
        ([1000], [1]), ([2, 1, 3, 1, 5], [1, 4, 1, 6, 1]),
    ]

    @Test(arguments: BinaryOperator.allCases)
    func binaryMatchesCPU(_ op: BinaryOperator) throws {
        let backend = TestDevice.backend
        for (index, (shapeA, shapeB)) in Self.broadcastPairs.enumerated() {
            let layout = try #require(BroadcastLayout(shapeA, shapeB))
            let a = randomFloats(shapeA.reduce(1, *), seed: UInt64(100 + index))
            // Divisors away from zero: magnitude in [0.5, 2], random sign.
            let b = randomFloats(shapeB.reduce(1, *), in: 0.5...2, seed: UInt64(200 + index)).enumerated().map { $0.offset % 3 == 0 ? -$0.element : $0.element }
            var expected = [Float](repeating: 0, count: layout.elementCount)
            expected.withUnsafeMutableBufferPointer { CPUBackend().binary(op, a, b, $0.baseAddress!, layout: layout) }
            let ga = try backend.makeBuffer(a), gb = try backend.makeBuffer(b)
            let out = try VulkanBuffer(device: backend.device, count: layout.elementCount)
            try backend.binary(op, ga, gb, out, layout: layout)
            let error = relativeL2(try out.download(), expected)
            #expect(error <= 1e-5, "\(op) \(shapeA) ∘ \(shapeB): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test(arguments: [UnaryOperator.relu, .sigmoid, .tanh, .neg, .abs, .exp, .log, .sqrt, .erf, .gelu, .geluTanh, .identity])
    func unaryMatchesCPU(_ op: UnaryOperator) throws {
        let backend = TestDevice.backend
        for count in [1, 257, 4099] {
            let range: ClosedRange<Float> = switch op {
            case .log, .sqrt: 0.01...10
            case .exp: -10...10
            default: -8...8
            }
            let input = randomFloats(count, in: range, seed: UInt64(count))
            var expected = [Float](repeating: 0, count: count)
            expected.withUnsafeMutableBufferPointer { CPUBackend().unary(op, input, $0.baseAddress!, count: count) }
            let x = try backend.makeBuffer(input)
            let y = try VulkanBuffer(device: backend.device, count: count)
            try backend.unary(op, x, y, count: count)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-5, "\(op) × \(count): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func leakyReluInPlaceMatchesCPU() throws {
        let backend = TestDevice.backend
        let input = randomFloats(333, seed: 5)
        var expected = [Float](repeating: 0, count: 333)
        expected.withUnsafeMutableBufferPointer { CPUBackend().leakyRelu(input, $0.baseAddress!, count: 333, alpha: 0.2) }
        let x = try backend.makeBuffer(input)
        try backend.leakyRelu(x, x, count: 333, alpha: 0.2)
        #expect(relativeL2(try x.download(), expected) <= 1e-6)
        expectNoValidationMessages(TestDevice.device)
    }

    /// A two-layer MLP step recorded once (Gemm+bias+relu, Gemm, Add, Sigmoid) and replayed:
    /// one command buffer, barriers between dependent kernels, new inputs between submissions.
    @Test func oneRecordingRunsSeveralKernelsAndReplays() throws {
        let backend = TestDevice.backend
        let device = backend.device
        let (batch, inputs, hidden, outputs) = (9, 20, 33, 5)
        let w1 = randomFloats(inputs * hidden, seed: 61), b1 = randomFloats(hidden, seed: 62)
        let w2 = randomFloats(hidden * outputs, seed: 63), skip = randomFloats(outputs, seed: 64)
        let gw1 = try backend.makeBuffer(w1), gb1 = try backend.makeBuffer(b1)
        let gw2 = try backend.makeBuffer(w2), gskip = try backend.makeBuffer(skip)
        let x = try VulkanBuffer(device: device, count: batch * inputs)
        let h = try VulkanBuffer(device: device, count: batch * hidden)
        let o = try VulkanBuffer(device: device, count: batch * outputs)
        let layout = try #require(BroadcastLayout([batch, outputs], [outputs]))

        let recording = try VulkanRecording(device: device)
        try recording.sgemm(transposeA: false, transposeB: false, m: batch, n: hidden, k: inputs, a: x, lda: inputs, b: gw1, ldb: hidden, c: h, ldc: hidden, bias: gb1, activation: .relu)
        try recording.sgemm(transposeA: false, transposeB: false, m: batch, n: outputs, k: hidden, a: h, lda: hidden, b: gw2, ldb: outputs, c: o, ldc: outputs)
        try recording.binary(.add, o, gskip, o, layout: layout)
        try recording.unary(.sigmoid, o, o, count: batch * outputs)
        try recording.end()

        let cpu = CPUBackend()
        for round in 0..<3 {
            let input = randomFloats(batch * inputs, seed: UInt64(70 + round))
            try x.upload(input)
            try recording.submit()
            var hh = [Float](repeating: 0, count: batch * hidden)
            var oo = [Float](repeating: 0, count: batch * outputs)
            hh.withUnsafeMutableBufferPointer { hp in
                cpu.sgemm(transposeA: false, transposeB: false, m: batch, n: hidden, k: inputs, alpha: 1, a: input, lda: inputs, b: w1, ldb: hidden, beta: 0, c: hp.baseAddress!, ldc: hidden)
                for r in 0..<batch { for j in 0..<hidden { hp[r * hidden + j] += b1[j] } }
                cpu.apply(.relu, hp.baseAddress!, count: batch * hidden)
            }
            oo.withUnsafeMutableBufferPointer { op in
                cpu.sgemm(transposeA: false, transposeB: false, m: batch, n: outputs, k: hidden, alpha: 1, a: hh, lda: hidden, b: w2, ldb: outputs, beta: 0, c: op.baseAddress!, ldc: outputs)
                cpu.binary(.add, UnsafePointer(op.baseAddress!), skip, op.baseAddress!, layout: layout)
                cpu.apply(.sigmoid, op.baseAddress!, count: batch * outputs)
            }
            let error = relativeL2(try o.download(), oo)
            #expect(error <= 1e-4, "round \(round): relative L2 \(error)")
        }
        expectNoValidationMessages(device)
    }
}

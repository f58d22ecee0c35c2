import FulcrumKernels
import Testing

/// Every sgemm kernel (`SGEMMVariant.tile64`, `.tile128`, `.splitk`) against `CPUBackend.sgemm` on
/// the same seeded inputs: odd and edge-tile shapes, all four transposes, leading dimensions and
/// batch strides padded by 3 (scalar path) or aligned to 4 (the vec4 paths), alpha/beta, bias and
/// activations, batches with strides and with a broadcast (stride 0) operand, small m with long
/// k (where `splitk` splits K into uneven ranges and reduces in a second pass). Tolerance: FP32
/// relative L2 ≤ 1e-4; everything C's matrices do not cover must stay untouched.
@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanMatmulTests {
    static let variants: [SGEMMVariant] = [.tile64, .tile128, .splitk]

    /// One batched product and how its operands are laid out.
    struct Problem: Sendable, CustomStringConvertible {
        var m, n, k: Int
        var transposeA = false, transposeB = false
        /// Leading dimensions and strides multiples of 4 (vec4 path) instead of padded by 3.
        var aligned = false
        var batch = 1
        var broadcastA = false, broadcastB = false
        var description: String {
            "\(m)x\(n)x\(k) tA=\(transposeA) tB=\(transposeB) aligned=\(aligned) batch=\(batch)"
                + (broadcastA ? " A shared" : "") + (broadcastB ? " B shared" : "")
        }
    }

    // The last two split K under `splitk`: 4 ranges of 96, 96, 96, 13 and 3 of 160, 160, 130.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (17, 33, 9), (129, 257, 65), (300, 200, 100), (128, 256, 16), (33, 70, 301), (64, 130, 450),
    ]

    static let problems: [Problem] = shapes.flatMap { shape in
        [(false, false), (true, false), (false, true), (true, true)].flatMap { transposes in
            [false, true].map { aligned in
                Problem(m: shape.m, n: shape.n, k: shape.k, transposeA: transposes.0, transposeB: transposes.1, aligned: aligned)
            }
        }
    }

    /// Runs `problem` on the GPU with `variant` and on the CPU; returns the relative L2 error
    /// and checks that C outside the product's matrices is untouched.
    func compare(
        _ problem: Problem, variant: SGEMMVariant, alpha: Float = 1, beta: Float = 0, bias: Bool = false,
        activation: Activation = .none, seed: UInt64, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Double {
        let p = problem
        let (rowsA, colsA) = p.transposeA ? (p.k, p.m) : (p.m, p.k)
        let (rowsB, colsB) = p.transposeB ? (p.n, p.k) : (p.k, p.n)
        func roundUp(_ x: Int) -> Int { (x + 3) / 4 * 4 }
        func leading(_ cols: Int) -> Int { p.aligned ? roundUp(cols) + 4 : cols + 3 }
        let lda = leading(colsA), ldb = leading(colsB), ldc = leading(p.n)
        func stride(_ rows: Int, _ ld: Int, _ cols: Int) -> Int {
            let extent = (rows - 1) * ld + cols
            return p.aligned ? roundUp(extent) + 4 : extent + 3
        }
        let strideA = p.broadcastA ? 0 : stride(rowsA, lda, colsA)
        let strideB = p.broadcastB ? 0 : stride(rowsB, ldb, colsB)
        let strideC = stride(p.m, ldc, p.n)
        let last = p.batch - 1
        let a = randomFloats(last * strideA + rowsA * lda, seed: seed)
        let b = randomFloats(last * strideB + rowsB * ldb, seed: seed + 1)
        let c0 = randomFloats(last * strideC + p.m * ldc, seed: seed + 2)
        let biasValues = randomFloats(p.n, seed: seed + 3)

        var expected = c0
        let cpu = CPUBackend()
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                expected.withUnsafeMutableBufferPointer { out in
                    for i in 0..<p.batch {
                        let cBase = out.baseAddress! + i * strideC
                        cpu.sgemm(
                            transposeA: p.transposeA, transposeB: p.transposeB, m: p.m, n: p.n, k: p.k, alpha: alpha,
                            a: ap.baseAddress! + i * strideA, lda: lda, b: bp.baseAddress! + i * strideB, ldb: ldb, beta: beta,
                            c: cBase, ldc: ldc)
                        for row in 0..<p.m {
                            let r = cBase + row * ldc
                            if bias { for j in 0..<p.n { r[j] += biasValues[j] } }
                            cpu.apply(activation, r, count: p.n)
                        }
                    }
                }
            }
        }

        let backend = TestDevice.backend
        let ga = try backend.makeBuffer(a), gb = try backend.makeBuffer(b), gc = try backend.makeBuffer(c0)
        let gbias = try backend.makeBuffer(biasValues)
        try backend.sgemm(
            transposeA: p.transposeA, transposeB: p.transposeB, m: p.m, n: p.n, k: p.k, alpha: alpha,
            a: ga, lda: lda, b: gb, ldb: ldb, beta: beta, c: gc, ldc: ldc, bias: bias ? gbias : nil,
            activation: activation, batch: p.batch, strideA: strideA, strideB: strideB, strideC: strideC, variant: variant)
        let actual = try gc.download()
        var written = [Bool](repeating: false, count: c0.count)
        for i in 0..<p.batch {
            for row in 0..<p.m {
                for j in 0..<p.n { written[i * strideC + row * ldc + j] = true }
            }
        }
        let touched = written.indices.filter { !written[$0] && actual[$0] != c0[$0] }
        #expect(touched.isEmpty, "\(p) \(variant): \(touched.count) elements outside C changed", sourceLocation: sourceLocation)
        return relativeL2(actual, expected)
    }

    @Test(arguments: variants, problems)
    func sgemmMatchesCPU(_ variant: SGEMMVariant, _ problem: Problem) throws {
        let error = try compare(problem, variant: variant, seed: 101)
        #expect(error <= 1e-4, "relative L2 \(error)")
        let scaled = try compare(problem, variant: variant, alpha: 0.5, beta: 0.75, seed: 111)
        #expect(scaled <= 1e-4, "alpha/beta: relative L2 \(scaled)")
        expectNoValidationMessages(TestDevice.device)
    }

    @Test(arguments: variants, [Activation.none, .relu, .sigmoid, .tanh, .gelu, .geluTanh, .leakyRelu(alpha: 0.1)])
    func sgemmWithBiasAndActivationMatchesCPU(_ variant: SGEMMVariant, _ activation: Activation) throws {
        let problems = [
            Problem(m: 131, n: 133, k: 17, transposeB: true, aligned: false),
            Problem(m: 130, n: 132, k: 24, aligned: true),
            // An MLP layer at serving batch size: x · Wᵀ, K split under `splitk`.
            Problem(m: 64, n: 96, k: 256, transposeB: true, aligned: true),
            Problem(m: 7, n: 45, k: 203, transposeB: true),
        ]
        for problem in problems {
            let error = try compare(problem, variant: variant, beta: 0.5, bias: true, activation: activation, seed: 121)
            #expect(error <= 1e-4, "\(problem) \(activation): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    static let batchedProblems: [Problem] = [
        Problem(m: 33, n: 47, k: 19, batch: 3),
        Problem(m: 33, n: 47, k: 19, transposeA: true, batch: 3),
        Problem(m: 33, n: 47, k: 19, transposeB: true, aligned: true, batch: 3),
        Problem(m: 33, n: 47, k: 19, transposeA: true, transposeB: true, aligned: true, batch: 2),
        // Attention-like: [B·H, S, D] × [B·H, D, S] with edge tiles on both sides of 128.
        Problem(m: 130, n: 130, k: 32, transposeB: true, aligned: true, batch: 4),
        Problem(m: 129, n: 140, k: 70, batch: 3, broadcastB: true),
        Problem(m: 129, n: 140, k: 70, aligned: true, batch: 3, broadcastB: true),
        Problem(m: 60, n: 150, k: 21, transposeA: true, aligned: true, batch: 5, broadcastA: true),
        Problem(m: 9, n: 5, k: 3, batch: 7, broadcastA: true),
        // K split under `splitk`, with batches and a shared weight.
        Problem(m: 20, n: 70, k: 200, transposeB: true, batch: 3, broadcastB: true),
        Problem(m: 5, n: 64, k: 130, transposeA: true, aligned: true, batch: 2),
    ]

    @Test(arguments: variants, batchedProblems)
    func batchedSgemmMatchesCPU(_ variant: SGEMMVariant, _ problem: Problem) throws {
        let error = try compare(problem, variant: variant, alpha: 1.5, beta: 0.25, bias: true, activation: .relu, seed: 131)
        #expect(error <= 1e-4, "relative L2 \(error)")
        expectNoValidationMessages(TestDevice.device)
    }

    @Test(arguments: variants)
    func emptyKGivesBetaTimesC(_ variant: SGEMMVariant) throws {
        let error = try compare(Problem(m: 5, n: 6, k: 0, batch: 2), variant: variant, beta: 0.5, seed: 141)
        #expect(error <= 1e-6)
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func automaticTakesTile128OnlyForLargeProducts() {
        // tile128 from 128 tiles of 128 × 128 up, splitk below (the H100's measurements).
        #expect(SGEMMVariant.automatic.resolved(m: 4096, n: 4096) == .tile128)
        #expect(SGEMMVariant.automatic.resolved(m: 1024, n: 2048) == .tile128)
        #expect(SGEMMVariant.automatic.resolved(m: 2048, n: 512) == .splitk)
        #expect(SGEMMVariant.automatic.resolved(m: 512, n: 512, batch: 8) == .tile128)
        #expect(SGEMMVariant.automatic.resolved(m: 512, n: 512) == .splitk)
        #expect(SGEMMVariant.automatic.resolved(m: 64, n: 8192, batch: 64) == .splitk)
        #expect(SGEMMVariant.tile128.resolved(m: 1, n: 1) == .tile128)
        #expect(SGEMMVariant.tile64.resolved(m: 4096, n: 4096) == .tile64)
        #expect(SGEMMVariant(name: "tile128") == .tile128 && SGEMMVariant(name: "fast") == nil)
        #expect(SGEMMVariant(name: "splitk") == .splitk && SGEMMVariant.splitk.resolved(m: 4096, n: 4096) == .splitk)
        for variant in [SGEMMVariant.automatic, .tile64, .tile128, .splitk] { #expect(SGEMMVariant(name: variant.description) == variant) }
    }

    @Test func splitKCoversKWithFewRanges() {
        // Enough 64 × 64 tiles: no split.
        #expect(SGEMMVariant.splitK(m: 4096, n: 4096, k: 4096) == (1, 4096))
        #expect(SGEMMVariant.splitK(m: 2048, n: 512, k: 128) == (1, 128))
        #expect(SGEMMVariant.splitK(m: 5, n: 6, k: 0) == (1, 0))
        #expect(SGEMMVariant.splitK(m: 64, n: 64, k: 100) == (1, 128))
        // An MLP layer at batch 64: 32 tiles, 8 splits of 256.
        #expect(SGEMMVariant.splitK(m: 64, n: 2048, k: 2048) == (8, 256))
        #expect(SGEMMVariant.splitK(m: 64, n: 512, k: 256) == (4, 64))
        for (m, n, k, batch) in [(33, 70, 301, 1), (64, 130, 450, 1), (20, 70, 200, 3), (1, 1, 100_000, 1), (64, 2048, 2049, 1)] {
            let (splits, chunk) = SGEMMVariant.splitK(m: m, n: n, k: k, batch: batch)
            #expect(chunk % 32 == 0 && splits >= 1 && splits <= SGEMMVariant.splitKMaximumSplits)
            #expect(splits * chunk >= k && (splits - 1) * chunk < k, "\(m)x\(n)x\(k): \(splits) × \(chunk)")
        }
    }

    @Test func batchedSgemmRefusesBadStridesAndSmallBuffers() throws {
        let backend = TestDevice.backend
        let a = try backend.makeBuffer(randomFloats(2 * 4 * 4, seed: 1))
        let c = try VulkanBuffer(device: backend.device, count: 2 * 4 * 4)
        func refuses(_ body: () throws -> Void) {
            #expect(throws: VulkanError.self) { try body() }
        }
        // Two 4 × 4 batches fit; three do not.
        try backend.sgemm(transposeA: false, transposeB: false, m: 4, n: 4, k: 4, a: a, lda: 4, b: a, ldb: 4, c: c, ldc: 4, batch: 2, strideA: 16, strideB: 16, strideC: 16)
        refuses { try backend.sgemm(transposeA: false, transposeB: false, m: 4, n: 4, k: 4, a: a, lda: 4, b: a, ldb: 4, c: c, ldc: 4, batch: 3, strideA: 0, strideB: 0, strideC: 16) }
        refuses { try backend.sgemm(transposeA: false, transposeB: false, m: 4, n: 4, k: 4, a: a, lda: 4, b: a, ldb: 4, c: c, ldc: 4, batch: 3, strideA: 16, strideB: 0, strideC: 8) }
        // Every batch writing the same C is a race.
        refuses { try backend.sgemm(transposeA: false, transposeB: false, m: 4, n: 4, k: 4, a: a, lda: 4, b: a, ldb: 4, c: c, ldc: 4, batch: 2, strideC: 0) }
        refuses { try backend.sgemm(transposeA: false, transposeB: false, m: 4, n: 4, k: 4, a: a, lda: 4, b: a, ldb: 4, c: c, ldc: 4, batch: -1) }
        refuses { try backend.sgemm(transposeA: false, transposeB: false, m: 4, n: 4, k: 4, a: a, lda: 4, b: a, ldb: 4, c: c, ldc: 4, batch: 2, strideA: -16, strideC: 16) }
        // More batches than a dispatch's z dimension allows (65535).
        let many = try VulkanBuffer(device: backend.device, count: 70_000)
        #expect { try backend.sgemm(transposeA: false, transposeB: false, m: 1, n: 1, k: 1, a: a, lda: 1, b: a, ldb: 1, c: many, ldc: 1, batch: 70_000, strideC: 1) } throws: { error in
            (error as? VulkanError)?.code == .unsupported
        }
        expectNoValidationMessages(TestDevice.device)
    }
}

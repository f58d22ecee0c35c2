@testable import FulcrumKernels
import Foundation
import Testing

/// Fulcrum's microkernels (Sources/CGEMM) against double-precision reference loops: every set
/// this CPU has (an AVX-512 machine runs the AVX2 kernels too), shapes around the tile sizes
/// (8 × 32 and 6 × 16) and the k block (256), bias, accumulation and the fused activations.
@Suite("Packed-weight microkernels against reference loops")
struct PackedGEMMTests {
    static let sets = Microkernels.allCases.filter { $0 != .off && $0.rawValue <= Microkernels.detected.rawValue }
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 33, 7), (3, 5, 7), (6, 16, 256), (7, 17, 257), (8, 32, 1), (9, 31, 300), (17, 100, 513), (64, 64, 64),
        (2, 1000, 40), (13, 7, 600), (5, 3, 0),
    ]

    /// A (m × k) · B (k × n) in double precision, B read through strides.
    static func reference(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, bRow: Int, bColumn: Int
    ) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for r in 0..<k { sum += Double(a[i * k + r]) * Double(b[r * bRow + j * bColumn]) }
                c[i * n + j] = sum
            }
        }
        return c
    }

    static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
    static func hardSwish(_ x: Double) -> Double { x * min(max(x / 6 + 0.5, 0), 1) }

    static func check(_ actual: [Float], _ expected: [Double], k: Int, _ label: String) {
        // Summation-order rounding grows with k; values are O(√k).
        let tolerance = 2e-6 * Double(max(k, 1)).squareRoot() * 4
        for (index, (x, y)) in zip(actual, expected).enumerated() where abs(Double(x) - y) > tolerance * max(1, abs(y)) {
            Issue.record("\(label): element \(index) is \(x), expected \(y)")
            return
        }
    }

    @Test("does not run without a set the CPU has", arguments: [Microkernels.off])
    func refusesOff(_ set: Microkernels) {
        var b: [Float] = [1, 2, 3, 4]
        #expect(CPUBackend().packRight(k: 2, n: 2, b: &b, rowStride: 2, columnStride: 1, kernels: set) == nil)
    }

    @Test("right-packed products: C = act(A · B + bias)", arguments: sets)
    func rightPacked(_ set: Microkernels) {
        var random = SplitMix(state: 7)
        let backend = CPUBackend()
        for (m, n, k) in Self.shapes {
            for transposed in [false, true] {
                let a = random.floats(max(m * k, 1))
                let b = random.floats(max(k * n, 1))
                let bias = random.floats(n)
                let (bRow, bColumn) = transposed ? (1, k) : (n, 1)
                guard let packed = b.withUnsafeBufferPointer({
                    backend.packRight(k: k, n: n, b: $0.baseAddress!, rowStride: bRow, columnStride: bColumn, kernels: set)
                }) else {
                    Issue.record("\(set) did not pack \(k) × \(n)"); continue
                }
                let product = Self.reference(a, b, m: m, n: n, k: k, bRow: bRow, bColumn: bColumn)
                for activation in [Activation.none, .relu, .gelu, .sigmoid, .hardSwish] {
                    // lda wider than k: A is read through its row stride.
                    let lda = k + 3
                    var wide = [Float](repeating: .nan, count: m * lda)
                    for i in 0..<m { for r in 0..<k { wide[i * lda + r] = a[i * k + r] } }
                    var c = [Float](repeating: .nan, count: m * n)
                    backend.sgemm(m: m, a: wide, lda: lda, right: packed, c: &c, ldc: n, columnBias: bias, activation: activation)
                    let expected = (0..<(m * n)).map { index -> Double in
                        let v = product[index] + Double(bias[index % n])
                        switch activation {
                        case .relu: return max(v, 0)
                        case .gelu: return Self.gelu(v)
                        case .sigmoid: return 1 / (1 + exp(-v))
                        case .hardSwish: return Self.hardSwish(v)
                        default: return v
                        }
                    }
                    Self.check(c, expected, k: k, "\(set) \(m)×\(n)×\(k) transposed \(transposed) \(activation)")
                }
                // Accumulation onto C (no bias).
                var c = random.floats(m * n)
                let start = c
                backend.sgemm(m: m, a: a, lda: k, right: packed, c: &c, ldc: n, accumulate: true)
                Self.check(c, (0..<(m * n)).map { product[$0] + Double(start[$0]) }, k: k, "\(set) \(m)×\(n)×\(k) accumulate")
            }
        }
    }

    @Test("left-packed products: C = act(scale · A · B + row bias), B read in place", arguments: sets)
    func leftPacked(_ set: Microkernels) {
        var random = SplitMix(state: 11)
        let backend = CPUBackend()
        for (m, n, k) in Self.shapes where m > 0 {
            let a = random.floats(max(m * k, 1))
            // B with a row stride wider than n: the im2col matrix or an image's channels.
            let ldb = n + 5
            let b = random.floats(max(k * ldb, 1))
            let bias = random.floats(m)
            guard let packed = a.withUnsafeBufferPointer({
                backend.packLeft(m: m, k: k, a: $0.baseAddress!, lda: k, scale: 0.5, kernels: set)
            }) else {
                Issue.record("\(set) did not pack \(m) × \(k)"); continue
            }
            let product = Self.reference(a, b, m: m, n: n, k: k, bRow: ldb, bColumn: 1).map { $0 * 0.5 }
            for activation in [Activation.none, .relu, .gelu, .hardSwish] {
                // C with a row stride wider than n: columns past n stay untouched.
                let ldc = n + 2
                var c = [Float](repeating: 42, count: m * ldc)
                backend.sgemm(left: packed, n: n, b: b, ldb: ldb, c: &c, ldc: ldc, rowBias: bias, activation: activation)
                var actual: [Float] = []
                for i in 0..<m {
                    actual += c[(i * ldc)..<(i * ldc + n)]
                    #expect(c[(i * ldc + n)..<(i * ldc + ldc)].allSatisfy { $0 == 42 }, "\(set): a store past the tile's columns")
                }
                let expected = (0..<(m * n)).map { index -> Double in
                    let v = product[index] + Double(bias[index / n])
                    switch activation {
                    case .relu: return max(v, 0)
                    case .gelu: return Self.gelu(v)
                    case .hardSwish: return Self.hardSwish(v)
                    default: return v
                    }
                }
                Self.check(actual, expected, k: k, "\(set) left \(m)×\(n)×\(k) \(activation)")
            }
        }
    }

    @Test("softmax and log-softmax rows match the portable kernel", arguments: sets)
    func softmaxRows(_ set: Microkernels) {
        var random = SplitMix(state: 3)
        for n in [1, 2, 7, 8, 15, 16, 17, 31, 33, 100, 128] {
            let x = random.floats(n).map { $0 * 8 }
            let bias = random.floats(n)
            for logarithm in [false, true] {
                for (biasPointer, stride) in [(nil, 0), (bias, 1), (bias, 0)] as [([Float]?, Int)] {
                    var fast = [Float](repeating: .nan, count: n)
                    var portable = [Float](repeating: .nan, count: n)
                    biasPointer.withUnsafeBufferPointerIfPresent { b in
                        CPUBackend.softmaxRow(x, &fast, n, bias: b, biasStride: stride, logarithm: logarithm, kernels: set)
                        CPUBackend.softmaxRow(x, &portable, n, bias: b, biasStride: stride, logarithm: logarithm, kernels: .off)
                    }
                    for (f, p) in zip(fast, portable) where abs(f - p) > 2e-6 * max(1, abs(p)) {
                        Issue.record("\(set) n \(n) log \(logarithm) stride \(stride): \(f) vs \(p)")
                        break
                    }
                }
            }
        }
    }

    @Test("products split over helper threads, and products from several threads at once, give the same answers", arguments: sets)
    func threads(_ set: Microkernels) {
        let backend = CPUBackend()
        let (m, n, k) = (37, 300, 200)
        var random = SplitMix(state: 17)
        let a = random.floats(m * k)
        let b = random.floats(k * n)
        guard let packed = backend.packRight(k: k, n: n, b: b, rowStride: n, columnStride: 1, kernels: set) else {
            Issue.record("\(set) did not pack"); return
        }
        let expected = Self.reference(a, b, m: m, n: n, k: k, bRow: n, bColumn: 1)
        let previous = BLASThreading.threadCount
        BLASThreading.setThreadCount(3)
        defer { BLASThreading.setThreadCount(previous) }
        // One caller at a time uses the helpers; the others run their products on their own thread.
        let results = UnsafeMutableBufferPointer<Float>.allocate(capacity: 8 * m * n)
        defer { results.deallocate() }
        let address = UInt(bitPattern: results.baseAddress!)  // each caller writes its own rows
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let c = UnsafeMutablePointer<Float>(bitPattern: address)! + index * m * n
            for _ in 0..<20 {
                backend.sgemm(m: m, a: a, lda: k, right: packed, c: c, ldc: n)
            }
        }
        for index in 0..<8 {
            Self.check(Array(results[(index * m * n)..<((index + 1) * m * n)]), expected, k: k, "\(set) caller \(index)")
        }
        // A left-packed product with more rows than columns (a late convolution layer's shape) is
        // split by rows between the threads.
        let (rows, columns) = (n, m)
        let filters = random.floats(rows * k)
        let planes = random.floats(k * columns)
        guard let left = filters.withUnsafeBufferPointer({
            backend.packLeft(m: rows, k: k, a: $0.baseAddress!, lda: k, kernels: set)
        }) else {
            Issue.record("\(set) did not pack \(rows) × \(k)"); return
        }
        let leftExpected = Self.reference(filters, planes, m: rows, n: columns, k: k, bRow: columns, bColumn: 1)
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let c = UnsafeMutablePointer<Float>(bitPattern: address)! + index * m * n
            for _ in 0..<20 {
                backend.sgemm(left: left, n: columns, b: planes, ldb: columns, c: c, ldc: columns, activation: .relu)
            }
        }
        for index in 0..<8 {
            Self.check(Array(results[(index * m * n)..<((index + 1) * m * n)]), leftExpected.map { max($0, 0) }, k: k,
                       "\(set) left, caller \(index)")
        }
    }

    @Test("packing sizes that overflow are refused, not allocated", arguments: sets)
    func overflow(_ set: Microkernels) {
        var b: [Float] = [0]
        #expect(CPUBackend().packRight(k: Int.max / 2, n: Int.max / 2, b: &b, rowStride: 0, columnStride: 0, kernels: set) == nil)
        #expect(CPUBackend().packLeft(m: Int.max / 2, k: Int.max / 2, a: &b, lda: 0, kernels: set) == nil)
    }
}

extension Optional where Wrapped == [Float] {
    func withUnsafeBufferPointerIfPresent(_ body: (UnsafePointer<Float>?) -> Void) {
        switch self {
        case .none: body(nil)
        case .some(let array): array.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }
}

import FulcrumKernels
import Testing

/// Strided copies, reductions, normalisation and the vectorised exp against reference loops.
@Suite("CPU backend layout and reduction kernels")
struct LayoutKernelTests {
    let backend = CPUBackend()

    @Test("a transposing copy moves every element", arguments: [[2, 3, 4], [1, 5, 1], [3, 1, 7, 2]])
    func transpose(shape: [Int]) {
        let count = shape.reduce(1, *)
        let input = (0..<count).map { Float($0) }
        let perm = Array((0..<shape.count).reversed())
        let strides = CopyLayout.contiguousStrides(shape)
        let outShape = perm.map { shape[$0] }
        let layout = CopyLayout(shape: outShape, sourceStrides: perm.map { strides[$0] }, destinationStrides: CopyLayout.contiguousStrides(outShape))
        var out = [Float](repeating: -1, count: count)
        input.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { backend.copy(layout, from: source.baseAddress!, to: $0.baseAddress!, elementSize: 4) }
        }
        // Reference: out[i0, i1, ...] = in[..., i1, i0] via index arithmetic.
        let outStrides = CopyLayout.contiguousStrides(outShape)
        for index in 0..<count {
            var remainder = index
            var source = 0
            for d in 0..<outShape.count {
                let coordinate = remainder / outStrides[d]
                remainder %= outStrides[d]
                source += coordinate * strides[perm[d]]
            }
            #expect(out[index] == input[source])
        }
    }

    @Test("reductions over any axes", arguments: [ReductionOperator.sum, .mean, .max])
    func reduce(op: ReductionOperator) {
        let shape = [3, 4, 5]
        let input = (0..<60).map { Float(($0 * 37) % 11) - 5 }
        // Reduce axes 0 and 2 → [1, 4, 1].
        let layout = CopyLayout(shape: shape, sourceStrides: CopyLayout.contiguousStrides(shape), destinationStrides: [0, 1, 0])
        var out = [Float](repeating: .nan, count: 4)
        backend.reduce(op, input, &out, layout: layout, outputCount: 4, reducedCount: 15)
        for j in 0..<4 {
            var values: [Float] = []
            for i in 0..<3 { for k in 0..<5 { values.append(input[i * 20 + j * 5 + k]) } }
            let expected: Float = switch op {
            case .sum: values.reduce(0, +)
            case .mean: values.reduce(0, +) / 15
            case .max: values.max()!
            }
            #expect(abs(out[j] - expected) <= 1e-5 * max(1, abs(expected)))
        }
    }

    @Test("vectorised exp stays within a few ulp of libm")
    func exp() {
        for x in stride(from: Float(-87), through: 88, by: 0.173) {
            let v = VectorMath.exp(SIMD8(repeating: x))[0]
            let reference = Float(_exp(Double(x)))
            #expect(abs(v - reference) <= 4 * reference.ulp, "exp(\(x)) = \(v), libm \(reference)")
        }
    }

    @Test("layer normalisation of odd-width rows")
    func layerNorm() {
        let columns = 13
        let input = (0..<(2 * columns)).map { Float($0 % 7) * 0.5 - 1 }
        let scale = (0..<columns).map { 1 + Float($0) * 0.1 }
        var out = [Float](repeating: 0, count: input.count)
        backend.layerNormalization(input, &out, rows: 2, columns: columns, scale: scale, bias: nil, epsilon: 1e-5)
        for r in 0..<2 {
            let row = input[(r * columns)..<((r + 1) * columns)].map(Double.init)
            let mean = row.reduce(0, +) / Double(columns)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(columns)
            for c in 0..<columns {
                let expected = (row[c] - mean) / (variance + 1e-5).squareRoot() * Double(scale[c])
                #expect(abs(Double(out[r * columns + c]) - expected) < 1e-5)
            }
        }
    }

    @Test("single-row and single-column products take the gemv path and agree with sgemm")
    func gemv() {
        let (m, n, k) = (4, 3, 5)
        let a = (0..<(m * k)).map { Float($0 % 5) - 2 }
        let b = (0..<(k * n)).map { Float($0 % 3) - 1 }
        for transposeB in [false, true] {
            let bStored = transposeB ? (0..<(n * k)).map { b[($0 % k) * n + $0 / k] } : b
            var full = [Float](repeating: 0, count: m * n)
            backend.sgemm(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: bStored, ldb: transposeB ? k : n, beta: 0, c: &full, ldc: n)
            var row = [Float](repeating: 0, count: n)
            backend.sgemm(transposeA: false, transposeB: transposeB, m: 1, n: n, k: k, alpha: 1, a: a, lda: k, b: bStored, ldb: transposeB ? k : n, beta: 0, c: &row, ldc: n)
            #expect(row == Array(full[0..<n]))
        }
    }
}

import FulcrumKernels
import Testing

/// `CPUBackend.attention` against a double-precision reference, over layouts (row-major,
/// transposed, strided rows as in a [batch, seq, heads, dim] tensor), masks (per key, per
/// query and key, none), odd sizes and query blocks smaller than the query count.
@Suite("attention kernel against a reference")
struct AttentionKernelTests {
    let backend = CPUBackend()

    struct Case: CustomStringConvertible, Sendable {
        var sq: Int, sk: Int, d: Int, dv: Int
        /// Store Q, K, V transposed (column stride 1 becomes row stride 1).
        var transposed: (q: Bool, k: Bool, v: Bool)
        /// Extra elements between rows (a head inside a wider row).
        var padding: Int
        /// 0: no mask, 1: one row for all queries, 2: a full Sq × Sk mask.
        var mask: Int
        var scratchRows: Int
        var description: String { "\(sq)x\(sk) d\(d) dv\(dv) t\(transposed) pad\(padding) mask\(mask) rows\(scratchRows)" }
    }

    static let cases: [Case] = [
        Case(sq: 128, sk: 128, d: 32, dv: 32, transposed: (false, false, false), padding: 96, mask: 1, scratchRows: 128),
        Case(sq: 17, sk: 23, d: 5, dv: 7, transposed: (false, false, false), padding: 0, mask: 2, scratchRows: 4),
        Case(sq: 9, sk: 31, d: 8, dv: 3, transposed: (true, true, true), padding: 3, mask: 0, scratchRows: 9),
        Case(sq: 1, sk: 16, d: 4, dv: 4, transposed: (false, true, false), padding: 1, mask: 1, scratchRows: 1),
        Case(sq: 33, sk: 1, d: 3, dv: 1, transposed: (true, false, true), padding: 0, mask: 2, scratchRows: 7),
        Case(sq: 40, sk: 64, d: 16, dv: 24, transposed: (false, false, true), padding: 5, mask: 2, scratchRows: 16),
    ]

    /// A `rows × columns` matrix stored row-major (or transposed) with `padding` extra elements
    /// per stored row; returns the storage and its strides.
    func store(_ values: [Float], rows: Int, columns: Int, transposed: Bool, padding: Int) -> ([Float], MatrixStrides) {
        let (outer, inner) = transposed ? (columns, rows) : (rows, columns)
        let stride = inner + padding
        var storage = [Float](repeating: .nan, count: outer * stride)
        for i in 0..<rows {
            for j in 0..<columns {
                let (a, b) = transposed ? (j, i) : (i, j)
                storage[a * stride + b] = values[i * columns + j]
            }
        }
        return (storage, transposed ? MatrixStrides(row: 1, column: stride) : MatrixStrides(row: stride, column: 1))
    }

    @Test("matches softmax(scale·Q·Kᵀ + mask)·V, on OpenBLAS and on the microkernels", arguments: cases, [false, true])
    func matches(c: Case, packed: Bool) {
        var random = SplitMix(state: UInt64(c.sq * 131 + c.sk * 7 + c.d))
        let q = random.floats(c.sq * c.d), k = random.floats(c.sk * c.d), v = random.floats(c.sk * c.dv)
        let maskRows = c.mask == 2 ? c.sq : 1
        let mask = random.floats(maskRows * c.sk).map { $0 > 1.5 ? -10000 : $0 }
        let scale: Float = 0.35
        // Reference in double.
        var expected = [Double](repeating: 0, count: c.sq * c.dv)
        for i in 0..<c.sq {
            var scores = (0..<c.sk).map { j in
                Double(scale) * (0..<c.d).map { Double(q[i * c.d + $0]) * Double(k[j * c.d + $0]) }.reduce(0, +)
            }
            if c.mask > 0 { for j in 0..<c.sk { scores[j] += Double(mask[(c.mask == 2 ? i : 0) * c.sk + j]) } }
            let top = scores.max()!
            let e = scores.map { _exp($0 - top) }
            let sum = e.reduce(0, +)
            for n in 0..<c.dv {
                expected[i * c.dv + n] = (0..<c.sk).map { e[$0] / sum * Double(v[$0 * c.dv + n]) }.reduce(0, +)
            }
        }
        let (qs, qStrides) = store(q, rows: c.sq, columns: c.d, transposed: c.transposed.q, padding: c.padding)
        let (ks, kStrides) = store(k, rows: c.sk, columns: c.d, transposed: c.transposed.k, padding: c.padding)
        let (vs, vStrides) = store(v, rows: c.sk, columns: c.dv, transposed: c.transposed.v, padding: c.padding)
        let outputStride = c.dv + c.padding
        var out = [Float](repeating: .nan, count: c.sq * outputStride)
        var scratch = [Float](repeating: .nan, count: c.scratchRows * c.sk)
        let maskStrides = MatrixStrides(row: c.mask == 2 ? c.sk : 0, column: 1)
        // Kᵀ and V packed per head (where the CPU has microkernels; else OpenBLAS again).
        var packing = [Float](repeating: .nan, count: max(1, CPUBackend.attentionPackingFloats(keyLength: c.sk, headSize: c.d, valueSize: c.dv)))
        mask.withUnsafeBufferPointer { m in
            packing.withUnsafeMutableBufferPointer { p in
            backend.attention(
                query: qs, qStrides, key: ks, kStrides, value: vs, vStrides,
                mask: c.mask == 0 ? nil : m.baseAddress, maskStrides,
                output: &out, outputRowStride: outputStride,
                queryLength: c.sq, keyLength: c.sk, headSize: c.d, valueSize: c.dv, scale: scale,
                scratch: &scratch, scratchRows: c.scratchRows, packing: packed ? p.baseAddress : nil)
            }
        }
        for i in 0..<c.sq {
            for n in 0..<c.dv {
                let got = Double(out[i * outputStride + n])
                let want = expected[i * c.dv + n]
                #expect(abs(got - want) <= 1e-5 * max(1, abs(want)), "\(c): out[\(i), \(n)] = \(got), expected \(want)")
            }
            // The padding between output rows is not written.
            for n in c.dv..<outputStride { #expect(out[i * outputStride + n].isNaN) }
        }
    }

    @Test("a matrix layout is a BLAS operand only with a unit stride")
    func blasOperand() {
        #expect(MatrixStrides(row: 128, column: 1).blasOperand(rows: 4, columns: 32)! == (false, 128))
        #expect(MatrixStrides(row: 1, column: 40).blasOperand(rows: 32, columns: 4)! == (true, 40))
        #expect(MatrixStrides(row: 2, column: 2).blasOperand(rows: 3, columns: 3) == nil)
        #expect(MatrixStrides(row: 4, column: 1).blasOperand(rows: 3, columns: 8) == nil)  // rows overlap
        #expect(MatrixStrides(row: 0, column: 1).blasOperand(rows: 1, columns: 8)! == (false, 8))
        #expect(MatrixStrides(row: 1, column: 0).blasOperand(rows: 8, columns: 1)! == (false, 1))
    }
}

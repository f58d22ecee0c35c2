import FulcrumKernels
import FulcrumSchema

/// MatMul with numpy semantics over FP32: 1-D operands are promoted (and the added dimension
/// removed from the result), leading batch dimensions broadcast. Runs one `cblas_sgemm` when
/// B has no batch (the common activations × weights case: the batch folds into M), otherwise
/// one per batch matrix.
///
/// Fused form (see `ExecutionPlan.fuse`): with `bias`, a third input of `N` elements is copied
/// into every output row and the product accumulates onto it (`beta = 1`); `activation` then
/// runs in place on the output.
struct MatMulOperator: Operator {
    /// Whether input 2 is a bias row added to every output row.
    var bias = false
    /// Applied to the output after the product (and bias).
    var activation = Activation.none
    /// A constant 2-D B packed for the microkernels at load (`ExecutionPlan.packWeights`).
    var packed: PackedMatrix?

    struct Shapes {
        var m: Int, n: Int, k: Int
        var batchA: [Int], batchB: [Int], batch: [Int]
        var output: [Int]
    }

    func shapes(_ a: [Int], _ b: [Int]) throws(RuntimeError) -> Shapes {
        guard !a.isEmpty, !b.isEmpty else { throw failure("MatMul operands must have rank ≥ 1, got A\(a) and B\(b)") }
        let a2 = a.count == 1 ? [1] + a : a
        let b2 = b.count == 1 ? b + [1] : b
        let (m, ka) = (a2[a2.count - 2], a2[a2.count - 1])
        let (kb, n) = (b2[b2.count - 2], b2[b2.count - 1])
        guard ka < 0 || kb < 0 || ka == kb else {
            throw failure("inner dimensions differ: A\(a) and B\(b)")
        }
        let batchA = Array(a2.dropLast(2))
        let batchB = Array(b2.dropLast(2))
        guard let batch = BroadcastLayout.broadcastShape(batchA, batchB) else {
            throw failure("batch dimensions of A\(a) and B\(b) do not broadcast")
        }
        var output = batch
        if a.count > 1 { output.append(m) }
        if b.count > 1 { output.append(n) }
        return Shapes(m: m, n: n, k: max(ka, kb), batchA: batchA, batchB: batchB, batch: batch, output: output)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        guard a.dataType == .fp32, b.dataType == .fp32 else {
            throw RuntimeError(code: .unsupportedOperator, message: "types \(a.dataType.rawValue) × \(b.dataType.rawValue) are not supported (supported: FP32)")
        }
        guard let sa = a.shape, let sb = b.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        return [ValueType(dataType: .fp32, shape: try shapes(sa, sb).output)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let s = try shapes(inputs[0]!.shape, inputs[1]!.shape)
        let pa = UnsafePointer(inputs[0]!.floats())
        let pb = UnsafePointer(inputs[1]!.floats())
        let py = outputs[0].floats()
        let (m, n, k) = (s.m, s.n, s.k)
        let batchCount = s.batch.reduce(1, *)
        let activation = self.activation
        let total = outputs[0].elementCount
        var biasRow: UnsafePointer<Float>?
        if bias {
            guard inputs.count > 2, let b = inputs[2], b.elementCount == n else {
                throw failure("the fused bias must have \(n) elements")
            }
            biasRow = UnsafePointer(b.floats())
        }
        let beta: Float = biasRow == nil ? 0 : 1
        if s.batchB.reduce(1, *) == 1 {
            // B is one matrix: stack A's batch into M (A is contiguous row-major).
            let rows = batchCount * m
            // The microkernels when B was packed at load.
            let micro = packed.flatMap { $0.rows == k && $0.columns == n ? $0 : nil }
            return {
                if let micro {
                    backend.sgemm(m: rows, a: pa, lda: k, right: micro, c: py, ldc: n, columnBias: biasRow, activation: activation)
                    return
                }
                if let biasRow {
                    for row in 0..<rows { (py + row * n).update(from: biasRow, count: n) }
                }
                backend.sgemm(
                    transposeA: false, transposeB: false, m: rows, n: n, k: k, alpha: 1,
                    a: pa, lda: k, b: pb, ldb: n, beta: beta, c: py, ldc: n)
                backend.apply(activation, py, count: total)
            }
        }
        // Offsets of each batch matrix, computed once per bound shape.
        var offsets: [(Int, Int)] = []
        offsets.reserveCapacity(batchCount)
        let rank = s.batch.count
        let pad = { (shape: [Int]) in [Int](repeating: 1, count: rank - shape.count) + shape }
        let (fa, fb) = (pad(s.batchA), pad(s.batchB))
        for index in 0..<batchCount {
            var remainder = index
            var ia = 0, ib = 0, strideA = 1, strideB = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                let coordinate = remainder % s.batch[d]
                remainder /= s.batch[d]
                if fa[d] != 1 { ia += coordinate * strideA }
                if fb[d] != 1 { ib += coordinate * strideB }
                strideA *= fa[d]
                strideB *= fb[d]
            }
            offsets.append((ia * m * k, ib * k * n))
        }
        return {
            if let biasRow {
                for row in 0..<(batchCount * m) { (py + row * n).update(from: biasRow, count: n) }
            }
            for (index, (oa, ob)) in offsets.enumerated() {
                backend.sgemm(
                    transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1,
                    a: pa + oa, lda: k, b: pb + ob, ldb: n, beta: beta, c: py + index * m * n, ldc: n)
            }
            backend.apply(activation, py, count: total)
        }
    }
}

import FulcrumKernels
import FulcrumSchema

/// Gemm: `Y = alpha * op(A) * op(B) + beta * C` over FP32, through `cblas_sgemm`.
///
/// A and B are 2-D; C (optional from opset 11) broadcasts unidirectionally to `[M, N]` and is
/// copied into Y before the product runs with `beta`, so one `sgemm` does the whole node.
///
/// Fused form (see `ExecutionPlan.fuse`): `activation` runs in place on Y after the product.
struct GemmOperator: Operator {
    let alpha: Float
    let beta: Float
    let transposeA: Bool
    let transposeB: Bool
    /// Applied to Y after the product.
    private(set) var activation = Activation.none
    /// A constant B (as `op(B)`, `k × n`) packed for the microkernels at load
    /// (`ExecutionPlan.packWeights`: only when alpha is 1, A is not transposed and beta is 1).
    var packed: PackedMatrix?

    /// This Gemm followed by `activation`.
    func with(activation: Activation) -> GemmOperator {
        var copy = self
        copy.activation = activation
        return copy
    }

    init(attributes: NodeAttributes) throws(RuntimeError) {
        alpha = try attributes.float("alpha", default: 1)
        beta = try attributes.float("beta", default: 1)
        transposeA = try attributes.int("transA", default: 0) != 0
        transposeB = try attributes.int("transB", default: 0) != 0
    }

    func dimensions(_ a: [Int], _ b: [Int]) throws(RuntimeError) -> (m: Int, n: Int, k: Int) {
        guard a.count == 2, b.count == 2 else {
            throw failure("A and B must be 2-D, got A\(a) and B\(b)")
        }
        let (m, ka) = transposeA ? (a[1], a[0]) : (a[0], a[1])
        let (kb, n) = transposeB ? (b[1], b[0]) : (b[0], b[1])
        guard ka < 0 || kb < 0 || ka == kb else {
            throw failure("inner dimensions differ: op(A) is [\(m), \(ka)] and op(B) is [\(kb), \(n)]")
        }
        return (m, n, max(ka, kb))
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        for value in [a, b] + (inputs.count > 2 ? [inputs[2]].compactMap { $0 } : []) where value.dataType != .fp32 {
            throw RuntimeError(code: .unsupportedOperator, message: "type \(value.dataType.rawValue) is not supported (supported: FP32)")
        }
        guard let sa = a.shape, let sb = b.shape else { return [ValueType(dataType: .fp32, shape: [-1, -1])] }
        let (m, n, _) = try dimensions(sa, sb)
        if inputs.count > 2, let c = inputs[2], let sc = c.shape {
            guard sc.count <= 2, let out = BroadcastLayout.broadcastShape(sc, [m, n]),
                zip(out, [m, n]).allSatisfy({ $0 == $1 || $1 < 0 })
            else {
                throw failure("C\(sc) does not broadcast to [M, N] = [\(m), \(n)]")
            }
        }
        return [ValueType(dataType: .fp32, shape: [m, n])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let a = inputs[0]!
        let b = inputs[1]!
        let (m, n, k) = try dimensions(a.shape, b.shape)
        let pa = UnsafePointer(a.floats())
        let pb = UnsafePointer(b.floats())
        let py = outputs[0].floats()
        let (alpha, transposeA, transposeB, activation) = (self.alpha, self.transposeA, self.transposeB, self.activation)
        let lda = a.shape[1]
        let ldb = b.shape[1]
        var beta = self.beta
        var fill: (pointer: UnsafePointer<Float>, rowStride: Int, columnStride: Int)?
        if inputs.count > 2, let c = inputs[2], beta != 0 {
            let shape = c.shape
            let rows = shape.count == 2 ? shape[0] : 1
            let columns = shape.last ?? 1
            guard (rows == m || rows == 1), (columns == n || columns == 1) else {
                throw failure("C\(shape) does not broadcast to [M, N] = [\(m), \(n)]")
            }
            fill = (UnsafePointer(c.floats()), rows == 1 ? 0 : columns, columns == 1 ? 0 : 1)
        } else {
            beta = 0
        }
        /// C broadcast into Y.
        func copyC() {
            guard let fill else { return }
            for i in 0..<m {
                let row = py + i * n
                let source = fill.pointer + i * fill.rowStride
                if fill.columnStride == 1 {
                    row.update(from: source, count: n)
                } else {
                    row.update(repeating: source[0], count: n)
                }
            }
        }
        // The microkernels when B was packed at load: a
        // bias row goes into the kernel; another C is copied into Y and accumulated onto.
        let micro = packed.flatMap { $0.rows == k && $0.columns == n && !transposeA && alpha == 1 && (beta == 1 || fill == nil) ? $0 : nil }
        let row = fill.flatMap { $0.rowStride == 0 && $0.columnStride == 1 ? $0.pointer : nil }
        return {
            if let micro {
                if row == nil { copyC() }
                backend.sgemm(m: m, a: pa, lda: lda, right: micro, c: py, ldc: n, columnBias: row,
                              accumulate: fill != nil && row == nil, activation: activation)
                return
            }
            copyC()
            backend.sgemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: pa, lda: lda, b: pb, ldb: ldb, beta: beta, c: py, ldc: n)
            backend.apply(activation, py, count: m * n)
        }
    }
}

import CBLAS

extension CPUBackend {
    /// `C = alpha * op(A) * op(B) + beta * C` in single precision, row-major, via `cblas_sgemm`.
    ///
    /// `op(A)` is `m × k` (A is stored `k × m` when `transposeA`), `op(B)` is `k × n`, C is `m × n`.
    /// Leading dimensions are row strides in elements (`lda >= cols of A as stored`). With
    /// `beta == 0`, C's previous contents are ignored (may be uninitialised). Costs `2·m·n·k` flops
    /// on OpenBLAS's thread pool (see `BLASThreading`). Empty products only scale C.
    public func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS would not touch C's k-sum; do what the formula says: C = beta * C.
            for row in 0..<m {
                let p = c + row * ldc
                if beta == 0 {
                    p.update(repeating: 0, count: n)
                } else {
                    for j in 0..<n { p[j] *= beta }
                }
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha,
            a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}

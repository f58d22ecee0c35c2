import CBLAS

extension CPUBackend {
    /// `C = alpha * op(A) * op(B) + beta * C` in single precision, row-major, via OpenBLAS.
    ///
    /// `op(A)` is `m × k` (A is stored `k × m` when `transposeA`), `op(B)` is `k × n`, C is `m × n`.
    /// Leading dimensions are row strides in elements (`lda >= cols of A as stored`). With
    /// `beta == 0`, C's previous contents are ignored (may be uninitialised). Costs `2·m·n·k` flops
    /// on OpenBLAS's thread pool (see `BLASThreading`). Empty products only scale C.
    ///
    /// A product with one row or one column (batch 1, or a layer with one output) runs as
    /// `cblas_sgemv`: OpenBLAS 0.3.21's `sgemm` packs both operands even then, which costs more
    /// than the product itself at these sizes.
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
        if m == 1 {
            // c[0, :] = alpha * op(B)ᵀ-free product: y[n] = Σk op(B)[k, n] · a[k].
            let incx = transposeA ? lda : 1
            if transposeB {
                // B stored n × k: y = B · x.
                cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(n), blasint(k), alpha, b, blasint(ldb), a, blasint(incx), beta, c, 1)
            } else {
                // B stored k × n: y = Bᵀ · x.
                cblas_sgemv(CblasRowMajor, CblasTrans, blasint(k), blasint(n), alpha, b, blasint(ldb), a, blasint(incx), beta, c, 1)
            }
            return
        }
        if n == 1 {
            // c[:, 0] = alpha * op(A) · op(B)[:, 0].
            let incx = transposeB ? 1 : ldb
            if transposeA {
                cblas_sgemv(CblasRowMajor, CblasTrans, blasint(k), blasint(m), alpha, a, blasint(lda), b, blasint(incx), beta, c, blasint(ldc))
            } else {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(m), blasint(k), alpha, a, blasint(lda), b, blasint(incx), beta, c, blasint(ldc))
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

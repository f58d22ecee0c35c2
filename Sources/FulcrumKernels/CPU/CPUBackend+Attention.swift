import CGEMM
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a matrix operand lies in memory: element `(i, j)` is at `base + i·rowStride +
/// j·columnStride`. A stride of 0 broadcasts (every row, or every column, is the same).
public struct MatrixStrides: Sendable, Equatable {
    /// Elements between consecutive rows.
    public var row: Int
    /// Elements between consecutive columns.
    public var column: Int

    /// Creates a placement from its strides.
    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }

    /// How BLAS can read a `rows × columns` matrix with these strides: stored as is (`transposed
    /// == false`, leading dimension = row stride) or as its transpose; `nil` when neither stride
    /// is 1 (a strided matrix BLAS cannot address) or when the layout would overlap.
    public func blasOperand(rows: Int, columns: Int) -> (transposed: Bool, leadingDimension: Int)? {
        if columns <= 1 || column == 1 {
            if rows <= 1 { return (false, max(columns, 1)) }
            if row >= max(columns, 1) { return (false, row) }
        }
        if rows <= 1 || row == 1 {
            if columns <= 1 { return (true, max(rows, 1)) }
            if column >= max(rows, 1) { return (true, column) }
        }
        return nil
    }
}

extension CPUBackend {
    /// Scaled dot-product attention for one head: `out = softmax(scale · Q·Kᵀ + mask) · V`,
    /// the softmax over each row of keys.
    ///
    /// Q is `queryLength × headSize`, K `keyLength × headSize`, V `keyLength × valueSize` (each
    /// at any strides `blasOperand` accepts), `mask` (optional, additive) is `queryLength ×
    /// keyLength` with column stride 0 or 1 (row stride 0 broadcasts one row to all queries),
    /// and `out` is `queryLength × valueSize` with contiguous columns and row stride
    /// `outputRowStride`. Queries are processed in blocks of `scratchRows` rows: the block's
    /// scores (`scratchRows × keyLength` floats of `scratch`) stay in cache between the two
    /// `sgemm`s and the softmax, and never go to memory as a tensor. Costs
    /// `2·Sq·Sk·(headSize + valueSize)` flops in two `sgemm` calls per block.
    ///
    /// Preconditions (checked by the caller that plans the layout): `q`, `k`, `v` strides give a
    /// BLAS operand, `mask.column` is 0 or 1, `scratchRows ≥ 1`.
    ///
    /// With `packing` (`attentionPackingFloats` floats) and the microkernels selected, `scale ·
    /// Kᵀ` and V are packed there once per head and both products run on the microkernels
    /// (Q's columns must be contiguous); otherwise on OpenBLAS.
    public func attention(
        query q: UnsafePointer<Float>, _ qs: MatrixStrides,
        key k: UnsafePointer<Float>, _ ks: MatrixStrides,
        value v: UnsafePointer<Float>, _ vs: MatrixStrides,
        mask: UnsafePointer<Float>?, _ ms: MatrixStrides,
        output out: UnsafeMutablePointer<Float>, outputRowStride: Int,
        queryLength: Int, keyLength: Int, headSize: Int, valueSize: Int, scale: Float,
        scratch: UnsafeMutablePointer<Float>, scratchRows: Int, packing: UnsafeMutablePointer<Float>? = nil
    ) {
        guard queryLength > 0, valueSize > 0 else { return }
        guard let ko = ks.blasOperand(rows: keyLength, columns: headSize),
            let vo = vs.blasOperand(rows: keyLength, columns: valueSize)
        else { preconditionFailure("attention: K or V strides are not a BLAS operand") }
        let kernels = Microkernels.current
        if let packing, kernels != .off, keyLength > 0, headSize > 0, qs.column == 1 || headSize == 1 {
            let isa = Int32(kernels.rawValue)
            let packedK = packing
            let packedV = packing + Self.packedCount(kernels, headSize, keyLength)
            fulcrum_gemm_pack_right(isa, headSize, keyLength, k, ks.column, ks.row, scale, packedK)
            fulcrum_gemm_pack_right(isa, keyLength, valueSize, v, vs.row, vs.column, 1, packedV)
            let threads = Int32(clamping: BLASThreading.threadCount)
            var start = 0
            while start < queryLength {
                let rows = min(scratchRows, queryLength - start)
                fulcrum_gemm_right_packed(
                    isa, rows, keyLength, headSize, q + start * qs.row, max(qs.row, headSize), packedK, scratch, keyLength,
                    nil, 0, Int32(FULCRUM_GEMM_ACTIVATION_NONE), threads)
                for r in 0..<rows {
                    let row = scratch + r * keyLength
                    let maskRow = mask.map { $0 + (start + r) * ms.row }
                    Self.softmaxRow(row, row, keyLength, bias: maskRow, biasStride: ms.column, logarithm: false)
                }
                fulcrum_gemm_right_packed(
                    isa, rows, valueSize, keyLength, scratch, keyLength, packedV, out + start * outputRowStride,
                    max(outputRowStride, valueSize), nil, 0, Int32(FULCRUM_GEMM_ACTIVATION_NONE), threads)
                start += rows
            }
            return
        }
        var start = 0
        while start < queryLength {
            let rows = min(scratchRows, queryLength - start)
            let qBlock = q + start * qs.row
            guard let qo = qs.blasOperand(rows: rows, columns: headSize) else {
                preconditionFailure("attention: Q strides are not a BLAS operand")
            }
            // scores = scale · Q·Kᵀ (Kᵀ is K read transposed: flip K's own orientation).
            sgemm(
                transposeA: qo.transposed, transposeB: !ko.transposed, m: rows, n: keyLength, k: headSize, alpha: scale,
                a: qBlock, lda: qo.leadingDimension, b: k, ldb: ko.leadingDimension,
                beta: 0, c: scratch, ldc: max(keyLength, 1))
            if keyLength > 0 {
                for r in 0..<rows {
                    let row = scratch + r * keyLength
                    let maskRow = mask.map { $0 + (start + r) * ms.row }
                    Self.softmaxRow(row, row, keyLength, bias: maskRow, biasStride: ms.column, logarithm: false)
                }
            }
            sgemm(
                transposeA: false, transposeB: vo.transposed, m: rows, n: valueSize, k: keyLength, alpha: 1,
                a: scratch, lda: max(keyLength, 1), b: v, ldb: vo.leadingDimension,
                beta: 0, c: out + start * outputRowStride, ldc: max(outputRowStride, valueSize))
            start += rows
        }
    }

    /// Floats `attention` needs in `packing` to run on the microkernels (0 when none are
    /// selected, or when the size overflows: then it runs on OpenBLAS).
    public static func attentionPackingFloats(keyLength: Int, headSize: Int, valueSize: Int) -> Int {
        let kernels = Microkernels.current
        guard kernels != .off else { return 0 }
        let (total, overflow) = packedCount(kernels, headSize, keyLength).addingReportingOverflow(packedCount(kernels, keyLength, valueSize))
        return overflow ? 0 : total
    }

    static func packedCount(_ kernels: Microkernels, _ k: Int, _ n: Int) -> Int {
        Int(fulcrum_gemm_packed_right_count(Int32(kernels.rawValue), k, n))
    }

    /// Softmax (or LogSoftmax) of one contiguous row of `n ≥ 1` elements, optionally after
    /// adding `bias` (stride 0: one value for the row, stride 1: one per element): three
    /// passes of 8 lanes (add and maximum, exponentials and sum, scale). `y` may equal `x`.
    @inline(__always)
    static func softmaxRow(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
        bias: UnsafePointer<Float>?, biasStride: Int, logarithm: Bool, kernels: Microkernels = .current
    ) {
        // With AVX2 or AVX-512, the microkernel library's row (the same passes, wider vectors).
        if kernels != .off, kernels.rawValue <= Microkernels.detected.rawValue, bias == nil || biasStride <= 1 {
            fulcrum_softmax_row(Int32(kernels.rawValue), x, y, n, bias, biasStride, logarithm ? 1 : 0)
            return
        }
        let raw = UnsafeMutableRawPointer(y)
        var source = x
        // Pass 1: y = x + bias (when there is one), and the row's maximum.
        var vmax = SIMD8<Float>(repeating: -.infinity)
        var k = 0
        if let bias {
            if biasStride == 0 {
                let b = bias[0]
                while k + 8 <= n {
                    let v = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self) + b
                    raw.storeBytes(of: v, toByteOffset: k * 4, as: SIMD8<Float>.self)
                    vmax = VectorMath.maximum(vmax, v)
                    k += 8
                }
                for i in k..<n { y[i] = x[i] + b }
            } else {
                while k + 8 <= n {
                    let v = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self)
                        + UnsafeRawPointer(bias + k).loadUnaligned(as: SIMD8<Float>.self)
                    raw.storeBytes(of: v, toByteOffset: k * 4, as: SIMD8<Float>.self)
                    vmax = VectorMath.maximum(vmax, v)
                    k += 8
                }
                for i in k..<n { y[i] = x[i] + bias[i] }
            }
            source = UnsafePointer(y)
        } else {
            while k + 8 <= n {
                vmax = VectorMath.maximum(vmax, UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self))
                k += 8
            }
        }
        var maximum = VectorMath.horizontalMaximum(vmax)
        for i in k..<n where source[i] > maximum { maximum = source[i] }
        // Pass 2: e = exp(y − max) and its sum (LogSoftmax keeps y and only sums).
        var vsum = SIMD8<Float>(repeating: 0)
        k = 0
        // 16 lanes per step: two independent exponentials overlap their dependency chains.
        while k + 16 <= n {
            let e0 = VectorMath.exp(UnsafeRawPointer(source + k).loadUnaligned(as: SIMD8<Float>.self) - maximum)
            let e1 = VectorMath.exp(UnsafeRawPointer(source + k + 8).loadUnaligned(as: SIMD8<Float>.self) - maximum)
            if !logarithm {
                raw.storeBytes(of: e0, toByteOffset: k * 4, as: SIMD8<Float>.self)
                raw.storeBytes(of: e1, toByteOffset: k * 4 + 32, as: SIMD8<Float>.self)
            }
            vsum += e0 + e1
            k += 16
        }
        while k + 8 <= n {
            let e = VectorMath.exp(UnsafeRawPointer(source + k).loadUnaligned(as: SIMD8<Float>.self) - maximum)
            if !logarithm { raw.storeBytes(of: e, toByteOffset: k * 4, as: SIMD8<Float>.self) }
            vsum += e
            k += 8
        }
        var sum = VectorMath.horizontalSum(vsum)
        if k < n {
            var tail = SIMD8<Float>(repeating: -.infinity)
            for i in k..<n { tail[i - k] = source[i] - maximum }
            let e = VectorMath.exp(tail)
            for i in k..<n {
                if !logarithm { y[i] = e[i - k] }
                sum += e[i - k]
            }
        }
        // Pass 3: normalise.
        k = 0
        if logarithm {
            let shift = maximum + logf(sum)
            while k + 8 <= n {
                let v = UnsafeRawPointer(source + k).loadUnaligned(as: SIMD8<Float>.self) - shift
                raw.storeBytes(of: v, toByteOffset: k * 4, as: SIMD8<Float>.self)
                k += 8
            }
            while k < n {
                y[k] = source[k] - shift
                k += 1
            }
        } else {
            let scale = 1 / sum
            while k + 8 <= n {
                let v = UnsafeRawPointer(y + k).loadUnaligned(as: SIMD8<Float>.self) * scale
                raw.storeBytes(of: v, toByteOffset: k * 4, as: SIMD8<Float>.self)
                k += 8
            }
            while k < n {
                y[k] *= scale
                k += 1
            }
        }
    }
}

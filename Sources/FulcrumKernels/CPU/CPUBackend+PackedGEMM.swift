import CGEMM
import Synchronization

/// Fulcrum's own matrix-product microkernels (Sources/CGEMM), for products with a model's
/// constant weights on one side.
///
/// The weights are packed once, at load, into the panel layout the kernel reads; each call then
/// streams the other operand in place. OpenBLAS 0.3.21 packs both operands on every `sgemm`
/// call, which costs more than the product at the row counts a server runs (batch 1–64: measured
/// on a Zen 5 EPYC, one thread, 16 × 512 × 256 runs at ~250 GFLOP/s here against ~110 in
/// OpenBLAS; `fulcrum-bench --microkernels` compares them on a whole model).
/// With more than one thread (`BLASThreading`'s count, which the worker's `--threads` sets) a
/// product's columns are split between the calling thread and helper threads of the library's
/// own (they spin briefly between products, then sleep).
public enum Microkernels: Int, Sendable, CustomStringConvertible, CaseIterable {
    /// No microkernel: every product goes to OpenBLAS, depthwise convolutions to a scalar loop.
    case off = 0
    /// AVX2 + FMA, 6 × 16 tiles.
    case avx2 = 1
    /// AVX-512 (F, DQ, VL), 8 × 32 tiles.
    case avx512 = 2

    /// The best set this CPU and operating system support (CPUID and XCR0).
    public static let detected = Microkernels(rawValue: Int(fulcrum_gemm_detect())) ?? .off

    private static let chosen = Atomic<Int>(detected.rawValue)

    /// The set products use: `detected` unless `select` chose a lower one. Read when a model's
    /// plan is built (weights are packed for it then).
    public static var current: Microkernels { Microkernels(rawValue: chosen.load(ordering: .relaxed)) ?? .off }

    /// Chooses the set for plans built from now on (`off` sends every product to OpenBLAS).
    /// A set above `detected` is lowered to it. Call at start, before models load.
    public static func select(_ set: Microkernels) {
        chosen.store(min(set.rawValue, detected.rawValue), ordering: .relaxed)
    }

    public var description: String {
        switch self {
        case .off: "off"
        case .avx2: "AVX2"
        case .avx512: "AVX-512"
        }
    }

    /// `auto`, `off`, `avx2` or `avx512` (as the command-line options spell them).
    public init?(option text: String) {
        switch text.lowercased() {
        case "auto": self = Microkernels.detected
        case "off", "openblas", "none": self = .off
        case "avx2": self = .avx2
        case "avx512", "avx-512": self = .avx512
        default: return nil
        }
    }

    var tileRows: Int { Int(fulcrum_gemm_tile_rows(Int32(rawValue))) }
    var tileColumns: Int { Int(fulcrum_gemm_tile_columns(Int32(rawValue))) }
}

/// A constant matrix packed for one set of microkernels: as the right operand (`k × n`, panels
/// of NR columns) or the left one (`m × k`, blocks of MR rows). Shared, read-only, by every
/// instance of a model; it frees its memory when the plan goes.
public final class PackedMatrix: @unchecked Sendable {
    public enum Side: Sendable { case left, right }
    public let side: Side
    public let kernels: Microkernels
    /// Rows and columns of the matrix as the product reads it (`k × n` or `m × k`).
    public let rows: Int
    public let columns: Int
    let storage: UnsafeMutablePointer<Float>
    /// Bytes held.
    public let byteCount: Int

    init(side: Side, kernels: Microkernels, rows: Int, columns: Int, count: Int) {
        self.side = side
        self.kernels = kernels
        self.rows = rows
        self.columns = columns
        storage = .allocate(capacity: count)
        byteCount = count * MemoryLayout<Float>.size
    }

    deinit { storage.deallocate() }
}

extension CPUBackend {
    /// `B` (`k × n`; element `(r, j)` at `b[r * rowStride + j * columnStride]`) packed as a
    /// product's right operand for `kernels`, or nil when that set is off or missing here, or the
    /// size overflows.
    public func packRight(
        k: Int, n: Int, b: UnsafePointer<Float>, rowStride: Int, columnStride: Int, kernels: Microkernels = .current
    ) -> PackedMatrix? {
        guard kernels.rawValue <= Microkernels.detected.rawValue, kernels != .off, k >= 0, n > 0 else { return nil }
        let count = fulcrum_gemm_packed_right_count(Int32(kernels.rawValue), k, n)
        guard count > 0 || k == 0, count <= Int.max / 4 else { return nil }
        let packed = PackedMatrix(side: .right, kernels: kernels, rows: k, columns: n, count: max(Int(count), 1))
        fulcrum_gemm_pack_right(Int32(kernels.rawValue), k, n, b, rowStride, columnStride, 1, packed.storage)
        return packed
    }

    /// `A` (`m × k`, row stride `lda`) times `scale`, packed as a product's left operand for
    /// `kernels`, or nil when that set is off or missing here, or the size overflows.
    public func packLeft(
        m: Int, k: Int, a: UnsafePointer<Float>, lda: Int, scale: Float = 1, kernels: Microkernels = .current
    ) -> PackedMatrix? {
        guard kernels.rawValue <= Microkernels.detected.rawValue, kernels != .off, m > 0, k >= 0 else { return nil }
        let count = fulcrum_gemm_packed_left_count(Int32(kernels.rawValue), m, k)
        guard count > 0 || k == 0, count <= Int.max / 4 else { return nil }
        let packed = PackedMatrix(side: .left, kernels: kernels, rows: m, columns: k, count: max(Int(count), 1))
        fulcrum_gemm_pack_left(Int32(kernels.rawValue), m, k, a, lda, scale, packed.storage)
        return packed
    }

    /// `C (m × n) = activation([C if accumulate] + A · right + [columnBias])`. `A` is
    /// `m × right.rows` with row stride `lda`; `columnBias` has `right.columns` elements. Relu,
    /// exact Gelu and HardSwish run inside the kernel on the tile in registers; other activations afterwards.
    public func sgemm(
        m: Int, a: UnsafePointer<Float>, lda: Int, right: PackedMatrix, c: UnsafeMutablePointer<Float>, ldc: Int,
        columnBias: UnsafePointer<Float>? = nil, accumulate: Bool = false, activation: Activation = .none
    ) {
        precondition(right.side == .right)
        let code = Self.epilogue(activation)
        fulcrum_gemm_right_packed(
            Int32(right.kernels.rawValue), m, right.columns, right.rows, a, lda, right.storage, c, ldc, columnBias,
            accumulate ? 1 : 0, code, Int32(clamping: BLASThreading.threadCount))
        if code == Int32(FULCRUM_GEMM_ACTIVATION_NONE), activation != .none {
            for row in 0..<m { apply(activation, c + row * ldc, count: right.columns) }
        }
    }

    /// `C (left.rows × n) = activation([C if accumulate] + left · B + [rowBias])`. `B` is
    /// `left.columns × n` with row stride `ldb`, read in place.
    public func sgemm(
        left: PackedMatrix, n: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        rowBias: UnsafePointer<Float>? = nil, accumulate: Bool = false, activation: Activation = .none
    ) {
        precondition(left.side == .left)
        let code = Self.epilogue(activation)
        fulcrum_gemm_left_packed(
            Int32(left.kernels.rawValue), left.rows, n, left.columns, left.storage, b, ldb, c, ldc, rowBias,
            accumulate ? 1 : 0, code, Int32(clamping: BLASThreading.threadCount))
        if code == Int32(FULCRUM_GEMM_ACTIVATION_NONE), activation != .none {
            for row in 0..<left.rows { apply(activation, c + row * ldc, count: n) }
        }
    }

    /// The same product with B's rows given by pointers (`B(r, j) = rows[r][j]`, `left.columns`
    /// of them): a stride-1 convolution's taps read straight from its zero-padded planes.
    public func sgemm(
        left: PackedMatrix, n: Int, rows: UnsafePointer<UnsafePointer<Float>?>, c: UnsafeMutablePointer<Float>, ldc: Int,
        rowBias: UnsafePointer<Float>? = nil, accumulate: Bool = false, activation: Activation = .none
    ) {
        precondition(left.side == .left)
        let code = Self.epilogue(activation)
        fulcrum_gemm_left_packed_rows(
            Int32(left.kernels.rawValue), left.rows, n, left.columns, left.storage, rows, c, ldc, rowBias,
            accumulate ? 1 : 0, code, Int32(clamping: BLASThreading.threadCount))
        if code == Int32(FULCRUM_GEMM_ACTIVATION_NONE), activation != .none {
            for row in 0..<left.rows { apply(activation, c + row * ldc, count: n) }
        }
    }

    /// Runs `body(part, range)` for `parts` consecutive ranges of `0..<count` (each part once;
    /// `part < parts`, so it can pick its own scratch) on up to `BLASThreading.threadCount`
    /// threads: the caller and the microkernels' helpers. With one thread, or while another
    /// caller has the helpers, the caller runs `body(0, 0..<count)`. Products inside `body` run on
    /// the thread that runs it.
    public static func parallelFor(count: Int, parts: Int, _ body: (Int, Range<Int>) -> Void) {
        typealias Body = (Int, Range<Int>) -> Void
        guard count > 0 else { return }
        withoutActuallyEscaping(body) { body in
            var callable: Body = body
            withUnsafeMutablePointer(to: &callable) { pointer in
                fulcrum_parallel_for(Int32(clamping: BLASThreading.threadCount), count, max(1, parts), { context, part, begin, end in
                    context!.assumingMemoryBound(to: Body.self).pointee(part, begin..<end)
                }, pointer)
            }
        }
    }

    /// The kernel's code for an activation it applies itself (none for the others).
    static func epilogue(_ activation: Activation) -> Int32 {
        switch activation {
        case .relu: Int32(FULCRUM_GEMM_ACTIVATION_RELU)
        case .gelu: Int32(FULCRUM_GEMM_ACTIVATION_GELU)
        case .hardSwish: Int32(FULCRUM_GEMM_ACTIVATION_HARDSWISH)
        default: Int32(FULCRUM_GEMM_ACTIVATION_NONE)
        }
    }
}

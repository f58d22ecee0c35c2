/// Which Vulkan sgemm kernel `VulkanRecording.sgemm` records. All have the same contract
/// (transposes, leading dimensions, alpha/beta, bias, activation, batches, any sizes) and give
/// the same results up to FP32 summation order.
public enum SGEMMVariant: Sendable, Equatable, CustomStringConvertible {
    /// `tile128` for large products (`prefersTile128`), `splitk` for everything else: on an
    /// NVIDIA H100 (loadtests/results/2026-11-24-vulkan-gpu) `tile128` ran 4096³ at 37.1 TFLOP/s
    /// (72 % of cuBLAS FP32) and `splitk` beat `tile64` on every shape below that size.
    case automatic
    /// `matmul.comp`: 64 × 64 output tile per 256-invocation workgroup, 4 × 4 outputs per
    /// invocation, scalar loads. Four times as many workgroups as `tile128` on the same shape:
    /// the better choice for small and skinny products.
    case tile64
    /// `matmul128.comp`: 128 × 128 output tile per 256-invocation workgroup, 8 × 8 outputs per
    /// invocation in registers, K tiles of 16 double-buffered in shared memory, vec4 loads and
    /// stores when leading dimensions and batch strides are multiples of 4. For large products.
    case tile128
    /// `matmulsplitk.comp`: 64 × 64 output tile per 256-invocation workgroup with vec4 loads and
    /// K tiles of 32, double-buffered; when the tiles alone are too few to fill a large GPU (m ≤ 64
    /// and the like: an MLP at serving batch sizes) K is split across workgroups
    /// (`splitK(m:n:k:batch:)`) and `matmulreduce.comp` adds the partial sums and applies the
    /// epilogue once, at the cost of a second dispatch and a splits · batch · m · n workspace.
    case splitk

    /// The smallest m and n for which `automatic` considers `tile128`.
    public static let tile128MinimumSide = 256
    /// The fewest 128 × 128 workgroups (over all batches) for which `automatic` picks `tile128`:
    /// below that, `splitk`'s smaller tiles (and split K) keep more of a large GPU busy. On the
    /// H100, 2048 × 512 × 128 (64 tiles) ran faster on `splitk`, 1024 × 2048 × 2048 (128) on `tile128`.
    public static let tile128MinimumWorkgroups = 128
    /// `splitk` splits K only while the product has fewer 64 × 64 tiles (over all batches) than
    /// this: an H100 has 132 multiprocessors.
    public static let splitKMaximumTiles = 132
    /// `splitk` aims at this many workgroups in all when it splits (two per H100 multiprocessor).
    public static let splitKTargetWorkgroups = 264
    /// The fewest k indices one split gets (a multiple of matmulsplitk.comp's K tile, 32).
    public static let splitKMinimumChunk = 64
    /// The most splits.
    public static let splitKMaximumSplits = 32

    /// How `splitk` divides K for an `m × n × k` product repeated `batch` times: `splits` ranges
    /// of `chunk` k indices each (the last may be shorter; `chunk` a multiple of 32). One split
    /// (`chunk` = k rounded up to 32) when there are already `splitKMaximumTiles` tiles or k is short.
    public static func splitK(m: Int, n: Int, k: Int, batch: Int = 1) -> (splits: Int, chunk: Int) {
        let tiles = ((m + 63) / 64) * ((n + 63) / 64) * max(batch, 1)
        let most = min(k / splitKMinimumChunk, splitKMaximumSplits)
        guard tiles < splitKMaximumTiles, most > 1 else { return (1, (k + 31) / 32 * 32) }
        let wanted = min((splitKTargetWorkgroups + tiles - 1) / tiles, most)
        let chunk = ((k + wanted - 1) / wanted + 31) / 32 * 32
        return ((k + chunk - 1) / chunk, chunk)
    }

    /// Whether `automatic` considers `tile128` at all (it was off while the first `tile128`
    /// measured ten times slower than `tile64` on the H100; the rewrite is the fastest kernel there).
    public static let automaticUsesTile128 = true

    /// Whether `automatic` runs `tile128` for an `m × n` product repeated `batch` times: m and n
    /// at least `tile128MinimumSide` and at least `tile128MinimumWorkgroups` tiles.
    public static func prefersTile128(m: Int, n: Int, batch: Int = 1) -> Bool {
        guard automaticUsesTile128, m >= tile128MinimumSide, n >= tile128MinimumSide else { return false }
        return ((m + 127) / 128) * ((n + 127) / 128) * max(batch, 1) >= tile128MinimumWorkgroups
    }

    /// The concrete kernel for a product: `self` unless `automatic`.
    public func resolved(m: Int, n: Int, batch: Int = 1) -> SGEMMVariant {
        guard self == .automatic else { return self }
        return Self.prefersTile128(m: m, n: n, batch: batch) ? .tile128 : .splitk
    }

    /// `"automatic"`, `"tile64"`, `"tile128"` or `"splitk"` (what `init?(name:)` reads).
    public var description: String {
        switch self {
        case .automatic: "automatic"
        case .tile64: "tile64"
        case .tile128: "tile128"
        case .splitk: "splitk"
        }
    }

    /// The variant named `"automatic"`, `"tile64"`, `"tile128"` or `"splitk"`; nil for anything else.
    public init?(name: String) {
        switch name {
        case "automatic": self = .automatic
        case "tile64": self = .tile64
        case "tile128": self = .tile128
        case "splitk": self = .splitk
        default: return nil
        }
    }
}

/// How two tensors broadcast against each other (numpy / ONNX multidirectional broadcasting),
/// reduced to the fewest loops: adjacent dimensions that broadcast the same way are merged and
/// size-1 dimensions dropped.
///
/// Compute it once per shape pair (the runtime does so when it binds a batch shape) and pass it
/// to the elementwise kernels; building it allocates, running with it does not.
public struct BroadcastLayout: Sendable, Equatable {
    /// The broadcast result shape (rank = the larger input rank).
    public let outputShape: [Int]
    /// Merged loop sizes, outermost first; the last is the contiguous inner loop.
    public let sizes: [Int]
    /// Element strides of the first input per merged loop (0 where it is broadcast).
    public let stridesA: [Int]
    /// Element strides of the second input per merged loop (0 where it is broadcast).
    public let stridesB: [Int]
    /// Number of output elements.
    public let elementCount: Int

    /// The broadcast shape of `a` and `b`, or `nil` when they are incompatible (a dimension
    /// differs and neither is 1). Negative dimensions (unknown) broadcast as unknown (-1)
    /// unless the other side fixes them.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db {
                out[i] = da
            } else if da == 1 {
                out[i] = db
            } else if db == 1 {
                out[i] = da
            } else if da < 0 {
                out[i] = db
            } else if db < 0 {
                out[i] = da
            } else {
                return nil
            }
        }
        return out
    }

    /// Plans broadcasting `a` with `b` (concrete, non-negative shapes); `nil` when incompatible.
    public init?(_ a: [Int], _ b: [Int]) {
        guard a.allSatisfy({ $0 >= 0 }), b.allSatisfy({ $0 >= 0 }),
            let out = Self.broadcastShape(a, b)
        else { return nil }
        let rank = out.count
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        // Contiguous strides, zeroed where the input is broadcast.
        var sa = [Int](repeating: 0, count: rank)
        var sb = [Int](repeating: 0, count: rank)
        var accA = 1
        var accB = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            sa[i] = pa[i] == 1 ? 0 : accA
            sb[i] = pb[i] == 1 ? 0 : accB
            accA *= pa[i]
            accB *= pb[i]
        }
        var sizes: [Int] = []
        var mergedA: [Int] = []
        var mergedB: [Int] = []
        for i in 0..<rank where out[i] != 1 {
            if let last = sizes.last,
                mergedA.last! == sa[i] * out[i], mergedB.last! == sb[i] * out[i]
            {
                sizes[sizes.count - 1] = last * out[i]
                mergedA[mergedA.count - 1] = sa[i]
                mergedB[mergedB.count - 1] = sb[i]
            } else {
                sizes.append(out[i])
                mergedA.append(sa[i])
                mergedB.append(sb[i])
            }
        }
        if sizes.isEmpty {  // every dimension is 1: one element
            sizes = [1]
            mergedA = [1]
            mergedB = [1]
        }
        self.outputShape = out
        self.sizes = sizes
        self.stridesA = mergedA
        self.stridesB = mergedB
        self.elementCount = out.reduce(1, *)
    }
}

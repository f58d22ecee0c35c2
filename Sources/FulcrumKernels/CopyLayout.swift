/// A strided copy between two tensors' memory, reduced to the fewest loops: size-1 dimensions
/// are dropped and adjacent dimensions that are contiguous in both source and destination are
/// merged. Transpose, Slice, Expand, Concat, Split and Gather are all such copies.
///
/// Build it once per shape (the runtime does so when it binds a batch shape); building
/// allocates, copying with it does not.
public struct CopyLayout: Sendable, Equatable {
    /// Merged loop sizes, outermost first.
    public let sizes: [Int]
    /// Source element strides per merged loop (0 repeats an element: broadcasting).
    public let sourceStrides: [Int]
    /// Destination element strides per merged loop.
    public let destinationStrides: [Int]
    /// Number of elements copied.
    public let elementCount: Int

    /// Plans copying a region of `shape` elements read at `sourceStrides` and written at
    /// `destinationStrides` (all in elements; strides may be 0 on the source side).
    public init(shape: [Int], sourceStrides: [Int], destinationStrides: [Int]) {
        precondition(shape.count == sourceStrides.count && shape.count == destinationStrides.count)
        var sizes: [Int] = []
        var source: [Int] = []
        var destination: [Int] = []
        for i in 0..<shape.count where shape[i] != 1 {
            if let last = sizes.last, source.last! == sourceStrides[i] * shape[i],
                destination.last! == destinationStrides[i] * shape[i]
            {
                sizes[sizes.count - 1] = last * shape[i]
                source[source.count - 1] = sourceStrides[i]
                destination[destination.count - 1] = destinationStrides[i]
            } else {
                sizes.append(shape[i])
                source.append(sourceStrides[i])
                destination.append(destinationStrides[i])
            }
        }
        if sizes.isEmpty {
            sizes = [1]
            source = [1]
            destination = [1]
        }
        self.sizes = sizes
        self.sourceStrides = source
        self.destinationStrides = destination
        self.elementCount = shape.reduce(1, *)
    }

    /// Row-major (contiguous) strides of `shape`, in elements.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var accumulated = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = accumulated
            accumulated *= shape[i]
        }
        return strides
    }
}

extension CPUBackend {
    /// Copies the elements described by `layout` from `source` to `destination`
    /// (`elementSize` bytes each: 1, 2, 4 or 8). The contiguous inner loop is one `memcpy`.
    public func copy(_ layout: CopyLayout, from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, elementSize: Int) {
        guard layout.elementCount > 0 else { return }
        switch elementSize {
        case 1: Self.copy(layout, source, destination, UInt8.self)
        case 2: Self.copy(layout, source, destination, UInt16.self)
        case 4: Self.copy(layout, source, destination, UInt32.self)
        default: Self.copy(layout, source, destination, UInt64.self)
        }
    }

    @inline(__always)
    private static func copy<T>(_ layout: CopyLayout, _ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, _ type: T.Type) {
        let rank = layout.sizes.count
        let n = layout.sizes[rank - 1]
        let si = layout.sourceStrides[rank - 1]
        let di = layout.destinationStrides[rank - 1]
        let src = source.assumingMemoryBound(to: T.self)
        let dst = destination.assumingMemoryBound(to: T.self)
        @inline(__always) func inner(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            if si == 1 && di == 1 {
                d.update(from: s, count: n)
            } else if si == 0 && di == 1 {
                d.update(repeating: s[0], count: n)
            } else {
                for i in 0..<n { d[i * di] = s[i * si] }
            }
        }
        if rank == 1 {
            inner(src, dst)
            return
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { counter in
            counter.initialize(repeating: 0)
            var offsetS = 0
            var offsetD = 0
            var done = 0
            let total = layout.elementCount
            while done < total {
                inner(src + offsetS, dst + offsetD)
                done += n
                var d = rank - 2
                while d >= 0 {
                    counter[d] += 1
                    offsetS += layout.sourceStrides[d]
                    offsetD += layout.destinationStrides[d]
                    if counter[d] < layout.sizes[d] { break }
                    offsetS -= layout.sourceStrides[d] * layout.sizes[d]
                    offsetD -= layout.destinationStrides[d] * layout.sizes[d]
                    counter[d] = 0
                    d -= 1
                }
            }
        }
    }
}

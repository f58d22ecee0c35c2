/// A dense tensor as it travels between the service edge and the runtime.
///
/// `data` holds the elements row-major, little-endian, without padding (the open inference
/// protocol's `raw_*_contents` layout), so a request's bytes can become a tensor without
/// conversion. For `.bytes` tensors `data` holds each element as a 4-byte little-endian length
/// followed by its bytes (the protocol's BYTES encoding). The value owns its storage
/// (copy-on-write `[UInt8]`).
public struct Tensor: Sendable, Equatable {
    /// The element type.
    public var dataType: DataType
    /// The dimensions; `[]` is a scalar.
    public var shape: [Int]
    /// The elements, row-major, little-endian, no padding.
    public var data: [UInt8]

    /// Creates a tensor from raw little-endian bytes. The byte count is not checked here;
    /// `ModelInstance.execute` validates it against `shape` and `dataType`.
    public init(dataType: DataType, shape: [Int], data: [UInt8]) {
        self.dataType = dataType
        self.shape = shape
        self.data = data
    }

    /// Creates a tensor from Swift scalars. `scalars.count` must equal the product of `shape`
    /// (a programming error otherwise: it traps).
    public init<T: TensorScalar>(shape: [Int], scalars: [T]) {
        precondition(
            shape.reduce(1, *) == scalars.count,
            "Tensor(shape: \(shape)) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.dataType = T.dataType
        self.shape = shape
        self.data = T.encode(scalars)
    }

    /// Decodes the elements as `T`. Traps if `T.dataType != dataType` (a programming error);
    /// decodes only the whole elements present if `data` is short.
    public func scalars<T: TensorScalar>(as type: T.Type) -> [T] {
        precondition(T.dataType == dataType, "tensor holds \(dataType), not \(T.dataType)")
        let size = dataType.byteSize ?? 1
        let count = Swift.min(elementCount, data.count / size)
        return data.withUnsafeBytes { T.decode($0, count: count) }
    }

    /// The number of elements: the product of `shape` (1 for a scalar, 0 if any dimension is 0).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The byte count the elements need (`elementCount * byteSize`), or `nil` for `.bytes` or
    /// on overflow.
    public var expectedByteCount: Int? {
        guard let size = dataType.byteSize else { return nil }
        var count = size
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            count = product
        }
        return count
    }
}

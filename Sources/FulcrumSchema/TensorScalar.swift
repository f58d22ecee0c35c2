#if _endian(big)
#error("Fulcrum stores tensors little-endian and assumes a little-endian host")
#endif

/// A Swift scalar type that maps one-to-one onto a fixed-size `DataType`.
///
/// Conforming types are `Float`, `Double`, `Int8`...`Int64`, `UInt8`...`UInt64` and `Bool`.
/// Encoding copies memory directly (the host is little-endian, as the wire format is), so
/// converting a tensor costs one `memcpy` of its data.
public protocol TensorScalar: Sendable {
    /// The tensor element type this Swift type represents.
    static var dataType: DataType { get }
    /// Decodes `count` elements from little-endian bytes (`bytes.count == count * size`).
    static func decode(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Self]
    /// Encodes elements as little-endian bytes.
    static func encode(_ values: [Self]) -> [UInt8]
}

extension TensorScalar where Self: BitwiseCopyable {
    /// Decodes by copying memory (little-endian host).
    public static func decode(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Self] {
        [Self](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0, let base = bytes.baseAddress {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(
                    from: base, byteCount: count * MemoryLayout<Self>.stride)
            }
            initialized = count
        }
    }

    /// Encodes by copying memory (little-endian host).
    public static func encode(_ values: [Self]) -> [UInt8] {
        values.withUnsafeBytes { [UInt8]($0) }
    }
}

extension Float: TensorScalar {
    /// `.fp32`.
    public static var dataType: DataType { .fp32 }
}

extension Double: TensorScalar {
    /// `.fp64`.
    public static var dataType: DataType { .fp64 }
}

extension Int8: TensorScalar {
    /// `.int8`.
    public static var dataType: DataType { .int8 }
}

extension Int16: TensorScalar {
    /// `.int16`.
    public static var dataType: DataType { .int16 }
}

extension Int32: TensorScalar {
    /// `.int32`.
    public static var dataType: DataType { .int32 }
}

extension Int64: TensorScalar {
    /// `.int64`.
    public static var dataType: DataType { .int64 }
}

extension UInt8: TensorScalar {
    /// `.uint8`.
    public static var dataType: DataType { .uint8 }
}

extension UInt16: TensorScalar {
    /// `.uint16`.
    public static var dataType: DataType { .uint16 }
}

extension UInt32: TensorScalar {
    /// `.uint32`.
    public static var dataType: DataType { .uint32 }
}

extension UInt64: TensorScalar {
    /// `.uint64`.
    public static var dataType: DataType { .uint64 }
}

extension Bool: TensorScalar {
    /// `.bool`: one byte per element; any non-zero byte decodes as `true`.
    public static var dataType: DataType { .bool }

    /// Decodes one byte per element; non-zero is `true` (never reinterprets arbitrary bytes as `Bool`).
    public static func decode(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Bool] {
        (0..<count).map { bytes[$0] != 0 }
    }

    /// Encodes `true` as 1 and `false` as 0.
    public static func encode(_ values: [Bool]) -> [UInt8] {
        values.map { $0 ? 1 : 0 }
    }
}

/// The element type of a tensor, named as in the open inference protocol ("FP32", "INT64", ...).
///
/// The raw value is the protocol's datatype string; `configName` is the `TYPE_*` name used in
/// config.pbtxt. `.bytes` holds variable-length byte strings (Triton's `TYPE_STRING`).
public enum DataType: String, Sendable, Hashable, CaseIterable, Codable {
    /// Boolean, one byte per element (0 or 1).
    case bool = "BOOL"
    /// Unsigned 8-bit integer.
    case uint8 = "UINT8"
    /// Unsigned 16-bit integer.
    case uint16 = "UINT16"
    /// Unsigned 32-bit integer.
    case uint32 = "UINT32"
    /// Unsigned 64-bit integer.
    case uint64 = "UINT64"
    /// Signed 8-bit integer.
    case int8 = "INT8"
    /// Signed 16-bit integer.
    case int16 = "INT16"
    /// Signed 32-bit integer.
    case int32 = "INT32"
    /// Signed 64-bit integer.
    case int64 = "INT64"
    /// IEEE 754 half precision.
    case fp16 = "FP16"
    /// IEEE 754 single precision.
    case fp32 = "FP32"
    /// IEEE 754 double precision.
    case fp64 = "FP64"
    /// Variable-length byte strings.
    case bytes = "BYTES"
    /// bfloat16.
    case bf16 = "BF16"

    /// Bytes per element; `nil` for `.bytes`, whose elements have no fixed size.
    public var byteSize: Int? {
        switch self {
        case .bool, .uint8, .int8: 1
        case .uint16, .int16, .fp16, .bf16: 2
        case .uint32, .int32, .fp32: 4
        case .uint64, .int64, .fp64: 8
        case .bytes: nil
        }
    }

    /// Parses a config.pbtxt data type name: `"TYPE_FP32"` → `.fp32`, `"TYPE_STRING"` → `.bytes`.
    /// Returns `nil` for anything else, including `TYPE_INVALID`.
    public init?(configName: String) {
        guard configName.hasPrefix("TYPE_") else { return nil }
        let suffix = configName.dropFirst(5)
        if suffix == "STRING" {
            self = .bytes
            return
        }
        guard suffix != "BYTES", let value = DataType(rawValue: String(suffix)) else { return nil }
        self = value
    }

    /// The config.pbtxt name: `.fp32` → `"TYPE_FP32"`, `.bytes` → `"TYPE_STRING"`.
    public var configName: String {
        self == .bytes ? "TYPE_STRING" : "TYPE_" + rawValue
    }
}

import FulcrumSchema

extension DataType {
    /// Maps an ONNX `TensorProto.DataType` number (FLOAT = 1, ...) to a data type; `nil` for
    /// UNDEFINED and types Fulcrum does not carry (complex, float8, ...).
    init?(onnxElementType: Int32) {
        switch onnxElementType {
        case 1: self = .fp32
        case 2: self = .uint8
        case 3: self = .int8
        case 4: self = .uint16
        case 5: self = .int16
        case 6: self = .int32
        case 7: self = .int64
        case 8: self = .bytes
        case 9: self = .bool
        case 10: self = .fp16
        case 11: self = .fp64
        case 12: self = .uint32
        case 13: self = .uint64
        case 16: self = .bf16
        default: return nil
        }
    }

    /// The ONNX element type name, for error messages ("FLOAT", "INT64", ...).
    static func onnxName(_ elementType: Int32) -> String {
        let names: [Int32: String] = [
            0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
            8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
            15: "COMPLEX128", 16: "BFLOAT16",
        ]
        return names[elementType] ?? "type \(elementType)"
    }
}

import FulcrumKernels
import FulcrumSchema

/// Constant: a tensor from the `value` attribute (or `value_float(s)`, `value_int(s)`).
/// Always folded at load.
struct ConstantOperator: Operator {
    let type: ValueType
    let bytes: [UInt8]

    init(attributes: NodeAttributes) throws(RuntimeError) {
        if let (type, bytes) = try attributes.tensor("value") {
            self.type = type
            self.bytes = bytes
        } else if attributes.has("value_float") {
            type = ValueType(dataType: .fp32, shape: [])
            bytes = Float.encode([try attributes.float("value_float", default: 0)])
        } else if let floats = try attributes.floats("value_floats") {
            type = ValueType(dataType: .fp32, shape: [floats.count])
            bytes = Float.encode(floats)
        } else if attributes.has("value_int") {
            let value = try attributes.int("value_int", default: 0)
            type = ValueType(dataType: .int64, shape: [], values: [value])
            bytes = Int64.encode([Int64(value)])
        } else if let ints = try attributes.ints("value_ints") {
            type = ValueType(dataType: .int64, shape: [ints.count], values: ints)
            bytes = Int64.encode(ints.map { Int64($0) })
        } else {
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "Constant needs 'value', 'value_float(s)' or 'value_int(s)' (string and sparse values are not supported)")
        }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] { [type] }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let out = outputs[0].pointer
        let bytes = self.bytes
        return { bytes.withUnsafeBytes { if let base = $0.baseAddress { out.copyMemory(from: base, byteCount: $0.count) } } }
    }
}

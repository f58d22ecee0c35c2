import FulcrumKernels
import FulcrumSchema

/// ConstantOfShape: a tensor of the shape given by input 0 (INT64), every element `value`
/// (a one-element tensor attribute; FP32 0 by default).
struct ConstantOfShapeOperator: Operator {
    let dataType: DataType
    let element: [UInt8]

    init(attributes: NodeAttributes) throws(RuntimeError) {
        if let (type, bytes) = try attributes.tensor("value") {
            guard type.elementCount == 1 else {
                throw RuntimeError(code: .invalidModel, message: "attribute 'value' must hold one element, has shape \(type.shape ?? [])")
            }
            dataType = type.dataType
            element = bytes
        } else {
            dataType = .fp32
            element = Float.encode([0])
        }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let shape = try required(inputs, 0, "input")
        guard shape.dataType == .int64 else { throw failure("the shape must be INT64, got \(shape.dataType.rawValue)") }
        guard let dims = shape.values else {
            return [ValueType(dataType: dataType, shape: shape.shape?.first.flatMap { $0 >= 0 ? [Int](repeating: -1, count: $0) : nil })]
        }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw failure("shape \(dims) has a negative dimension") }
        var values: [Int]? = nil
        if dims.reduce(1, *) <= ValueType.maximumKnownValues, dataType == .int64 || dataType == .int32 {
            let v = element.withUnsafeBytes { raw in dataType == .int64 ? Int(raw.loadUnaligned(as: Int64.self)) : Int(raw.loadUnaligned(as: Int32.self)) }
            values = [Int](repeating: v, count: dims.reduce(1, *))
        }
        return [ValueType(dataType: dataType, shape: dims, values: values)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let out = outputs[0]
        let count = out.elementCount
        let size = element.count
        let element = self.element
        return {
            element.withUnsafeBytes { source in
                for i in 0..<count { (out.pointer + i * size).copyMemory(from: source.baseAddress!, byteCount: size) }
            }
        }
    }
}

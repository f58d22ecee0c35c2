import FulcrumKernels
import FulcrumSchema

/// LayerNormalization (opset 17) over FP32: normalises over the dimensions from `axis`
/// (default -1) to the end, then scales and shifts by `Scale` and the optional `B` (each with
/// that many elements). Optional outputs Mean and InvStdDev have the input's shape with the
/// normalised dimensions set to 1.
struct LayerNormalizationOperator: Operator {
    let axis: Int
    let epsilon: Float

    init(attributes: NodeAttributes) throws(RuntimeError) {
        axis = try attributes.int("axis", default: -1)
        epsilon = try attributes.float("epsilon", default: 1e-5)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        let scale = try required(inputs, 1, "Scale")
        guard x.dataType == .fp32, scale.dataType == .fp32, optional(inputs, 2).map({ $0.dataType == .fp32 }) ?? true else {
            throw unsupported(x.dataType, "FP32")
        }
        guard let shape = x.shape else { return [x.withoutValues, ValueType(dataType: .fp32, shape: nil), ValueType(dataType: .fp32, shape: nil)] }
        let a = try resolveAxis(axis, rank: shape.count)
        let normalized = Array(shape[a...])
        for (role, value) in [("Scale", scale), ("B", optional(inputs, 2))] {
            guard let value, let count = value.elementCount, normalized.allSatisfy({ $0 >= 0 }) else { continue }
            guard count == normalized.reduce(1, *) else {
                throw failure("\(role) has \(count) elements; it must match the normalised dimensions \(normalized)")
            }
        }
        let statistics = Array(shape[..<a]) + [Int](repeating: 1, count: shape.count - a)
        return [x.withoutValues, ValueType(dataType: .fp32, shape: statistics), ValueType(dataType: .fp32, shape: statistics)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let a = try resolveAxis(axis, rank: x.shape.count)
        let rows = x.shape[..<a].reduce(1, *)
        let columns = x.shape[a...].reduce(1, *)
        let input = UnsafePointer(x.floats())
        let scale = UnsafePointer(inputs[1]!.floats())
        let bias = inputs.count > 2 ? inputs[2].map { UnsafePointer($0.floats()) } : nil
        let out = outputs[0].floats()
        let mean = outputs.count > 1 ? outputs[1].floats() : nil
        let inverse = outputs.count > 2 ? outputs[2].floats() : nil
        let epsilon = self.epsilon
        return {
            backend.layerNormalization(
                input, out, rows: rows, columns: columns, scale: scale, bias: bias, epsilon: epsilon,
                mean: mean, inverseStandardDeviation: inverse)
        }
    }
}

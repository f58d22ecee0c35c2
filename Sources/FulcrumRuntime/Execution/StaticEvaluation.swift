import FulcrumKernels
import FulcrumSchema

/// Runs one node once, while planning, on inputs whose contents are known (constants, or
/// values computed from shapes): constant folding at load and shape subgraphs at bind.
enum StaticEvaluation {
    /// A shared block for inputs whose contents an operator never reads (Shape's input).
    static let placeholder = TensorBuffer(byteCount: 64)

    /// Evaluates `op` on `inputs` into fresh buffers of the concrete `types` and returns them
    /// with their bound values (whose `values` are filled for small integer tensors).
    static func evaluate(
        _ op: any Operator, inputs: [BoundValue?], types: [ValueType], backend: CPUBackend
    ) throws(RuntimeError) -> [(buffer: TensorBuffer, value: BoundValue, type: ValueType)] {
        var results: [(buffer: TensorBuffer, value: BoundValue, type: ValueType)] = []
        for type in types {
            guard let shape = type.shape, type.isConcrete, type.dataType.byteSize != nil else {
                throw RuntimeError(code: .internalError, message: "a folded value has no concrete shape (\(type))")
            }
            let buffer = TensorBuffer(byteCount: try BoundPlan.byteCount(type.dataType, shape))
            results.append((buffer, BoundValue(dataType: type.dataType, shape: shape, pointer: buffer.pointer), type))
        }
        if let view = op.viewInput, let source = inputs[view] {
            results[0].buffer.pointer.copyMemory(from: source.pointer, byteCount: results[0].value.byteCount)
        } else {
            let kernel = try op.makeKernel(inputs: inputs, outputs: results.map(\.value), backend: backend)
            try kernel()
        }
        for index in results.indices { results[index].type.learn(results[index].value) }
        return results
    }
}

/// An `ExecutionPlan` bound to concrete input shapes: every value has its shape and buffer, and
/// every node its kernel closure over those buffers, so running a batch is a loop of calls.
///
/// Owned by one `ModelInstance` (not thread-safe: buffers are reused by every run). Binding
/// allocates; `run()` does not.
final class BoundPlan {
    let plan: ExecutionPlan
    /// The graph-input shapes this binding was made for (in `plan.inputs` order).
    let inputShapes: [[Int]]
    /// Every value bound to memory (constants point at the shared initializer buffers).
    private(set) var values: [BoundValue?]
    private var buffers: [TensorBuffer] = []
    private var kernels: [Kernel] = []

    /// Infers every shape from `inputShapes`, allocates buffers and makes kernels. Throws
    /// `.invalidInput` when the shapes do not fit the model (naming the node that refuses them).
    init(plan: ExecutionPlan, inputShapes: [[Int]]) throws(RuntimeError) {
        self.plan = plan
        self.inputShapes = inputShapes
        values = Array(repeating: nil, count: plan.valueNames.count)
        for (id, buffer) in plan.constants {
            let type = plan.valueTypes[id]
            values[id] = BoundValue(dataType: type.dataType, shape: type.shape ?? [], pointer: buffer.pointer)
        }
        for (input, shape) in zip(plan.inputs, inputShapes) {
            if let declared = input.declared.shape {
                guard declared.count == shape.count,
                    zip(declared, shape).allSatisfy({ $0 < 0 || $0 == $1 })
                else {
                    throw RuntimeError(
                        code: .invalidInput,
                        message: "input '\(input.name)' has shape \(shape); the model expects \(declared) (-1 = any)")
                }
            }
            values[input.value] = try allocate(input.declared.dataType, shape)
        }
        for node in plan.nodes {
            let inputs = node.inputs.map { $0 >= 0 ? values[$0] : nil }
            let inputTypes = inputs.map { $0.map { ValueType(dataType: $0.dataType, shape: $0.shape) } }
            do throws(RuntimeError) {
                let types = try node.op.inferTypes(inputTypes)
                var outputs: [BoundValue] = []
                for (position, id) in node.outputs.enumerated() {
                    let type = types[position]
                    guard type.isConcrete, let shape = type.shape else {
                        throw RuntimeError(code: .internalError, message: "output \(position) has no concrete shape (\(type))")
                    }
                    let value = try allocate(type.dataType, shape)
                    if id >= 0 { values[id] = value }
                    outputs.append(value)
                }
                kernels.append(try node.op.makeKernel(inputs: inputs, outputs: outputs, backend: plan.backend))
            } catch {
                let code: RuntimeError.Code = error.code == .invalidModel ? .invalidInput : error.code
                throw RuntimeError(
                    code: code,
                    message: "the inputs' shapes \(inputShapes) do not fit the model at \(node.label): \(error.message)")
            }
        }
    }

    /// The largest single buffer a binding may allocate (8 GiB): a bound on what a request's
    /// shapes can make the worker allocate.
    static let maximumTensorBytes = 8 << 30

    private func allocate(_ dataType: DataType, _ shape: [Int]) throws(RuntimeError) -> BoundValue {
        var bytes = dataType.byteSize ?? 0
        for dim in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= Self.maximumTensorBytes else {
                throw RuntimeError(
                    code: .invalidInput,
                    message: "a \(dataType.rawValue) tensor of shape \(shape) would need more than \(Self.maximumTensorBytes >> 30) GiB")
            }
            bytes = product
        }
        let buffer = TensorBuffer(byteCount: bytes)
        buffers.append(buffer)
        return BoundValue(dataType: dataType, shape: shape, pointer: buffer.pointer)
    }

    /// The memory of graph input `index` (in `plan.inputs` order), to copy a request into.
    func inputPointer(_ index: Int) -> UnsafeMutableRawPointer {
        values[plan.inputs[index].value]!.pointer
    }

    /// Runs every node once, in order.
    func run() {
        for kernel in kernels { kernel() }
    }

    /// Graph output `index` after `run()`, as a tensor (copies its bytes out).
    func output(_ index: Int) -> Tensor {
        let value = values[plan.outputs[index].value]!
        let count = value.elementCount * (value.dataType.byteSize ?? 0)
        let bytes = [UInt8](UnsafeRawBufferPointer(start: value.pointer, count: count))
        return Tensor(dataType: value.dataType, shape: value.shape, data: bytes)
    }
}

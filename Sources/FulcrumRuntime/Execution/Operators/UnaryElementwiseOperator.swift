import FulcrumKernels
import FulcrumSchema

/// Relu, Sigmoid, Tanh, Neg, Abs, Exp, Log, Sqrt, Erf and Gelu over FP32 (same shape in and out).
/// Gelu (opset 20) takes `approximate = "none" | "tanh"`; the registry picks the kind.
struct UnaryElementwiseOperator: Operator {
    let kind: UnaryOperator

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        return [x.withoutValues]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let input = UnsafePointer(inputs[0]!.floats())
        let out = outputs[0].floats()
        let count = outputs[0].elementCount
        let kind = self.kind
        return { backend.unary(kind, input, out, count: count) }
    }
}

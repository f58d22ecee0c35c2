import FulcrumKernels
import FulcrumSchema

/// LeakyRelu over FP32: `x < 0 ? alpha · x : x` (`alpha` default 0.01).
struct LeakyReluOperator: Operator {
    let alpha: Float

    init(attributes: NodeAttributes) throws(RuntimeError) {
        alpha = try attributes.float("alpha", default: 0.01)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        return [x.withoutValues]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let input = UnsafePointer(inputs[0]!.floats())
        let out = outputs[0].floats()
        let count = outputs[0].elementCount
        let alpha = self.alpha
        return { backend.leakyRelu(input, out, count: count, alpha: alpha) }
    }
}

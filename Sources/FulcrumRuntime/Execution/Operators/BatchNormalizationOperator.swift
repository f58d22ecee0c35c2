import FulcrumKernels
import FulcrumSchema

/// BatchNormalization in inference mode over FP32 `[N, C, ...]` with per-channel `scale`, `B`,
/// `input_mean` and `input_var`. `training_mode = 1` (opset 14+) and the training outputs are
/// refused.
struct BatchNormalizationOperator: Operator {
    let epsilon: Float

    init(attributes: NodeAttributes, outputCount: Int) throws(RuntimeError) {
        epsilon = try attributes.float("epsilon", default: 1e-5)
        guard try attributes.int("training_mode", default: 0) == 0, outputCount == 1 else {
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "BatchNormalization is supported in inference mode only (training_mode 0, one output)")
        }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        let channels = x.shape.flatMap { $0.count >= 2 ? $0[1] : nil }
        for (index, role) in ["scale", "B", "input_mean", "input_var"].enumerated() {
            let value = try required(inputs, index + 1, role)
            guard value.dataType == .fp32 else { throw failure("\(role) must be FP32") }
            if let channels, channels >= 0, let count = value.elementCount, count != channels {
                throw failure("\(role) has \(count) elements; X has \(channels) channels")
            }
        }
        if let shape = x.shape, shape.count < 2 { throw failure("X must have rank 2 or more, got \(shape)") }
        return [x.withoutValues]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (batch, channels) = (x.shape[0], x.shape[1])
        let spatial = x.shape[2...].reduce(1, *)
        let p = (1...4).map { UnsafePointer(inputs[$0]!.floats()) }
        let (input, out, epsilon) = (UnsafePointer(x.floats()), outputs[0].floats(), self.epsilon)
        return {
            backend.batchNormalization(
                input, out, batch: batch, channels: channels, spatial: spatial,
                scale: p[0], bias: p[1], mean: p[2], variance: p[3], epsilon: epsilon)
        }
    }
}

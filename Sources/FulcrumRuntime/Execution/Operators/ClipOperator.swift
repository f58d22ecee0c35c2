import FulcrumKernels
import FulcrumSchema

/// Clip over FP32. Before opset 11 the bounds are attributes `min`/`max`; from 11 they are
/// optional scalar inputs 1 and 2 (read per batch, so they may be computed). Missing bounds
/// are ±infinity.
struct ClipOperator: Operator {
    let attributeBounds: (low: Float, high: Float)?

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        if opset < 11 {
            attributeBounds = (try attributes.float("min", default: -.infinity), try attributes.float("max", default: .infinity))
        } else {
            attributeBounds = nil
        }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "input")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        for index in 1..<3 {
            if let bound = optional(inputs, index) {
                guard bound.dataType == .fp32 else { throw failure("bound \(index) must be FP32 like the input, got \(bound.dataType.rawValue)") }
                if let count = bound.elementCount, count != 1 { throw failure("bound \(index) must be a scalar, got shape \(bound.shape ?? [])") }
            }
        }
        return [x.withoutValues]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let input = UnsafePointer(inputs[0]!.floats())
        let out = outputs[0].floats()
        let count = outputs[0].elementCount
        if let attributeBounds {
            return { backend.clip(input, out, count: count, low: attributeBounds.low, high: attributeBounds.high) }
        }
        let low = inputs.count > 1 ? inputs[1].map { UnsafePointer($0.floats()) } : nil
        let high = inputs.count > 2 ? inputs[2].map { UnsafePointer($0.floats()) } : nil
        return {
            backend.clip(input, out, count: count, low: low?.pointee ?? -.infinity, high: high?.pointee ?? .infinity)
        }
    }
}

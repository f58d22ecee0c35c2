import FulcrumKernels
import FulcrumSchema

/// Shape: the input's dimensions as INT64 (from opset 15, the `start`..`end` part of them).
/// Reads only the input's shape, so the plan evaluates it once per bound shape, never per batch.
struct ShapeOperator: Operator {
    let start: Int
    let end: Int?

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        start = opset >= 15 ? try attributes.int("start", default: 0) : 0
        end = opset >= 15 && attributes.has("end") ? try attributes.int("end", default: 0) : nil
    }

    var readsOnlyShapes: Bool { true }

    private func range(rank: Int) -> Range<Int> {
        func clamp(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        let lower = clamp(start)
        let upper = clamp(end ?? rank)
        return lower..<max(lower, upper)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard let shape = x.shape else { return [ValueType(dataType: .int64, shape: [-1])] }
        let dims = Array(shape[range(rank: shape.count)])
        return [ValueType(dataType: .int64, shape: [dims.count], values: dims.allSatisfy { $0 >= 0 } ? dims : nil)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let shape = inputs[0]!.shape
        let dims = Array(shape[range(rank: shape.count)]).map { Int64($0) }
        let out = outputs[0].int64s()
        return {
            for (i, d) in dims.enumerated() { out[i] = d }
        }
    }
}

import FulcrumKernels
import FulcrumSchema

/// ReduceSum, ReduceMean and ReduceMax over FP32. `axes` is an attribute until the version that
/// moved it to input 1 (ReduceSum: opset 13; ReduceMean and ReduceMax: opset 18); with the
/// input form, `noop_with_empty_axes = 1` and no axes make the node an identity. No axes
/// otherwise reduces everything. `keepdims` (default 1) keeps reduced dimensions as 1.
struct ReduceOperator: Operator {
    let kind: ReductionOperator
    let keepDimensions: Bool
    let attributeAxes: [Int]?
    let axesFromInput: Bool
    let noopWithEmptyAxes: Bool

    init(kind: ReductionOperator, attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        self.kind = kind
        keepDimensions = try attributes.int("keepdims", default: 1) != 0
        axesFromInput = opset >= (kind == .sum ? 13 : 18)
        attributeAxes = axesFromInput ? nil : try attributes.ints("axes")
        let noop = try attributes.int("noop_with_empty_axes", default: 0) != 0
        noopWithEmptyAxes = axesFromInput && noop
    }

    /// Reduced axes (sorted); `[]` with noop means identity; `nil` while unknown.
    func reducedAxes(_ inputs: [ValueType?], rank: Int) throws(RuntimeError) -> [Int]? {
        var axes = attributeAxes
        if axesFromInput, let given = optional(inputs, 1) {
            guard let values = given.values else { return nil }
            axes = values
        }
        guard let axes, !axes.isEmpty else { return noopWithEmptyAxes ? [] : Array(0..<rank) }
        var result = Set<Int>()
        for axis in axes { result.insert(try resolveAxis(axis, rank: rank)) }
        return result.sorted()
    }

    private func outputShape(_ shape: [Int], _ axes: [Int]) -> [Int] {
        let set = Set(axes)
        return shape.enumerated().compactMap { set.contains($0.offset) ? (keepDimensions ? 1 : nil) : $0.element }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        guard let shape = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard let axes = try reducedAxes(inputs, rank: shape.count) else {
            return [ValueType(dataType: .fp32, shape: keepDimensions ? [Int](repeating: -1, count: shape.count) : nil)]
        }
        return [ValueType(dataType: .fp32, shape: outputShape(shape, axes))]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let types = inputs.map { $0.map { ValueType(dataType: $0.dataType, shape: $0.shape, values: $0.integers()) } }
        guard let axes = try reducedAxes(types, rank: x.shape.count) else { throw failure("the axes are not known") }
        let input = UnsafePointer(x.floats())
        let out = outputs[0].floats()
        if axes.isEmpty {
            let count = x.elementCount
            return { out.update(from: input, count: count) }
        }
        let set = Set(axes)
        let kept = x.shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
        let keptStrides = CopyLayout.contiguousStrides(kept)
        let destination = x.shape.indices.map { set.contains($0) ? 0 : keptStrides[$0] }
        let layout = CopyLayout(shape: x.shape, sourceStrides: CopyLayout.contiguousStrides(x.shape), destinationStrides: destination)
        let outputCount = outputs[0].elementCount
        let reducedCount = axes.map { x.shape[$0] }.reduce(1, *)
        let kind = self.kind
        return { backend.reduce(kind, input, out, layout: layout, outputCount: outputCount, reducedCount: reducedCount) }
    }
}

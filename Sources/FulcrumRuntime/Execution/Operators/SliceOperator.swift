import FulcrumKernels
import FulcrumSchema

/// Slice. Before opset 10 `starts`, `ends` and `axes` are attributes; from 10 they are inputs
/// (with optional `axes` and `steps`; negative steps walk backwards). Starts and ends are
/// clamped as the ONNX specification says, so `INT64_MAX` means "to the end". One strided copy.
struct SliceOperator: Operator {
    let attributeStarts: [Int]?
    let attributeEnds: [Int]?
    let attributeAxes: [Int]?
    let usesInputs: Bool

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        usesInputs = opset >= 10
        if usesInputs {
            (attributeStarts, attributeEnds, attributeAxes) = (nil, nil, nil)
        } else {
            guard let starts = try attributes.ints("starts"), let ends = try attributes.ints("ends") else {
                throw RuntimeError(code: .invalidModel, message: "attributes 'starts' and 'ends' are required before opset 10")
            }
            (attributeStarts, attributeEnds, attributeAxes) = (starts, ends, try attributes.ints("axes"))
        }
    }

    /// Per output dimension: (start, step, size); `nil` while the parameters are unknown.
    func plan(_ inputs: [ValueType?], shape: [Int]) throws(RuntimeError) -> [(start: Int, step: Int, size: Int)]? {
        let starts, ends: [Int]
        var axes: [Int]?
        var steps: [Int]?
        if usesInputs {
            guard let s = try required(inputs, 1, "starts").values, let e = try required(inputs, 2, "ends").values else { return nil }
            (starts, ends) = (s, e)
            if let a = optional(inputs, 3) {
                guard let values = a.values else { return nil }
                axes = values
            }
            if let t = optional(inputs, 4) {
                guard let values = t.values else { return nil }
                steps = values
            }
        } else {
            (starts, ends, axes) = (attributeStarts!, attributeEnds!, attributeAxes)
        }
        let axisList = axes ?? Array(0..<starts.count)
        let stepList = steps ?? [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, axisList.count == starts.count, stepList.count == starts.count else {
            throw failure("starts, ends, axes and steps must have the same length (\(starts.count), \(ends.count), \(axisList.count), \(stepList.count))")
        }
        var result = shape.map { (start: 0, step: 1, size: $0) }
        var seen = Set<Int>()
        for i in 0..<starts.count {
            let axis = try resolveAxis(axisList[i], rank: shape.count)
            guard seen.insert(axis).inserted else { throw failure("axis \(axis) is sliced twice") }
            let dim = shape[axis]
            guard dim >= 0 else { return nil }
            let step = stepList[i]
            guard step != 0 else { throw failure("a step is 0") }
            var start = starts[i] < 0 ? starts[i] &+ dim : starts[i]
            var end = ends[i] < 0 ? ends[i] &+ dim : ends[i]
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
            } else {
                start = min(max(start, 0), dim - 1)
                end = min(max(end, -1), dim - 1)
            }
            let size = step > 0 ? max(0, (end - start + step - 1) / step) : max(0, (start - end + (-step) - 1) / (-step))
            result[axis] = (start, step, size)
        }
        return result
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard x.dataType.byteSize != nil else { throw unsupported(x.dataType, "fixed-size types") }
        guard let shape = x.shape else { return [ValueType(dataType: x.dataType, shape: nil)] }
        guard let plan = try plan(inputs, shape: shape) else {
            return [ValueType(dataType: x.dataType, shape: [Int](repeating: -1, count: shape.count))]
        }
        let outShape = plan.map(\.size)
        var values: [Int]? = nil
        if shape.count == 1, let known = x.values {
            values = (0..<outShape[0]).map { known[plan[0].start + $0 * plan[0].step] }
        }
        return [ValueType(dataType: x.dataType, shape: outShape, values: values)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let types = inputs.map { $0.map { ValueType(dataType: $0.dataType, shape: $0.shape, values: $0.integers()) } }
        guard let plan = try plan(types, shape: x.shape) else { throw failure("the slice parameters are not known") }
        let strides = CopyLayout.contiguousStrides(x.shape)
        let size = x.dataType.byteSize ?? 1
        var offset = 0
        for (d, p) in plan.enumerated() where p.size > 0 { offset += p.start * strides[d] }
        let out = outputs[0]
        let layout = CopyLayout(
            shape: out.shape, sourceStrides: zip(strides, plan).map { $0 * $1.step },
            destinationStrides: CopyLayout.contiguousStrides(out.shape))
        let source = UnsafeRawPointer(x.pointer + offset * size)
        let destination = out.pointer
        return { backend.copy(layout, from: source, to: destination, elementSize: size) }
    }
}

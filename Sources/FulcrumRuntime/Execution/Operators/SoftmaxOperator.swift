import FulcrumKernels
import FulcrumSchema

/// Softmax (and LogSoftmax) over FP32.
///
/// Opset < 13: the input is flattened to 2-D at `axis` (default 1) and normalised over the
/// second dimension. Opset ≥ 13: normalised along the single dimension `axis` (default -1).
struct SoftmaxOperator: Operator {
    let axis: Int
    let flattens: Bool
    let logarithm: Bool

    init(attributes: NodeAttributes, opset: Int, logarithm: Bool) throws(RuntimeError) {
        flattens = opset < 13
        axis = try attributes.int("axis", default: opset < 13 ? 1 : -1)
        self.logarithm = logarithm
    }

    func resolvedAxis(rank: Int) throws(RuntimeError) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        // Opset < 13 allows axis == rank (flattening to [N, 1]).
        guard resolved >= 0, resolved < rank || (flattens && resolved == rank) else {
            throw failure("axis \(axis) is out of range for rank \(rank)")
        }
        return resolved
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "input")
        guard x.dataType == .fp32 else {
            throw RuntimeError(code: .unsupportedOperator, message: "type \(x.dataType.rawValue) is not supported (supported: FP32)")
        }
        if let shape = x.shape { _ = try resolvedAxis(rank: shape.count) }
        return [x]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let shape = inputs[0]!.shape
        let axis = try resolvedAxis(rank: shape.count)
        let outer = shape[..<axis].reduce(1, *)
        let length: Int
        let inner: Int
        if flattens {
            length = shape[axis...].reduce(1, *)
            inner = 1
        } else {
            length = shape[axis]
            inner = shape[(axis + 1)...].reduce(1, *)
        }
        let input = UnsafePointer(inputs[0]!.floats())
        let out = outputs[0].floats()
        let logarithm = self.logarithm
        return { backend.softmax(input, out, outer: outer, axis: length, inner: inner, logarithm: logarithm) }
    }
}

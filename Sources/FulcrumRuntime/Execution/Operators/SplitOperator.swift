import FulcrumKernels
import FulcrumSchema

/// Split along `axis` into the node's outputs. Sizes come from the `split` attribute before
/// opset 13, from the optional `split` input from 13, and from 18 may instead be given as
/// `num_outputs` (the last part smaller when the axis does not divide). Without either, parts
/// are equal.
struct SplitOperator: Operator {
    let axis: Int
    let outputCount: Int
    let attributeSplit: [Int]?
    let opset: Int

    init(attributes: NodeAttributes, opset: Int, outputCount: Int) throws(RuntimeError) {
        axis = try attributes.int("axis", default: 0)
        self.opset = opset
        attributeSplit = opset < 13 ? try attributes.ints("split") : nil
        if opset >= 18, attributes.has("num_outputs") {
            let n = try attributes.int("num_outputs", default: outputCount)
            guard n == outputCount else {
                throw RuntimeError(code: .invalidModel, message: "num_outputs is \(n) but the node has \(outputCount) outputs")
            }
        }
        self.outputCount = outputCount
    }

    private func sizes(_ inputs: [ValueType?], length: Int) throws(RuntimeError) -> [Int]? {
        var split = attributeSplit
        if opset >= 13, let given = optional(inputs, 1) {
            guard let values = given.values else { return nil }
            split = values
        }
        if let split {
            guard split.count == outputCount else { throw failure("split has \(split.count) sizes for \(outputCount) outputs") }
            guard length < 0 || split.reduce(0, +) == length, split.allSatisfy({ $0 >= 0 }) else {
                throw failure("split sizes \(split) do not add up to the axis length \(length)")
            }
            return split
        }
        guard length >= 0 else { return nil }
        let part = (length + outputCount - 1) / outputCount
        if opset >= 18 {
            return (0..<outputCount).map { max(0, min(part, length - $0 * part)) }
        }
        guard length % outputCount == 0 else { throw failure("axis length \(length) does not split into \(outputCount) equal parts") }
        return [Int](repeating: length / outputCount, count: outputCount)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "input")
        guard let shape = x.shape else { return Array(repeating: ValueType(dataType: x.dataType, shape: nil), count: outputCount) }
        let axis = try resolveAxis(self.axis, rank: shape.count)
        guard let sizes = try sizes(inputs, length: shape[axis]) else {
            var unknown = shape
            unknown[axis] = -1
            return Array(repeating: ValueType(dataType: x.dataType, shape: unknown), count: outputCount)
        }
        return sizes.map { size in
            var s = shape
            s[axis] = size
            return ValueType(dataType: x.dataType, shape: s)
        }
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let axis = try resolveAxis(self.axis, rank: x.shape.count)
        let size = x.dataType.byteSize ?? 1
        let strides = CopyLayout.contiguousStrides(x.shape)
        var copies: [(layout: CopyLayout, source: UnsafeRawPointer, destination: UnsafeMutableRawPointer)] = []
        var offset = 0
        for out in outputs {
            let layout = CopyLayout(shape: out.shape, sourceStrides: strides, destinationStrides: CopyLayout.contiguousStrides(out.shape))
            copies.append((layout, UnsafeRawPointer(x.pointer + offset * strides[axis] * size), out.pointer))
            offset += out.shape[axis]
        }
        return {
            for copy in copies { backend.copy(copy.layout, from: copy.source, to: copy.destination, elementSize: size) }
        }
    }
}

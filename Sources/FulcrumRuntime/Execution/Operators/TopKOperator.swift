import FulcrumKernels
import FulcrumSchema

/// TopK over FP32 along `axis` (default -1): the `k` largest (or, from opset 11, smallest with
/// `largest = 0`) values and their INT64 indices, sorted; equal values keep index order. `k`
/// is an attribute before opset 10 and input 1 (a known INT64 scalar or `[1]`) from 10.
struct TopKOperator: Operator {
    let axis: Int
    let largest: Bool
    let attributeK: Int?

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        axis = try attributes.int("axis", default: -1)
        let largest = try attributes.int("largest", default: 1) != 0
        self.largest = opset < 11 || largest
        attributeK = opset < 10 ? try attributes.int("k", default: -1) : nil
    }

    private func k(_ inputs: [ValueType?]) throws(RuntimeError) -> Int? {
        if let attributeK { return attributeK }
        let given = try required(inputs, 1, "K")
        guard given.dataType == .int64 else { throw failure("K must be INT64, got \(given.dataType.rawValue)") }
        guard let values = given.values else { return nil }
        guard values.count == 1 else { throw failure("K must have one element, has \(values.count)") }
        return values[0]
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        guard var shape = x.shape else { return [ValueType(dataType: .fp32, shape: nil), ValueType(dataType: .int64, shape: nil)] }
        let a = try resolveAxis(axis, rank: shape.count)
        if let k = try k(inputs) {
            guard k >= 0, shape[a] < 0 || k <= shape[a] else { throw failure("K = \(k) is out of range for an axis of \(shape[a])") }
            shape[a] = k
        } else {
            shape[a] = -1
        }
        return [ValueType(dataType: .fp32, shape: shape), ValueType(dataType: .int64, shape: shape)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let a = try resolveAxis(axis, rank: x.shape.count)
        let (outer, length, inner) = (x.shape[..<a].reduce(1, *), x.shape[a], x.shape[(a + 1)...].reduce(1, *))
        let k = outputs[0].shape[a]
        let input = UnsafePointer(x.floats())
        let values = outputs[0].floats()
        let indices = outputs.count > 1 ? outputs[1].int64s() : nil
        let largest = self.largest
        let scratch = TensorBuffer(byteCount: max(length, 1) * MemoryLayout<Int>.stride)
        return {
            let order = scratch.pointer.assumingMemoryBound(to: Int.self)
            var buffer = UnsafeMutableBufferPointer(start: order, count: length)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * length * inner + j
                    for i in 0..<length { order[i] = i }
                    buffer.sort { p, q in
                        let (vp, vq) = (input[base + p * inner], input[base + q * inner])
                        if vp == vq { return p < q }
                        return largest ? vp > vq : vp < vq
                    }
                    for r in 0..<k {
                        let target = o * k * inner + r * inner + j
                        values[target] = input[base + order[r] * inner]
                        indices?[target] = Int64(order[r])
                    }
                }
            }
        }
    }
}

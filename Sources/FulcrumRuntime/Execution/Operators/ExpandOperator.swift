import FulcrumKernels
import FulcrumSchema

/// Expand: broadcast the input to `shape` (input 1, INT64), numpy-style in both directions.
struct ExpandOperator: Operator {
    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "input")
        let shape = try required(inputs, 1, "shape")
        guard x.dataType.byteSize != nil else { throw unsupported(x.dataType, "fixed-size types") }
        guard shape.dataType == .int64 else { throw failure("shape must be INT64, got \(shape.dataType.rawValue)") }
        guard let target = shape.values, let xs = x.shape else {
            let rank = shape.shape?.first.flatMap { $0 >= 0 ? $0 : nil }
            return [ValueType(dataType: x.dataType, shape: rank.map { [Int](repeating: -1, count: max($0, x.rank ?? 0)) })]
        }
        guard let out = BroadcastLayout.broadcastShape(xs, target) else { throw failure("input \(xs) does not broadcast to \(target)") }
        return [ValueType(dataType: x.dataType, shape: out)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let out = outputs[0]
        let layout = CopyLayout(
            shape: out.shape, sourceStrides: WhereOperator.broadcastStrides(x.shape, to: out.shape),
            destinationStrides: CopyLayout.contiguousStrides(out.shape))
        let (source, destination, size) = (UnsafeRawPointer(x.pointer), out.pointer, x.dataType.byteSize ?? 1)
        return { backend.copy(layout, from: source, to: destination, elementSize: size) }
    }
}

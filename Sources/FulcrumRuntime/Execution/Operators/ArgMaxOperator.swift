import FulcrumKernels
import FulcrumSchema

/// ArgMax over FP32 along `axis` (default 0), INT64 indices; `keepdims` (default 1) and, from
/// opset 12, `select_last_index` for ties.
struct ArgMaxOperator: Operator {
    let axis: Int
    let keepDimensions: Bool
    let selectLastIndex: Bool

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        axis = try attributes.int("axis", default: 0)
        keepDimensions = try attributes.int("keepdims", default: 1) != 0
        let last = try attributes.int("select_last_index", default: 0) != 0
        selectLastIndex = opset >= 12 && last
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        guard var shape = x.shape else { return [ValueType(dataType: .int64, shape: nil)] }
        let a = try resolveAxis(axis, rank: shape.count)
        if keepDimensions { shape[a] = 1 } else { shape.remove(at: a) }
        return [ValueType(dataType: .int64, shape: shape)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let a = try resolveAxis(axis, rank: x.shape.count)
        let (outer, length, inner) = (x.shape[..<a].reduce(1, *), x.shape[a], x.shape[(a + 1)...].reduce(1, *))
        let (input, out, last) = (UnsafePointer(x.floats()), outputs[0].int64s(), selectLastIndex)
        return { backend.argExtremum(input, out, outer: outer, axis: length, inner: inner, largest: true, selectLastIndex: last) }
    }
}

import FulcrumKernels
import FulcrumSchema

/// Gather along `axis`: output = data[..., indices, ...] with INT64 or INT32 indices (negative
/// counts from the end). An index out of range fails the batch with `.invalidInput` (checked
/// per element; the copy of each slice is one `memcpy`). This is the embedding lookup.
struct GatherOperator: Operator {
    let axis: Int

    init(attributes: NodeAttributes) throws(RuntimeError) {
        axis = try attributes.int("axis", default: 0)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let data = try required(inputs, 0, "data")
        let indices = try required(inputs, 1, "indices")
        guard data.dataType.byteSize != nil else { throw unsupported(data.dataType, "fixed-size types") }
        guard indices.dataType == .int64 || indices.dataType == .int32 else {
            throw failure("indices must be INT64 or INT32, got \(indices.dataType.rawValue)")
        }
        guard let ds = data.shape, let ishape = indices.shape else { return [ValueType(dataType: data.dataType, shape: nil)] }
        let axis = try resolveAxis(self.axis, rank: ds.count)
        let shape = Array(ds[..<axis]) + ishape + Array(ds[(axis + 1)...])
        var values: [Int]? = nil
        if ds.count == 1, let known = data.values, let picks = indices.values {
            values = []
            for pick in picks {
                let resolved = pick < 0 ? pick + known.count : pick
                guard resolved >= 0, resolved < known.count else { throw failure("index \(pick) is out of range for axis of size \(known.count)") }
                values!.append(known[resolved])
            }
        }
        return [ValueType(dataType: data.dataType, shape: shape, values: values)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let data = inputs[0]!
        let indices = inputs[1]!
        let axis = try resolveAxis(self.axis, rank: data.shape.count)
        let size = data.dataType.byteSize ?? 1
        let outer = data.shape[..<axis].reduce(1, *)
        let length = data.shape[axis]
        let sliceBytes = data.shape[(axis + 1)...].reduce(1, *) * size
        let count = indices.elementCount
        let source = UnsafeRawPointer(data.pointer)
        let out = outputs[0].pointer
        let wide = indices.dataType == .int64
        let pointer = UnsafeRawPointer(indices.pointer)
        return { () throws(RuntimeError) in
            for j in 0..<count {
                let raw = wide ? Int(pointer.load(fromByteOffset: j * 8, as: Int64.self)) : Int(pointer.load(fromByteOffset: j * 4, as: Int32.self))
                let index = raw < 0 ? raw + length : raw
                guard index >= 0, index < length else {
                    throw RuntimeError(code: .invalidInput, message: "Gather index \(raw) is out of range for an axis of size \(length)")
                }
                for o in 0..<outer {
                    (out + (o * count + j) * sliceBytes).copyMemory(from: source + (o * length + index) * sliceBytes, byteCount: sliceBytes)
                }
            }
        }
    }
}

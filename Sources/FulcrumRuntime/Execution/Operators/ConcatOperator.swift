import FulcrumKernels
import FulcrumSchema

/// Concat along `axis` (negative from the end) of inputs of one fixed-size type whose other
/// dimensions agree. Each input is one strided copy into its slab of the output.
struct ConcatOperator: Operator {
    let axis: Int

    init(attributes: NodeAttributes) throws(RuntimeError) {
        guard attributes.has("axis") else { throw RuntimeError(code: .invalidModel, message: "attribute 'axis' is required") }
        axis = try attributes.int("axis", default: 0)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        guard !inputs.isEmpty else { throw failure("Concat needs at least one input") }
        var types: [ValueType] = []
        for index in inputs.indices { types.append(try required(inputs, index, "input")) }
        let dataType = types[0].dataType
        guard dataType.byteSize != nil, types.allSatisfy({ $0.dataType == dataType }) else {
            throw failure("inputs must share one fixed-size type, got \(types.map(\.dataType.rawValue))")
        }
        guard let rank = types.compactMap(\.rank).first else { return [ValueType(dataType: dataType, shape: nil)] }
        let axis = try resolveAxis(self.axis, rank: rank)
        var shape = [Int](repeating: -1, count: rank)
        var total = 0
        for type in types {
            guard let s = type.shape else {
                total = -1
                continue
            }
            guard s.count == rank else { throw failure("inputs have ranks \(types.map { $0.rank ?? -1 }); they must agree") }
            for d in 0..<rank where d != axis && s[d] >= 0 {
                guard shape[d] < 0 || shape[d] == s[d] else {
                    throw failure("inputs differ in dimension \(d) (\(shape[d]) and \(s[d])); only axis \(axis) may differ")
                }
                shape[d] = s[d]
            }
            total = (total < 0 || s[axis] < 0) ? -1 : total + s[axis]
        }
        shape[axis] = total
        // Known small integer values concatenate too (shape vectors).
        var values: [Int]? = nil
        if rank == 1, types.allSatisfy({ $0.values != nil }) { values = types.flatMap { $0.values! } }
        return [ValueType(dataType: dataType, shape: shape, values: values)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let out = outputs[0]
        let axis = try resolveAxis(self.axis, rank: out.shape.count)
        let size = out.dataType.byteSize ?? 1
        let outStrides = CopyLayout.contiguousStrides(out.shape)
        var copies: [(layout: CopyLayout, source: UnsafeRawPointer, destination: UnsafeMutableRawPointer)] = []
        var offset = 0
        for input in inputs {
            let input = input!
            let layout = CopyLayout(shape: input.shape, sourceStrides: CopyLayout.contiguousStrides(input.shape), destinationStrides: outStrides)
            copies.append((layout, UnsafeRawPointer(input.pointer), out.pointer + offset * outStrides[axis] * size))
            offset += input.shape[axis]
        }
        return {
            for copy in copies { backend.copy(copy.layout, from: copy.source, to: copy.destination, elementSize: size) }
        }
    }
}

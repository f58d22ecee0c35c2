import FulcrumKernels
import FulcrumSchema

/// Transpose by `perm` (default: reverse the dimensions): one strided copy.
struct TransposeOperator: Operator {
    let permutation: [Int]?

    init(attributes: NodeAttributes) throws(RuntimeError) {
        permutation = try attributes.ints("perm")
    }

    /// `perm`, or the reversed dimensions when absent, checked against `rank`.
    func resolved(rank: Int) throws(RuntimeError) -> [Int] {
        let perm = permutation ?? Array((0..<rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0..<rank) else {
            throw failure("perm \(perm) is not a permutation of the \(rank) dimensions")
        }
        return perm
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard x.dataType.byteSize != nil else { throw unsupported(x.dataType, "fixed-size types") }
        guard let shape = x.shape else { return [ValueType(dataType: x.dataType, shape: permutation.map { $0.map { _ in -1 } })] }
        return [ValueType(dataType: x.dataType, shape: try resolved(rank: shape.count).map { shape[$0] })]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let perm = try resolved(rank: x.shape.count)
        let strides = CopyLayout.contiguousStrides(x.shape)
        let out = outputs[0]
        let layout = CopyLayout(
            shape: out.shape, sourceStrides: perm.map { strides[$0] }, destinationStrides: CopyLayout.contiguousStrides(out.shape))
        let (source, destination, size) = (UnsafeRawPointer(x.pointer), out.pointer, x.dataType.byteSize ?? 1)
        return { backend.copy(layout, from: source, to: destination, elementSize: size) }
    }
}

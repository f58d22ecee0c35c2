import FulcrumKernels

/// Weights packed once at load for Fulcrum's microkernels (`CPUBackend+PackedGEMM`), on a CPU
/// target when the CPU has them (`Microkernels.current`):
///
/// - `MatMul(X, W)` (fused or not) with a constant 2-D `W`: `W` packed as the right operand;
/// - `Gemm` with a constant `B`, `alpha` 1, `A` not transposed and `beta` 1 (or no `C`): `op(B)`
///   packed as the right operand;
/// - `Conv` with constant weights, except depthwise: each group's `[M/group, C/group·kH·kW]`
///   filter matrix packed as the left operand of the im2col product.
///
/// The packed copies are shared by every instance and binding of the plan; a product whose
/// bound shape does not fit them uses OpenBLAS.
extension ExecutionPlan {
    mutating func packWeights() {
        guard case .cpu = target, Microkernels.current != .off else { return }
        for index in nodes.indices {
            let node = nodes[index]
            func constant(_ position: Int) -> (buffer: TensorBuffer, shape: [Int])? {
                guard position < node.inputs.count, node.inputs[position] >= 0, let buffer = constants[node.inputs[position]],
                    let shape = valueTypes[node.inputs[position]].shape, shape.allSatisfy({ $0 >= 0 })
                else { return nil }
                return (buffer, shape)
            }
            let floats = { (buffer: TensorBuffer) in UnsafePointer(buffer.pointer.assumingMemoryBound(to: Float.self)) }
            if var op = node.op as? MatMulOperator {
                guard let (w, shape) = constant(1), shape.count == 2 else { continue }
                op.packed = backend.packRight(k: shape[0], n: shape[1], b: floats(w), rowStride: shape[1], columnStride: 1)
                nodes[index].op = op
            } else if var op = node.op as? GemmOperator {
                guard let (b, shape) = constant(1), shape.count == 2, op.alpha == 1, !op.transposeA,
                    op.beta == 1 || node.inputs.count < 3 || node.inputs[2] < 0
                else { continue }
                op.packed = op.transposeB
                    ? backend.packRight(k: shape[1], n: shape[0], b: floats(b), rowStride: 1, columnStride: shape[1])
                    : backend.packRight(k: shape[0], n: shape[1], b: floats(b), rowStride: shape[1], columnStride: 1)
                nodes[index].op = op
            } else if var op = node.op as? ConvOperator {
                guard let (w, shape) = constant(1), shape.count == 4, shape[0] % op.groups == 0 else { continue }
                let perGroup = shape[0] / op.groups
                let (k, kOverflow) = shape[1].multipliedReportingOverflow(by: shape[2] * shape[3])
                // Depthwise convolutions keep their direct loop.
                guard !kOverflow, !(perGroup == 1 && shape[1] == 1 && op.groups > 1) else { continue }
                var packed: [PackedMatrix] = []
                for group in 0..<op.groups {
                    guard let matrix = backend.packLeft(m: perGroup, k: k, a: floats(w) + group * perGroup * k, lda: k) else { break }
                    packed.append(matrix)
                }
                guard packed.count == op.groups else { continue }
                op.packedWeights = packed
                nodes[index].op = op
            }
        }
    }
}

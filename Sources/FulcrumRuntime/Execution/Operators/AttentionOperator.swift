import FulcrumKernels
import FulcrumSchema

/// Scaled dot-product attention, fused at load (`ExecutionPlan.fuse`) from the form exporters
/// write:
///
///     [Transpose →] Q ─┐
///                      MatMul → [Mul|Div by a constant scalar] → [Add mask] → Softmax(last axis)
///     [Transpose →] Kᵀ ┘                                                        │
///     [Transpose →] V ───────────────────────────────────────────────────── MatMul → [Transpose]
///
/// Inputs: 0 Q, 1 K, 2 V (before the absorbed Transposes, if any), 3 the scale constant
/// (optional), 4 the additive mask (optional). One output: the context (after the absorbed
/// output Transpose, if any).
///
/// The kernel (`CPUBackend.attention`) runs per batch matrix (batch × heads): Q·Kᵀ with the
/// scale as `sgemm`'s alpha into a small scratch block, mask and softmax on those rows while
/// they are in cache, then ·V straight into the output. The Transposes cost nothing: the
/// kernel reads Q, K, V and writes the context through strides. The scores tensors
/// (`batch · heads · Sq · Sk` floats each, several per layer) never exist.
///
/// The original operators are kept as `steps` and define the node's shapes (`inferTypes` runs
/// them in order), so the fused node accepts and refuses exactly what the unfused ones would.
/// A bound shape the kernel cannot address (a mask that widens the scores, a softmax over
/// another axis, strides BLAS cannot read) runs the steps one after another instead, with
/// private buffers for the intermediates.
struct AttentionOperator: Operator {
    /// Where a step's input comes from.
    enum Source: Sendable {
        /// The fused node's input at this index.
        case input(Int)
        /// Output 0 of an earlier step.
        case step(Int)
    }

    /// One of the fused nodes.
    struct Step: Sendable {
        var op: any Operator
        var sources: [Source]
    }

    /// The fused nodes in graph order; the last one produces the output.
    let steps: [Step]
    /// Transposes absorbed before Q, K and V, and after the context.
    let queryTranspose: TransposeOperator?
    let keyTranspose: TransposeOperator?
    let valueTranspose: TransposeOperator?
    let outputTranspose: TransposeOperator?
    /// Whether the scores are divided (not multiplied) by input 3.
    let dividesByScale: Bool
    /// Positions in `steps` of the scores MatMul, the scaling node (if any), the mask Add (if
    /// any), the Softmax and the context MatMul.
    let scoresStep: Int
    let scaleStep: Int?
    let maskStep: Int?
    let softmaxStep: Int
    let contextStep: Int

    static let queryInput = 0, keyInput = 1, valueInput = 2, scaleInput = 3, maskInput = 4

    /// Every step's output type, in order.
    private func stepTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        var types: [ValueType] = []
        for step in steps {
            let stepInputs = step.sources.map { source -> ValueType? in
                switch source {
                case .input(let index): index < inputs.count ? inputs[index] : nil
                case .step(let index): types[index]
                }
            }
            types.append(try step.op.inferTypes(stepInputs)[0])
        }
        return types
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        [try stepTypes(inputs).last!]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let types = try stepTypes(inputs.map { $0.map { ValueType(dataType: $0.dataType, shape: $0.shape) } })
        if let kernel = try fusedKernel(inputs: inputs, output: outputs[0], types: types, backend: backend) {
            return kernel
        }
        return try stepwiseKernel(inputs: inputs, output: outputs[0], types: types, backend: backend)
    }

    /// A tensor operand seen through an optional transpose: its logical shape and the strides
    /// (in elements) of each logical dimension in the stored tensor.
    private func view(_ shape: [Int], _ transpose: TransposeOperator?) throws(RuntimeError) -> (shape: [Int], strides: [Int]) {
        let strides = CopyLayout.contiguousStrides(shape)
        guard let transpose else { return (shape, strides) }
        let perm = try transpose.resolved(rank: shape.count)
        return (perm.map { shape[$0] }, perm.map { strides[$0] })
    }

    /// The fused kernel, or `nil` when these shapes need the stepwise path.
    private func fusedKernel(inputs: [BoundValue?], output: BoundValue, types: [ValueType], backend: CPUBackend) throws(RuntimeError) -> Kernel? {
        guard let query = inputs[Self.queryInput], let key = inputs[Self.keyInput], let value = inputs[Self.valueInput],
            let scoresShape = types[scoresStep].shape
        else { return nil }
        let q = try view(query.shape, queryTranspose)
        let kt = try view(key.shape, keyTranspose)
        let v = try view(value.shape, valueTranspose)
        let rank = scoresShape.count
        guard rank >= 2, q.shape.count == rank, kt.shape.count == rank, v.shape.count == rank else { return nil }
        // Scaling, masking and softmax keep the scores' shape and work along the last axis.
        for step in [scaleStep, maskStep, softmaxStep].compactMap({ $0 }) where types[step].shape != scoresShape {
            return nil
        }
        guard let softmax = steps[softmaxStep].op as? SoftmaxOperator, !softmax.logarithm else { return nil }
        let axis = softmax.axis < 0 ? softmax.axis + rank : softmax.axis
        guard axis == rank - 1 else { return nil }

        let batch = Array(scoresShape.prefix(rank - 2))
        let (sq, sk) = (scoresShape[rank - 2], scoresShape[rank - 1])
        let d = q.shape[rank - 1]
        let dv = v.shape[rank - 1]
        guard kt.shape[rank - 1] == sk, kt.shape[rank - 2] == d, v.shape[rank - 2] == sk,
            let contextShape = types[contextStep].shape, contextShape == batch + [sq, dv]
        else { return nil }

        // The context as stored in the output (through the absorbed output Transpose).
        var contextStrides = CopyLayout.contiguousStrides(output.shape)
        if let outputTranspose {
            let perm = try outputTranspose.resolved(rank: rank)
            var strides = [Int](repeating: 0, count: rank)
            for (outputAxis, contextAxis) in perm.enumerated() { strides[contextAxis] = contextStrides[outputAxis] }
            contextStrides = strides
        }
        guard dv <= 1 || contextStrides[rank - 1] == 1 else { return nil }

        // Batch strides, 0 where an operand broadcasts.
        func batchStrides(_ shape: [Int], _ strides: [Int]) -> [Int]? {
            var result: [Int] = []
            for (index, size) in batch.enumerated() {
                if shape[index] == size {
                    result.append(size == 1 ? 0 : strides[index])
                } else if shape[index] == 1 {
                    result.append(0)
                } else {
                    return nil
                }
            }
            return result
        }
        guard let qBatch = batchStrides(q.shape, q.strides), let kBatch = batchStrides(kt.shape, kt.strides),
            let vBatch = batchStrides(v.shape, v.strides)
        else { return nil }
        let qMatrix = MatrixStrides(row: q.strides[rank - 2], column: q.strides[rank - 1])
        let kMatrix = MatrixStrides(row: kt.strides[rank - 1], column: kt.strides[rank - 2])  // K is Sk × D
        let vMatrix = MatrixStrides(row: v.strides[rank - 2], column: v.strides[rank - 1])
        guard qMatrix.blasOperand(rows: sq, columns: d) != nil, kMatrix.blasOperand(rows: sk, columns: d) != nil,
            vMatrix.blasOperand(rows: sk, columns: dv) != nil
        else { return nil }

        // The mask, broadcast to the scores (it may not widen them: checked above).
        var maskPointer: UnsafePointer<Float>?
        var maskBatch = [Int](repeating: 0, count: batch.count)
        var maskMatrix = MatrixStrides(row: 0, column: 0)
        if maskStep != nil {
            guard let mask = inputs[Self.maskInput], mask.dataType == .fp32, mask.shape.count <= rank else { return nil }
            let padded = [Int](repeating: 1, count: rank - mask.shape.count) + mask.shape
            let strides = CopyLayout.contiguousStrides(padded)
            guard let b = batchStrides(padded, strides) else { return nil }
            maskBatch = b
            maskMatrix = MatrixStrides(row: padded[rank - 2] == 1 ? 0 : strides[rank - 2], column: padded[rank - 1] == 1 ? 0 : 1)
            maskPointer = UnsafePointer(mask.floats())
        }

        var scale: Float = 1
        if scaleStep != nil {
            guard let constant = inputs[Self.scaleInput], constant.dataType == .fp32, constant.elementCount == 1 else { return nil }
            let c = constant.floats()[0]
            scale = dividesByScale ? 1 / c : c
        }

        // Offsets of every batch matrix, once per bound shape.
        let count = batch.reduce(1, *)
        var offsets: [Int] = []
        offsets.reserveCapacity(count * 5)
        var coordinate = [Int](repeating: 0, count: batch.count)
        for _ in 0..<count {
            var (qo, ko, vo, mo, oo) = (0, 0, 0, 0, 0)
            for (axis, index) in coordinate.enumerated() {
                qo += index * qBatch[axis]
                ko += index * kBatch[axis]
                vo += index * vBatch[axis]
                mo += index * maskBatch[axis]
                oo += index * contextStrides[axis]
            }
            offsets += [qo, ko, vo, mo, oo]
            var axis = batch.count - 1
            while axis >= 0 {
                coordinate[axis] += 1
                if coordinate[axis] < batch[axis] { break }
                coordinate[axis] = 0
                axis -= 1
            }
        }

        // Scores of up to 16 Ki floats (64 KiB) at a time: they stay in L2 between the products.
        let scratchRows = max(1, min(sq, 16384 / max(sk, 1)))
        // Heads run in parallel on the products' threads (up to one part per processor), each
        // part with its own scores block and its own packed Kᵀ and V (none: OpenBLAS products).
        let parts = max(1, min(count, BLASThreading.processorCount))
        let scoresFloats = scratchRows * max(sk, 1)
        let scratch = TensorBuffer(byteCount: parts * scoresFloats * 4)
        let packingFloats = CPUBackend.attentionPackingFloats(keyLength: sk, headSize: d, valueSize: dv)
        let packing = packingFloats > 0 && packingFloats <= ConvOperator.maximumScratchFloats / parts
            ? TensorBuffer(byteCount: parts * packingFloats * 4) : nil
        let (pq, pk, pv, po) = (UnsafePointer(query.floats()), UnsafePointer(key.floats()), UnsafePointer(value.floats()), output.floats())
        let outputRowStride = sq <= 1 ? max(dv, 1) : contextStrides[rank - 2]
        let matrices = (qMatrix, kMatrix, vMatrix, maskMatrix)
        return {
            let scoresBase = scratch.pointer.assumingMemoryBound(to: Float.self)
            let packingBase = packing.map { $0.pointer.assumingMemoryBound(to: Float.self) }
            CPUBackend.parallelFor(count: count, parts: parts) { part, heads in
                for head in heads {
                    let index = head * 5
                    backend.attention(
                        query: pq + offsets[index], matrices.0, key: pk + offsets[index + 1], matrices.1,
                        value: pv + offsets[index + 2], matrices.2, mask: maskPointer.map { $0 + offsets[index + 3] }, matrices.3,
                        output: po + offsets[index + 4], outputRowStride: outputRowStride,
                        queryLength: sq, keyLength: sk, headSize: d, valueSize: dv, scale: scale,
                        scratch: scoresBase + part * scoresFloats, scratchRows: scratchRows,
                        packing: packingBase.map { $0 + part * packingFloats })
                }
            }
        }
    }

    /// The unfused operators one after another, intermediates in private buffers.
    private func stepwiseKernel(inputs: [BoundValue?], output: BoundValue, types: [ValueType], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        var buffers: [TensorBuffer] = []
        var values: [BoundValue] = []
        var kernels: [Kernel] = []
        for (index, step) in steps.enumerated() {
            let result: BoundValue
            if index == steps.count - 1 {
                result = output
            } else {
                let type = types[index]
                let buffer = TensorBuffer(byteCount: try BoundPlan.byteCount(type.dataType, type.shape ?? []))
                buffers.append(buffer)
                result = BoundValue(dataType: type.dataType, shape: type.shape ?? [], pointer: buffer.pointer)
            }
            let stepInputs = step.sources.map { source -> BoundValue? in
                switch source {
                case .input(let position): position < inputs.count ? inputs[position] : nil
                case .step(let position): values[position]
                }
            }
            kernels.append(try step.op.makeKernel(inputs: stepInputs, outputs: [result], backend: backend))
            values.append(result)
        }
        return {
            withExtendedLifetime(buffers) {}
            for kernel in kernels { try kernel() }
        }
    }
}

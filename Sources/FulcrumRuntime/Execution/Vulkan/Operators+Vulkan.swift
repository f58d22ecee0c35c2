import FulcrumKernels
import FulcrumSchema

// How each operator records its per-batch work on a Vulkan device (see `DeviceOperator`). The
// semantics are the CPU kernels'; every lowering is checked against them by the whole-model
// conformance tests (Tests/FulcrumRuntimeTests/VulkanModelTests.swift).

extension Operator {
    /// `.unsupportedOperator` naming what the Vulkan backend lacks.
    func deviceLacks(_ what: String) -> RuntimeError {
        RuntimeError(code: .unsupportedOperator, message: "the vulkan backend has no kernel for \(what)")
    }

    /// The device element type of `value`, or the refusal naming it.
    func elementType(_ value: DeviceValue) throws(RuntimeError) -> VulkanElementType {
        guard let type = value.elementType else { throw deviceLacks("\(value.dataType.rawValue) tensors") }
        return type
    }

    /// Records a strided copy of `value` elements (Transpose, Slice, Expand, Concat, Split).
    func recordCopy(
        _ source: DeviceValue, sourceOffset: Int = 0, to destination: DeviceValue, destinationOffset: Int = 0,
        layout: CopyLayout, on recorder: DeviceRecorder
    ) throws(RuntimeError) {
        let words = try elementType(source).words
        try recorder.record {
            try $0.copy(
                source.buffer, sourceOffset: sourceOffset, to: destination.buffer, destinationOffset: destinationOffset,
                layout: layout, wordsPerElement: words)
        }
    }
}

extension BinaryElementwiseOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (a, b) = (inputs[0]!, inputs[1]!)
        guard let layout = BroadcastLayout(a.shape, b.shape) else { throw failure("shapes \(a.shape) and \(b.shape) do not broadcast") }
        let type = try elementType(a)
        guard type == .float32 || type == .int32 else { throw deviceLacks("\(kind) on \(a.dataType.rawValue)") }
        try recorder.record { try $0.binary(kind, a.buffer, b.buffer, outputs[0].buffer, layout: layout, elementType: type) }
    }
}

extension UnaryElementwiseOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        try recorder.record { try $0.unary(kind, inputs[0]!.buffer, outputs[0].buffer, count: outputs[0].elementCount) }
    }
}

extension LeakyReluOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        try recorder.record { try $0.leakyRelu(inputs[0]!.buffer, outputs[0].buffer, count: outputs[0].elementCount, alpha: alpha) }
    }
}

extension ClipOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        var (low, high) = attributeBounds ?? (-Float.infinity, Float.infinity)
        if attributeBounds == nil {
            for (index, bound) in inputs.enumerated().dropFirst() {
                guard let bound else { continue }
                guard let host = bound.host else { throw deviceLacks("Clip with bounds computed per batch") }
                let value = host.floats().pointee
                if index == 1 { low = value } else { high = value }
            }
        }
        try recorder.record { try $0.clip(inputs[0]!.buffer, outputs[0].buffer, count: outputs[0].elementCount, low: low, high: high) }
    }
}

extension GemmOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (a, b, y) = (inputs[0]!, inputs[1]!, outputs[0])
        let (m, n, k) = try dimensions(a.shape, b.shape)
        var beta = self.beta
        var bias: VulkanBuffer?
        if inputs.count > 2, let c = inputs[2], beta != 0 {
            let rows = c.shape.count == 2 ? c.shape[0] : 1
            let columns = c.shape.last ?? 1
            guard rows == m || rows == 1, columns == n || columns == 1 else {
                throw failure("C\(c.shape) does not broadcast to [M, N] = [\(m), \(n)]")
            }
            if beta == 1, rows == 1, columns == n {
                bias = c.buffer
                beta = 0
            } else {
                // C broadcast into Y, then Y = alpha·A·B + beta·Y.
                let layout = CopyLayout(shape: [m, n], sourceStrides: [rows == 1 ? 0 : columns, columns == 1 ? 0 : 1], destinationStrides: [n, 1])
                try recordCopy(c, to: y, layout: layout, on: recorder)
            }
        } else {
            beta = 0
        }
        try recorder.record {
            try $0.sgemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: a.buffer, lda: a.shape[1], b: b.buffer, ldb: b.shape[1], beta: beta, c: y.buffer, ldc: n,
                bias: bias, activation: activation)
        }
    }
}

extension MatMulOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (a, b, y) = (inputs[0]!, inputs[1]!, outputs[0])
        let s = try shapes(a.shape, b.shape)
        let (m, n, k) = (s.m, s.n, s.k)
        var biasBuffer: VulkanBuffer?
        if bias {
            guard inputs.count > 2, let c = inputs[2], c.elementCount == n else { throw failure("the fused bias must have \(n) elements") }
            biasBuffer = c.buffer
        }
        let batchCount = s.batch.reduce(1, *)
        let countA = s.batchA.reduce(1, *)
        let countB = s.batchB.reduce(1, *)
        let rank = s.batch.count
        let pad = { (shape: [Int]) in [Int](repeating: 1, count: rank - shape.count) + shape }
        var (rows, batch, strideA, strideB) = (m, 1, 0, 0)
        if countB == 1 {
            rows = batchCount * m  // one B: A's batch stacks into M
        } else if countA == 1 || pad(s.batchA) == s.batch, pad(s.batchB) == s.batch {
            (batch, strideA, strideB) = (batchCount, countA == 1 ? 0 : m * k, k * n)
        } else {
            throw deviceLacks("MatMul whose batch dimensions broadcast partially (A\(a.shape) × B\(b.shape))")
        }
        try recorder.record {
            try $0.sgemm(
                transposeA: false, transposeB: false, m: rows, n: n, k: k, alpha: 1,
                a: a.buffer, lda: k, b: b.buffer, ldb: n, beta: 0, c: y.buffer, ldc: n,
                bias: biasBuffer, activation: activation,
                batch: batch, strideA: strideA, strideB: strideB, strideC: m * n)
        }
    }
}

extension SoftmaxOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let shape = inputs[0]!.shape
        let axis = try resolvedAxis(rank: shape.count)
        let outer = shape[..<axis].reduce(1, *)
        let (length, inner) = flattens
            ? (shape[axis...].reduce(1, *), 1)
            : (shape[axis], shape[(axis + 1)...].reduce(1, *))
        try recorder.record {
            try $0.softmax(inputs[0]!.buffer, outputs[0].buffer, outer: outer, axis: length, inner: inner, logarithm: logarithm)
        }
    }
}

extension LayerNormalizationOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        guard outputs.count == 1 else { throw deviceLacks("LayerNormalization's mean and inverse standard deviation outputs") }
        let x = inputs[0]!
        let a = try resolveAxis(axis, rank: x.shape.count)
        let bias = inputs.count > 2 ? inputs[2]?.buffer : nil
        try recorder.record {
            try $0.layerNormalization(
                x.buffer, outputs[0].buffer, rows: x.shape[..<a].reduce(1, *), columns: x.shape[a...].reduce(1, *),
                scale: inputs[1]!.buffer, bias: bias, epsilon: epsilon)
        }
    }
}

extension BatchNormalizationOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        guard outputs.count == 1 else { throw deviceLacks("BatchNormalization's training-mode outputs") }
        let x = inputs[0]!
        let p = (1...4).map { inputs[$0]!.buffer }
        try recorder.record {
            try $0.batchNormalization(
                x.buffer, outputs[0].buffer, batch: x.shape[0], channels: x.shape[1], spatial: x.shape[2...].reduce(1, *),
                scale: p[0], bias: p[1], mean: p[2], variance: p[3], epsilon: epsilon)
        }
    }
}

extension ReduceOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let x = inputs[0]!
        let types = inputs.map { $0.map { ValueType(dataType: $0.dataType, shape: $0.shape, values: $0.integers()) } }
        guard let axes = try reducedAxes(types, rank: x.shape.count) else { throw deviceLacks("ReduceSum/Mean/Max with axes computed per batch") }
        if axes.isEmpty {
            let layout = CopyLayout(shape: [x.elementCount], sourceStrides: [1], destinationStrides: [1])
            try recordCopy(x, to: outputs[0], layout: layout, on: recorder)
            return
        }
        try recorder.record { try $0.reduce(kind, x.buffer, outputs[0].buffer, shape: x.shape, axes: Set(axes)) }
    }
}

extension ConcatOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let out = outputs[0]
        let axis = try resolveAxis(self.axis, rank: out.shape.count)
        let outStrides = CopyLayout.contiguousStrides(out.shape)
        var offset = 0
        for input in inputs {
            let input = input!
            let layout = CopyLayout(shape: input.shape, sourceStrides: CopyLayout.contiguousStrides(input.shape), destinationStrides: outStrides)
            try recordCopy(input, to: out, destinationOffset: offset * outStrides[axis], layout: layout, on: recorder)
            offset += input.shape[axis]
        }
    }
}

extension SplitOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let x = inputs[0]!
        let axis = try resolveAxis(self.axis, rank: x.shape.count)
        let strides = CopyLayout.contiguousStrides(x.shape)
        var offset = 0
        for out in outputs {
            let layout = CopyLayout(shape: out.shape, sourceStrides: strides, destinationStrides: CopyLayout.contiguousStrides(out.shape))
            try recordCopy(x, sourceOffset: offset * strides[axis], to: out, layout: layout, on: recorder)
            offset += out.shape[axis]
        }
    }
}

extension TransposeOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let x = inputs[0]!
        let perm = try resolved(rank: x.shape.count)
        let strides = CopyLayout.contiguousStrides(x.shape)
        let layout = CopyLayout(
            shape: outputs[0].shape, sourceStrides: perm.map { strides[$0] },
            destinationStrides: CopyLayout.contiguousStrides(outputs[0].shape))
        try recordCopy(x, to: outputs[0], layout: layout, on: recorder)
    }
}

extension SliceOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let x = inputs[0]!
        let types = inputs.map { $0.map { ValueType(dataType: $0.dataType, shape: $0.shape, values: $0.integers()) } }
        guard let plan = try plan(types, shape: x.shape) else { throw deviceLacks("Slice with parameters computed per batch") }
        let strides = CopyLayout.contiguousStrides(x.shape)
        var offset = 0
        for (d, p) in plan.enumerated() where p.size > 0 { offset += p.start * strides[d] }
        let out = outputs[0]
        guard out.elementCount > 0 else { return }
        let layout = CopyLayout(
            shape: out.shape, sourceStrides: zip(strides, plan).map { $0 * $1.step },
            destinationStrides: CopyLayout.contiguousStrides(out.shape))
        try recordCopy(x, sourceOffset: offset, to: out, layout: layout, on: recorder)
    }
}

extension ExpandOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, out) = (inputs[0]!, outputs[0])
        let layout = CopyLayout(
            shape: out.shape, sourceStrides: WhereOperator.broadcastStrides(x.shape, to: out.shape),
            destinationStrides: CopyLayout.contiguousStrides(out.shape))
        try recordCopy(x, to: out, layout: layout, on: recorder)
    }
}

extension GatherOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (data, indices) = (inputs[0]!, inputs[1]!)
        let axis = try resolveAxis(self.axis, rank: data.shape.count)
        let words = try elementType(data).words
        let indexType = try elementType(indices)
        guard indexType == .int32 || indexType == .int64 else { throw failure("Gather indices must be INT32 or INT64") }
        try recorder.record {
            try $0.gather(
                data.buffer, indices: indices.buffer, indexType: indexType, to: outputs[0].buffer,
                outer: data.shape[..<axis].reduce(1, *), axisSize: data.shape[axis], inner: data.shape[(axis + 1)...].reduce(1, *),
                indexCount: indices.elementCount, wordsPerElement: words, status: recorder.status)
        }
    }
}

extension CastOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, out) = (inputs[0]!, outputs[0])
        let (from, to) = (try elementType(x), try elementType(out))
        try recorder.record { try $0.convert(x.buffer, from: from, to: out.buffer, as: to, count: out.elementCount) }
    }
}

extension ComparisonOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (a, b) = (inputs[0]!, inputs[1]!)
        guard let layout = BroadcastLayout(a.shape, b.shape) else { throw failure("shapes \(a.shape) and \(b.shape) do not broadcast") }
        let type = try elementType(a)
        guard type != .bool || kind == .equal else { throw deviceLacks("\(kind.rawValue) on BOOL") }
        let op: VulkanComparison = switch kind {
        case .equal: .equal
        case .less: .less
        case .greater: .greater
        }
        try recorder.record { try $0.compare(op, a.buffer, b.buffer, elementType: type, to: outputs[0].buffer, layout: layout) }
    }
}

extension WhereOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (c, x, y, out) = (inputs[0]!, inputs[1]!, inputs[2]!, outputs[0])
        let shape = out.shape
        let words = try elementType(x).words
        try recorder.record {
            try $0.select(
                c.buffer, x.buffer, y.buffer, to: out.buffer, shape: shape,
                conditionStrides: Self.broadcastStrides(c.shape, to: shape), xStrides: Self.broadcastStrides(x.shape, to: shape),
                yStrides: Self.broadcastStrides(y.shape, to: shape), wordsPerElement: words)
        }
    }
}

extension VulkanKernel {
    /// `Shaders/softmax.comp`: softmax / LogSoftmax along the middle axis of `[outer, axis, inner]`.
    static let softmax = VulkanKernel(name: "softmax", spirv: SPIRV.softmax, bindings: 2, pushConstantBytes: 5 * 4)
    /// `Shaders/layernorm.comp`: layer normalisation of contiguous rows.
    static let layerNormalization = VulkanKernel(name: "layernorm", spirv: SPIRV.layernorm, bindings: 4, pushConstantBytes: 4 * 4)
    /// `Shaders/batchnorm.comp`: inference batch normalisation (three dispatches).
    static let batchNormalization = VulkanKernel(name: "batchnorm", spirv: SPIRV.batchnorm, bindings: 3, pushConstantBytes: 5 * 4)
    /// `Shaders/reduce.comp`: sum / mean / max over merged kept and reduced loops.
    static let reduce = VulkanKernel(name: "reduce", spirv: SPIRV.reduce, bindings: 2, pushConstantBytes: 24 * 4)
    /// `Shaders/clip.comp`: `min(max(x, low), high)`.
    static let clip = VulkanKernel(name: "clip", spirv: SPIRV.clip, bindings: 2, pushConstantBytes: 3 * 4)
}

extension VulkanRecording {
    /// Records softmax (or LogSoftmax with `logarithm`) over the middle axis of `[outer, axis, inner]`
    /// row-major FP32, the same contract as `CPUBackend.softmax`: `out = exp(x - max) / Σ exp(x - max)`
    /// along `axis`. `out` may be `input`.
    ///
    /// Axes of 64 or more get one 256-invocation workgroup per row (tree reductions in shared
    /// memory); shorter axes one invocation per row. Three reads of the input and one write.
    public func softmax(
        _ input: VulkanBuffer, _ out: VulkanBuffer, outer: Int, axis: Int, inner: Int, logarithm: Bool = false
    ) throws {
        let total = try Self.product([outer, axis, inner], "softmax")
        guard total > 0 else { return }
        try Self.checkCount("softmax", input: input, out: out, total)
        let rows = outer * inner
        try Self.checkRange([total, rows, axis, inner])
        let rowPerWorkgroup = axis >= 64
        let words: [UInt32] = [UInt32(rows), UInt32(axis), UInt32(inner), logarithm ? 1 : 0, rowPerWorkgroup ? 0 : 1]
        let groups = rowPerWorkgroup ? min(rows, 65535) : Self.elementGroups(rows)
        try dispatch(.softmax, buffers: [input, out], push: words, groups: (groups, 1))
    }

    /// Records layer normalisation of `rows` contiguous rows of `columns` FP32 elements,
    /// `y = (x - mean) / sqrt(var + epsilon) · scale + bias` with `scale` (required) and `bias`
    /// (optional) of `columns` elements: `CPUBackend.layerNormalization` without the mean and
    /// inverse standard deviation outputs. Mean and variance in two passes, FP32. `out` may be
    /// `input`.
    ///
    /// One 256-invocation workgroup per row (tree reductions in shared memory); three reads of
    /// the input and one write.
    public func layerNormalization(
        _ input: VulkanBuffer, _ out: VulkanBuffer, rows: Int, columns: Int, scale: VulkanBuffer, bias: VulkanBuffer?,
        epsilon: Float
    ) throws {
        let total = try Self.product([rows, columns], "layerNormalization")
        guard total > 0 else { return }
        try Self.checkCount("layerNormalization", input: input, out: out, total)
        guard scale.count >= columns else {
            throw VulkanError(.invalidArgument, "layerNormalization: scale has \(scale.count) elements, needs \(columns)")
        }
        if let bias, bias.count < columns {
            throw VulkanError(.invalidArgument, "layerNormalization: bias has \(bias.count) elements, needs \(columns)")
        }
        try Self.checkRange([total])
        let words: [UInt32] = [UInt32(rows), UInt32(columns), bias == nil ? 0 : 1, epsilon.bitPattern]
        try dispatch(.layerNormalization, buffers: [input, out, scale, bias ?? scale], push: words, groups: (min(rows, 65535), 1))
    }

    /// Records inference batch normalisation over `[batch, channels, spatial]` FP32, the same
    /// contract as `CPUBackend.batchNormalization`:
    /// `y = (x - mean[c]) / sqrt(variance[c] + epsilon) · scale[c] + bias[c]`. `out` may be `input`.
    ///
    /// Three dispatches: per-channel factor and shift into a temporary buffer of `2 · channels`
    /// floats (allocated here, kept by the recording), then one multiply-add per element.
    public func batchNormalization(
        _ input: VulkanBuffer, _ out: VulkanBuffer, batch: Int, channels: Int, spatial: Int, scale: VulkanBuffer,
        bias: VulkanBuffer, mean: VulkanBuffer, variance: VulkanBuffer, epsilon: Float
    ) throws {
        let total = try Self.product([batch, channels, spatial], "batchNormalization")
        guard total > 0 else { return }
        try Self.checkCount("batchNormalization", input: input, out: out, total)
        for (name, buffer) in [("scale", scale), ("bias", bias), ("mean", mean), ("variance", variance)] where buffer.count < channels {
            throw VulkanError(.invalidArgument, "batchNormalization: \(name) has \(buffer.count) elements, needs \(channels)")
        }
        try Self.checkRange([total])
        try Self.checkRange([2 * channels])
        let folded = try VulkanBuffer(device: device, count: 2 * channels)
        func words(_ mode: UInt32) -> [UInt32] {
            [mode, UInt32(channels), UInt32(spatial), UInt32(total), epsilon.bitPattern]
        }
        let channelGroups = Self.elementGroups(channels)
        try dispatch(.batchNormalization, buffers: [scale, variance, folded], push: words(0), groups: (channelGroups, 1))
        try dispatch(.batchNormalization, buffers: [bias, mean, folded], push: words(1), groups: (channelGroups, 1))
        try dispatch(.batchNormalization, buffers: [input, out, folded], push: words(2), groups: (Self.elementGroups(total), 1))
    }

    /// Records the sum, mean or max of a contiguous FP32 tensor of `shape` over `axes` (any
    /// subset of `0..<shape.count`; empty: a copy) into `out`, contiguous with the reduced axes
    /// removed (so keepdims does not matter): the same results as `CPUBackend.reduce`, empty
    /// reductions included (sum and mean 0, max -inf). `out` must not be `input`.
    ///
    /// The shape is merged into alternating kept and reduced loops (size-1 axes dropped); more
    /// than 4 of either (8 in all) is refused with `unsupported`. Long reductions over the
    /// innermost loop get one 256-invocation workgroup per output (tree reduction in shared
    /// memory); otherwise one invocation per output, serial over its inputs.
    public func reduce(_ op: ReductionOperator, _ input: VulkanBuffer, _ out: VulkanBuffer, shape: [Int], axes: Set<Int>) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw VulkanError(.invalidArgument, "reduce: negative size in shape \(shape)") }
        if let bad = axes.first(where: { !shape.indices.contains($0) }) {
            throw VulkanError(.invalidArgument, "reduce: axis \(bad) out of range for rank \(shape.count)")
        }
        let total = try Self.product(shape, "reduce")
        let outputs = try Self.product(shape.indices.filter { !axes.contains($0) }.map { shape[$0] }, "reduce")
        let reduced = try Self.product(axes.map { shape[$0] }, "reduce")
        guard outputs > 0 else { return }
        guard input.count >= total, out.count >= outputs else {
            throw VulkanError(
                .invalidArgument,
                "reduce of \(shape) over \(axes.sorted()) reads \(total) and writes \(outputs) elements; buffers have \(input.count) and \(out.count)")
        }
        guard input !== out else { throw VulkanError(.invalidArgument, "reduce: out must be another buffer than input") }
        try Self.checkRange([total, outputs, reduced])

        // Merged loops, outermost first, with contiguous input strides.
        var loops: [(size: Int, reduced: Bool, stride: Int)] = []
        if reduced > 0 {
            for (axis, size) in shape.enumerated() where size != 1 {
                let isReduced = axes.contains(axis)
                if let last = loops.last, last.reduced == isReduced {
                    loops[loops.count - 1].size *= size
                } else {
                    loops.append((size, isReduced, 0))
                }
            }
            var stride = 1
            for i in loops.indices.reversed() {
                loops[i].stride = stride
                stride *= loops[i].size
            }
        }  // else: nothing is read, every output is the start value.
        let kept = loops.filter { !$0.reduced }
        let summed = loops.filter { $0.reduced }
        guard kept.count <= 4, summed.count <= 4 else {
            throw VulkanError(
                .unsupported,
                "reduce of \(shape) over \(axes.sorted()) has \(loops.count) merged loops (the Vulkan kernel handles 4 kept and 4 reduced)")
        }
        func padded(_ values: [Int]) -> [UInt32] { values.map { UInt32($0) } + Array(repeating: 1, count: 4 - values.count) }
        let innermostReduced = loops.last?.reduced ?? false
        let workgroupPerOutput = (innermostReduced && reduced >= 32) || (reduced >= 1024 && outputs < 4096)
        let opCode: UInt32 = switch op {
        case .sum: 0
        case .mean: 1
        case .max: 2
        }
        let scale: Float = reduced > 0 ? 1 / Float(reduced) : 1
        let words: [UInt32] =
            [
                UInt32(outputs), UInt32(reduced), opCode, workgroupPerOutput ? 0 : 1,
                UInt32(kept.count), UInt32(summed.count), scale.bitPattern, 0,
            ]
            + padded(kept.map(\.size)) + padded(kept.map(\.stride)) + padded(summed.map(\.size)) + padded(summed.map(\.stride))
        let groups = workgroupPerOutput ? min(outputs, 65535) : Self.elementGroups(outputs)
        try dispatch(.reduce, buffers: [input, out], push: words, groups: (groups, 1))
    }

    /// Records `out[i] = min(max(input[i], low), high)` for `count` elements, as `CPUBackend.clip`.
    /// `out` may be `input`.
    public func clip(_ input: VulkanBuffer, _ out: VulkanBuffer, count: Int, low: Float, high: Float) throws {
        guard count >= 0 else { throw VulkanError(.invalidArgument, "clip over \(count) elements") }
        guard count > 0 else { return }
        try Self.checkCount("clip", input: input, out: out, count)
        try Self.checkRange([count])
        try dispatch(.clip, buffers: [input, out], push: [UInt32(count), low.bitPattern, high.bitPattern], groups: (Self.elementGroups(count), 1))
    }

    // MARK: Checks

    /// The product of `sizes`, refusing negative sizes and overflow.
    static func product(_ sizes: [Int], _ kernel: String) throws -> Int {
        guard sizes.allSatisfy({ $0 >= 0 }) else { throw VulkanError(.invalidArgument, "\(kernel) with negative sizes \(sizes)") }
        var result = 1
        for size in sizes {
            let (next, overflow) = result.multipliedReportingOverflow(by: size)
            guard !overflow else { throw VulkanError(.unsupported, "\(kernel): \(sizes) has more elements than fit in an Int") }
            result = next
        }
        return result
    }

    private static func checkCount(_ kernel: String, input: VulkanBuffer, out: VulkanBuffer, _ total: Int) throws {
        guard input.count >= total, out.count >= total else {
            throw VulkanError(.invalidArgument, "\(kernel) over \(total) elements with buffers of \(input.count) and \(out.count)")
        }
    }
}

extension VulkanBackend {
    /// Runs one `VulkanRecording.softmax` and waits for it.
    public func softmax(_ input: VulkanBuffer, _ out: VulkanBuffer, outer: Int, axis: Int, inner: Int, logarithm: Bool = false) throws {
        try run { try $0.softmax(input, out, outer: outer, axis: axis, inner: inner, logarithm: logarithm) }
    }

    /// Runs one `VulkanRecording.layerNormalization` and waits for it.
    public func layerNormalization(
        _ input: VulkanBuffer, _ out: VulkanBuffer, rows: Int, columns: Int, scale: VulkanBuffer, bias: VulkanBuffer?,
        epsilon: Float
    ) throws {
        try run { try $0.layerNormalization(input, out, rows: rows, columns: columns, scale: scale, bias: bias, epsilon: epsilon) }
    }

    /// Runs one `VulkanRecording.batchNormalization` and waits for it.
    public func batchNormalization(
        _ input: VulkanBuffer, _ out: VulkanBuffer, batch: Int, channels: Int, spatial: Int, scale: VulkanBuffer,
        bias: VulkanBuffer, mean: VulkanBuffer, variance: VulkanBuffer, epsilon: Float
    ) throws {
        try run {
            try $0.batchNormalization(
                input, out, batch: batch, channels: channels, spatial: spatial, scale: scale, bias: bias, mean: mean,
                variance: variance, epsilon: epsilon)
        }
    }

    /// Runs one `VulkanRecording.reduce` and waits for it.
    public func reduce(_ op: ReductionOperator, _ input: VulkanBuffer, _ out: VulkanBuffer, shape: [Int], axes: Set<Int>) throws {
        try run { try $0.reduce(op, input, out, shape: shape, axes: axes) }
    }

    /// Runs one `VulkanRecording.clip` and waits for it.
    public func clip(_ input: VulkanBuffer, _ out: VulkanBuffer, count: Int, low: Float, high: Float) throws {
        try run { try $0.clip(input, out, count: count, low: low, high: high) }
    }
}

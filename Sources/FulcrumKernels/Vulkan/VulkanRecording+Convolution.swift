extension VulkanKernel {
    /// `Shaders/conv2d.comp`: direct 2-D convolution, any groups, bias and activation fused.
    static let conv2d = VulkanKernel(name: "conv2d", spirv: SPIRV.conv2d, bindings: 4, pushConstantBytes: 19 * 4)
    /// `Shaders/im2col.comp`: the column matrix of a one-group convolution, per image.
    static let im2col = VulkanKernel(name: "im2col", spirv: SPIRV.im2col, bindings: 2, pushConstantBytes: 14 * 4)
    /// `Shaders/channelfill.comp`: a per-channel value written over NCHW planes.
    static let channelFill = VulkanKernel(name: "channelfill", spirv: SPIRV.channelfill, bindings: 2, pushConstantBytes: 3 * 4)
    /// `Shaders/pool2d.comp`: 2-D max and average pooling.
    static let pool2d = VulkanKernel(name: "pool2d", spirv: SPIRV.pool2d, bindings: 2, pushConstantBytes: 16 * 4)
    /// `Shaders/hardsigmoid.comp`: HardSigmoid and HardSwish.
    static let hardSigmoid = VulkanKernel(name: "hardsigmoid", spirv: SPIRV.hardsigmoid, bindings: 2, pushConstantBytes: 4 * 4)
}

/// How `VulkanRecording.convolve` computes a convolution.
public enum ConvolutionMethod: Sendable, Equatable, CaseIterable {
    /// `im2col` where it applies (one group, scratch within `VulkanRecording.maximumColumnFloats`,
    /// sizes within the sgemm dispatch limits), `direct` otherwise.
    case automatic
    /// One invocation per output, looping over its taps (`conv2d.comp`): any groups, depthwise
    /// included; the only method for more than one group.
    case direct
    /// A column matrix per image (`im2col.comp`; none for a 1×1, stride-1, unpadded
    /// convolution, whose input already is that matrix), then one batched sgemm over all images
    /// with the bias written ahead (`channelfill.comp`, beta 1) and the activation in its
    /// epilogue. One group only.
    case im2col
}

extension VulkanRecording {
    /// The largest im2col scratch one convolution takes on the device (256 MiB of floats);
    /// above it `.automatic` uses the direct kernel, which needs none.
    public static let maximumColumnFloats = 1 << 26

    /// Records `y[n] = act(conv(x[n], weights) + bias)` for `batch` NCHW FP32 images, the same
    /// contract as `CPUBackend.convolve`: `weights` `[outputChannels, channels / groups, kH, kW]`,
    /// `bias` `outputChannels` elements or nil, the window (pads, strides, dilations, output
    /// size) as resolved in `shape.window`. `y` must not be `x`.
    ///
    /// Every size is checked (products with overflow detection, buffer extents, 32-bit indexing)
    /// before anything is recorded. `method` picks the kernel (`ConvolutionMethod`); `.im2col`
    /// allocates its column matrix here (batch · C·kH·kW · oH·oW floats, kept by the recording)
    /// (or uses `columns`, at least `im2colFloats(shape, batch:)` elements, when given) and is
    /// refused (`unsupported`) for more than one group or beyond the dispatch limits.
    public func convolve(
        _ shape: Convolution2D, batch: Int, x: VulkanBuffer, weights: VulkanBuffer, bias: VulkanBuffer?, y: VulkanBuffer,
        activation: Activation = .none, method: ConvolutionMethod = .automatic, columns columnBuffer: VulkanBuffer? = nil
    ) throws {
        if activation == .hardSwish {
            // Not a shader epilogue: the convolution, then HardSwish over its output in place.
            try convolve(shape, batch: batch, x: x, weights: weights, bias: bias, y: y, method: method, columns: columnBuffer)
            let count = batch * shape.outputChannels * shape.window.outputHeight * shape.window.outputWidth
            let gate = Activation.hardSwishGate
            try hardSigmoid(y, y, count: count, alpha: gate.alpha, beta: gate.beta, swish: true)
            return
        }
        let window = shape.window
        let (c, m, groups) = (shape.channels, shape.outputChannels, shape.groups)
        let spatial = [
            window.height, window.width, window.kernel.h, window.kernel.w, window.stride.h, window.stride.w,
            window.dilation.h, window.dilation.w, window.outputHeight, window.outputWidth,
        ]
        guard batch >= 0, spatial.allSatisfy({ $0 >= 0 }), [window.pads.top, window.pads.left, window.pads.bottom, window.pads.right].allSatisfy({ $0 >= 0 }) else {
            throw VulkanError(.invalidArgument, "convolve: negative sizes in \(shape)")
        }
        guard groups >= 1, c >= 1, m >= 1, c % groups == 0, m % groups == 0 else {
            throw VulkanError(.invalidArgument, "convolve: \(c) input and \(m) output channels do not split into \(groups) groups")
        }
        guard window.kernel.h >= 1, window.kernel.w >= 1, window.stride.h >= 1, window.stride.w >= 1,
              window.dilation.h >= 1, window.dilation.w >= 1 else {
            throw VulkanError(.invalidArgument, "convolve: kernel, strides and dilations must be at least 1")
        }
        let cg = c / groups
        let inputCount = try Self.product([batch, c, window.height, window.width], "convolve")
        let weightCount = try Self.product([m, cg, window.kernel.h, window.kernel.w], "convolve")
        let plane = try Self.product([window.outputHeight, window.outputWidth], "convolve")
        let outputCount = try Self.product([batch, m, plane], "convolve")
        guard outputCount > 0 else { return }
        guard x.count >= inputCount, weights.count >= weightCount, y.count >= outputCount else {
            throw VulkanError(
                .invalidArgument,
                "convolve reads \(inputCount) inputs and \(weightCount) weights and writes \(outputCount) outputs; buffers have \(x.count), \(weights.count) and \(y.count)")
        }
        if let bias, bias.count < m { throw VulkanError(.invalidArgument, "convolve: bias has \(bias.count) elements, needs \(m)") }
        guard x !== y else { throw VulkanError(.invalidArgument, "convolve: y must be another buffer than x") }
        try Self.checkRange([inputCount, weightCount, outputCount])
        // The shaders compute window positions in 32-bit signed integers.
        let reach = [
            (window.outputHeight - 1) * window.stride.h + (window.kernel.h - 1) * window.dilation.h,
            (window.outputWidth - 1) * window.stride.w + (window.kernel.w - 1) * window.dilation.w,
            window.height + window.pads.top + window.pads.bottom, window.width + window.pads.left + window.pads.right,
        ]
        guard (spatial + reach).allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw VulkanError(.unsupported, "convolve: window positions beyond 32-bit indexing in \(shape)")
        }

        let resolved: ConvolutionMethod
        switch method {
        case .automatic: resolved = Self.im2colPlan(shape, batch: batch) == nil ? .direct : .im2col
        case .direct, .im2col: resolved = method
        }
        let (code, activationAlpha) = try VulkanKernels.code(of: activation)
        guard resolved == .im2col else {
            let words: [UInt32] = [
                UInt32(c), UInt32(window.height), UInt32(window.width), UInt32(m), UInt32(window.outputHeight),
                UInt32(window.outputWidth), UInt32(groups), UInt32(window.kernel.h), UInt32(window.kernel.w),
                UInt32(window.stride.h), UInt32(window.stride.w), UInt32(window.dilation.h), UInt32(window.dilation.w),
                UInt32(window.pads.top), UInt32(window.pads.left), bias == nil ? 0 : 1, code, activationAlpha.bitPattern,
                UInt32(outputCount),
            ]
            try dispatch(.conv2d, buffers: [x, weights, bias ?? weights, y], push: words, groups: (Self.elementGroups(outputCount), 1))
            return
        }
        guard let plan = Self.im2colPlan(shape, batch: batch) else {
            throw VulkanError(
                .unsupported,
                "convolve: im2col needs one group, at most \(Self.maximumColumnFloats) column floats and sizes within the sgemm dispatch limits (\(shape), batch \(batch))")
        }
        let columns: VulkanBuffer
        if plan.pointwise {
            columns = x
        } else {
            if let given = columnBuffer {
                guard given.count >= plan.columnFloats, given !== x, given !== y else {
                    throw VulkanError(.invalidArgument, "convolve: the column buffer has \(given.count) elements, needs \(plan.columnFloats) (and must be neither x nor y)")
                }
                columns = given
            } else {
                columns = try VulkanBuffer(device: device, count: plan.columnFloats)
            }
            let words: [UInt32] = [
                UInt32(c), UInt32(window.height), UInt32(window.width), UInt32(window.outputHeight), UInt32(window.outputWidth),
                UInt32(window.kernel.h), UInt32(window.kernel.w), UInt32(window.stride.h), UInt32(window.stride.w),
                UInt32(window.dilation.h), UInt32(window.dilation.w), UInt32(window.pads.top), UInt32(window.pads.left),
                UInt32(plan.columnFloats),
            ]
            try dispatch(.im2col, buffers: [x, columns], push: words, groups: (Self.elementGroups(plan.columnFloats), 1))
        }
        if let bias {
            try dispatch(
                .channelFill, buffers: [bias, y], push: [UInt32(plane), UInt32(m), UInt32(outputCount)],
                groups: (Self.elementGroups(outputCount), 1))
        }
        try sgemm(
            transposeA: false, transposeB: false, m: m, n: plane, k: plan.k, alpha: 1, a: weights, lda: plan.k,
            b: columns, ldb: plane, beta: bias == nil ? 0 : 1, c: y, ldc: plane, activation: activation,
            batch: batch, strideA: 0, strideB: plan.k * plane, strideC: m * plane)
    }

    /// The column-matrix floats `.im2col` needs for `shape` over `batch` images (0 for a 1×1,
    /// stride-1, unpadded convolution, which needs none), or nil where im2col does not apply:
    /// more than one group, more than `maximumColumnFloats`, or sizes beyond the sgemm dispatch
    /// limits. A caller running several convolutions in a row can pass one buffer of the largest
    /// such count to each (`convolve(columns:)`).
    public static func im2colFloats(_ shape: Convolution2D, batch: Int) -> Int? {
        im2colPlan(shape, batch: batch)?.columnFloats
    }

    private static func im2colPlan(_ shape: Convolution2D, batch: Int) -> (k: Int, columnFloats: Int, pointwise: Bool)? {
        let window = shape.window
        guard shape.groups == 1, batch >= 1, batch <= 65535,
              let k = try? product([shape.channels, window.kernel.h, window.kernel.w], "convolve"),
              let plane = try? product([window.outputHeight, window.outputWidth], "convolve"),
              (plane + 63) / 64 <= 65535, (shape.outputChannels + 63) / 64 <= 65535
        else { return nil }
        if shape.isPointwise { return (k, 0, true) }
        guard let floats = try? product([batch, k, plane], "convolve"), floats <= maximumColumnFloats else { return nil }
        return (k, floats, false)
    }

    /// Records max or average pooling of `planes` FP32 planes (batch × channels) over
    /// `p.window`, the same contract as `CPUBackend.pool` (average: without `countIncludePad`
    /// divides by the taps inside the input, with it by the taps inside the padded input).
    /// One invocation per output; `y` must not be `x`.
    public func pool(_ p: Pooling2D, planes: Int, x: VulkanBuffer, y: VulkanBuffer) throws {
        let window = p.window
        let values = [
            planes, window.height, window.width, window.kernel.h, window.kernel.w, window.stride.h, window.stride.w,
            window.dilation.h, window.dilation.w, window.pads.top, window.pads.left, window.pads.bottom, window.pads.right,
            window.outputHeight, window.outputWidth,
        ]
        guard values.allSatisfy({ $0 >= 0 }), window.kernel.h >= 1, window.kernel.w >= 1, window.stride.h >= 1, window.stride.w >= 1,
              window.dilation.h >= 1, window.dilation.w >= 1 else {
            throw VulkanError(.invalidArgument, "pool: sizes out of range in \(p), \(planes) planes")
        }
        let inputCount = try Self.product([planes, window.height, window.width], "pool")
        let outputCount = try Self.product([planes, window.outputHeight, window.outputWidth], "pool")
        guard outputCount > 0 else { return }
        guard x.count >= inputCount, y.count >= outputCount else {
            throw VulkanError(.invalidArgument, "pool reads \(inputCount) and writes \(outputCount) elements; buffers have \(x.count) and \(y.count)")
        }
        guard x !== y else { throw VulkanError(.invalidArgument, "pool: y must be another buffer than x") }
        try Self.checkRange([inputCount, outputCount])
        let reach = [
            (window.outputHeight - 1) * window.stride.h + (window.kernel.h - 1) * window.dilation.h,
            (window.outputWidth - 1) * window.stride.w + (window.kernel.w - 1) * window.dilation.w,
            window.height + window.pads.top + window.pads.bottom + window.kernel.h,
            window.width + window.pads.left + window.pads.right + window.kernel.w,
        ]
        guard (values + reach).allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw VulkanError(.unsupported, "pool: window positions beyond 32-bit indexing in \(p)")
        }
        let mode: UInt32 = switch p.kind {
        case .max: 0
        case .average(let includePad): includePad ? 2 : 1
        }
        let words: [UInt32] = [
            UInt32(window.height), UInt32(window.width), UInt32(window.outputHeight), UInt32(window.outputWidth),
            UInt32(window.kernel.h), UInt32(window.kernel.w), UInt32(window.stride.h), UInt32(window.stride.w),
            UInt32(window.dilation.h), UInt32(window.dilation.w), UInt32(window.pads.top), UInt32(window.pads.left),
            UInt32(window.pads.bottom), UInt32(window.pads.right), mode, UInt32(outputCount),
        ]
        try dispatch(.pool2d, buffers: [x, y], push: words, groups: (Self.elementGroups(outputCount), 1))
    }

    /// Records HardSigmoid `y = max(0, min(1, alpha · x + beta))`, or with `swish` HardSwish
    /// `y = x · HardSigmoid(x)`, over `count` FP32 elements (`out` may be `input`).
    public func hardSigmoid(_ input: VulkanBuffer, _ out: VulkanBuffer, count: Int, alpha: Float, beta: Float, swish: Bool) throws {
        guard count > 0 else { return }
        guard input.count >= count, out.count >= count else {
            throw VulkanError(.invalidArgument, "hardSigmoid over \(count) elements with buffers of \(input.count) and \(out.count)")
        }
        try Self.checkRange([count])
        try dispatch(
            .hardSigmoid, buffers: [input, out], push: [UInt32(count), alpha.bitPattern, beta.bitPattern, swish ? 1 : 0],
            groups: (Self.elementGroups(count), 1))
    }
}

extension VulkanBackend {
    /// Runs one `VulkanRecording.convolve` and waits for it.
    public func convolve(
        _ shape: Convolution2D, batch: Int, x: VulkanBuffer, weights: VulkanBuffer, bias: VulkanBuffer?, y: VulkanBuffer,
        activation: Activation = .none, method: ConvolutionMethod = .automatic, columns: VulkanBuffer? = nil
    ) throws {
        try run {
            try $0.convolve(shape, batch: batch, x: x, weights: weights, bias: bias, y: y, activation: activation, method: method, columns: columns)
        }
    }

    /// Runs one `VulkanRecording.pool` and waits for it.
    public func pool(_ p: Pooling2D, planes: Int, x: VulkanBuffer, y: VulkanBuffer) throws {
        try run { try $0.pool(p, planes: planes, x: x, y: y) }
    }

    /// Runs one `VulkanRecording.hardSigmoid` and waits for it.
    public func hardSigmoid(_ input: VulkanBuffer, _ out: VulkanBuffer, count: Int, alpha: Float, beta: Float, swish: Bool) throws {
        try run { try $0.hardSigmoid(input, out, count: count, alpha: alpha, beta: beta, swish: swish) }
    }
}

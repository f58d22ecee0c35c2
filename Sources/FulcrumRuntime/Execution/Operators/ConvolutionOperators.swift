import FulcrumKernels
import FulcrumSchema

/// The spatial attributes Conv and the pools share, for 2-D (NCHW) inputs.
struct SpatialAttributes: Sendable {
    enum AutoPad: String, Sendable { case notSet = "NOTSET", sameUpper = "SAME_UPPER", sameLower = "SAME_LOWER", valid = "VALID" }
    var kernel: [Int]?
    var strides: [Int]
    var dilations: [Int]
    var pads: [Int]
    var autoPad: AutoPad
    var ceilMode: Bool

    init(_ attributes: NodeAttributes, kernelRequired: Bool) throws(RuntimeError) {
        kernel = try attributes.ints("kernel_shape")
        if kernelRequired, kernel == nil { throw RuntimeError(code: .invalidModel, message: "attribute 'kernel_shape' is required") }
        strides = try attributes.ints("strides") ?? [1, 1]
        dilations = try attributes.ints("dilations") ?? [1, 1]
        pads = try attributes.ints("pads") ?? [0, 0, 0, 0]
        let name = try attributes.string("auto_pad", default: "NOTSET")
        guard let autoPad = AutoPad(rawValue: name) else {
            throw RuntimeError(code: .invalidModel, message: "auto_pad '\(name)' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
        }
        self.autoPad = autoPad
        ceilMode = try attributes.int("ceil_mode", default: 0) != 0
        if let kernel, kernel.count != 2 {
            throw RuntimeError(code: .unsupportedOperator, message: "kernel_shape \(kernel): only 2-D (NCHW) windows are supported")
        }
        guard strides.count == 2, dilations.count == 2, pads.count == 4 else {
            throw RuntimeError(code: .unsupportedOperator, message: "strides \(strides), dilations \(dilations), pads \(pads): only 2-D (NCHW) windows are supported")
        }
        guard strides.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), dilations.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }),
              pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else {
            throw RuntimeError(code: .invalidModel, message: "strides \(strides), dilations \(dilations) must be ≥ 1 and pads \(pads) ≥ 0")
        }
    }

    /// Pads and output sizes for an input `height × width` and window `kernel` (checked: a
    /// window larger than the padded input is refused, sizes overflow nothing).
    func resolve(height: Int, width: Int, kernel k: (Int, Int)) throws(RuntimeError) -> (pads: (Int, Int, Int, Int), out: (Int, Int)) {
        guard k.0 >= 1, k.1 >= 1, k.0 <= 1 << 16, k.1 <= 1 << 16 else {
            throw RuntimeError(code: .invalidModel, message: "kernel \(k.0)×\(k.1) is out of range")
        }
        var p = (pads[0], pads[1], pads[2], pads[3])
        let extent = ((k.0 - 1) * dilations[0] + 1, (k.1 - 1) * dilations[1] + 1)
        func size(_ input: Int, _ before: Int, _ after: Int, _ extent: Int, _ stride: Int) -> Int {
            let span = input + before + after - extent
            guard span >= 0 else { return 0 }
            return (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        }
        switch autoPad {
        case .notSet: break
        case .valid: p = (0, 0, 0, 0)
        case .sameUpper, .sameLower:
            func split(_ input: Int, _ stride: Int, _ extent: Int) -> (Int, Int) {
                let out = (input + stride - 1) / stride
                let total = max(0, (out - 1) * stride + extent - input)
                return autoPad == .sameUpper ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
            }
            let (t, b) = split(height, strides[0], extent.0)
            let (l, r) = split(width, strides[1], extent.1)
            p = (t, l, b, r)
        }
        var oh = size(height, p.0, p.2, extent.0, strides[0])
        var ow = size(width, p.1, p.3, extent.1, strides[1])
        if ceilMode {
            // A last window must start inside the input or its leading padding.
            if oh > 0, (oh - 1) * strides[0] >= height + p.0 { oh -= 1 }
            if ow > 0, (ow - 1) * strides[1] >= width + p.1 { ow -= 1 }
        }
        guard oh >= 1, ow >= 1 else {
            throw RuntimeError(code: .invalidModel, message: "a \(k.0)×\(k.1) window (dilations \(dilations)) does not fit the \(height)×\(width) input with pads \(pads)")
        }
        return (p, (oh, ow))
    }
}

/// Conv (2-D, NCHW, FP32): groups (depthwise included), dilations, pads or auto_pad, strides,
/// optional bias; a following BatchNormalization folds into constant weights and an activation
/// runs in the same pass (`ExecutionPlan.fuseConvolution`).
struct ConvOperator: Operator {
    /// The most scratch (padded input + im2col matrix) one convolution may take: 1 GiB.
    static let maximumScratchFloats = 1 << 28

    let spatial: SpatialAttributes
    let groups: Int
    var activation: Activation = .none

    init(attributes: NodeAttributes) throws(RuntimeError) {
        spatial = try SpatialAttributes(attributes, kernelRequired: false)
        groups = try attributes.int("group", default: 1)
        guard groups >= 1 else { throw RuntimeError(code: .invalidModel, message: "group \(groups) must be at least 1") }
    }

    func with(activation: Activation) -> ConvOperator {
        var copy = self
        copy.activation = activation
        return copy
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        let w = try required(inputs, 1, "W")
        guard x.dataType == .fp32, w.dataType == .fp32 else { throw unsupported(x.dataType == .fp32 ? w.dataType : x.dataType, "FP32") }
        guard let ws = w.shape, ws.count == 4 else { throw failure("W must be [M, C/group, kH, kW] (2-D convolution)") }
        if let b = optional(inputs, 2) {
            guard b.dataType == .fp32, b.shape == nil || b.shape! == [ws[0]] else { throw failure("B must be FP32 [\(ws[0])]") }
        }
        if let kernel = spatial.kernel, kernel != Array(ws[2...]) {
            throw failure("kernel_shape \(kernel) differs from W's \(Array(ws[2...]))")
        }
        guard ws[0] >= 1, ws[0] % groups == 0 else { throw failure("W has \(ws[0]) output channels, not a multiple of group \(groups)") }
        guard let xs = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard xs.count == 4 else { throw failure("X has rank \(xs.count); Conv takes [N, C, H, W]") }
        if xs[1] >= 0, xs[1] != ws[1] * groups {
            throw failure("X has \(xs[1]) channels; W expects \(ws[1]) per group × \(groups) groups")
        }
        guard xs[2] >= 0, xs[3] >= 0 else { return [ValueType(dataType: .fp32, shape: [xs[0], ws[0], -1, -1])] }
        let (_, out) = try spatial.resolve(height: xs[2], width: xs[3], kernel: (ws[2], ws[3]))
        return [ValueType(dataType: .fp32, shape: [xs[0], ws[0], out.0, out.1])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let (x, w) = (inputs[0]!, inputs[1]!)
        let (pads, _) = try spatial.resolve(height: x.shape[2], width: x.shape[3], kernel: (w.shape[2], w.shape[3]))
        let shape = Convolution2D(
            channels: x.shape[1], height: x.shape[2], width: x.shape[3], outputChannels: w.shape[0], groups: groups,
            kernel: (w.shape[2], w.shape[3]), stride: (spatial.strides[0], spatial.strides[1]),
            dilation: (spatial.dilations[0], spatial.dilations[1]), pads: pads)
        // The scratch size from shapes a request chose: multiplied with overflow checks first.
        let (oh, ow) = (shape.outputHeight, shape.outputWidth)
        let cg = shape.channels / groups
        var floats = 0
        for factors in [[cg, shape.kernel.h, shape.kernel.w, oh, ow], [cg, x.shape[2] + pads.0 + pads.2, x.shape[3] + pads.1 + pads.3]] {
            var product = 1
            for factor in factors {
                let (next, overflow) = product.multipliedReportingOverflow(by: factor)
                guard !overflow, next <= Self.maximumScratchFloats else {
                    throw RuntimeError(code: .invalidInput, message: "a \(x.shape[2])×\(x.shape[3]) input needs more than \(Self.maximumScratchFloats) floats of convolution scratch")
                }
                product = next
            }
            floats += product
        }
        guard floats <= Self.maximumScratchFloats else {
            throw RuntimeError(code: .invalidInput, message: "a \(x.shape[2])×\(x.shape[3]) input needs more than \(Self.maximumScratchFloats) floats of convolution scratch")
        }
        let scratch = TensorBuffer(byteCount: shape.scratchCount * 4)
        let scratchPointer = shape.scratchCount > 0 ? scratch.pointer.assumingMemoryBound(to: Float.self) : nil
        let (input, weights, bias, y) = (UnsafePointer(x.floats()), UnsafePointer(w.floats()), inputs.count > 2 ? inputs[2].map { UnsafePointer($0.floats()) } : nil, outputs[0].floats())
        let (batch, activation) = (x.shape[0], activation)
        return {
            _ = scratch
            backend.convolve(shape, batch: batch, x: input, weights: weights, bias: bias, y: y, scratch: scratchPointer, activation: activation)
        }
    }
}

/// MaxPool, AveragePool (2-D windows) and GlobalMaxPool, GlobalAveragePool over NCHW FP32.
struct PoolOperator: Operator {
    enum Kind { case max, average, globalMax, globalAverage }
    let kind: Kind
    let spatial: SpatialAttributes?
    let countIncludePad: Bool

    init(kind: Kind, attributes: NodeAttributes, outputCount: Int) throws(RuntimeError) {
        self.kind = kind
        switch kind {
        case .max, .average:
            spatial = try SpatialAttributes(attributes, kernelRequired: true)
            if kind == .average, attributes.has("dilations"), spatial?.dilations != [1, 1] {
                throw RuntimeError(code: .unsupportedOperator, message: "attribute 'dilations' of AveragePool is not supported")
            }
            if try attributes.int("storage_order", default: 0) != 0 {
                throw RuntimeError(code: .unsupportedOperator, message: "attribute 'storage_order' 1 (column-major indices) is not supported")
            }
            if outputCount > 1 {
                throw RuntimeError(code: .unsupportedOperator, message: "MaxPool's second output (Indices) is not supported")
            }
        case .globalMax, .globalAverage:
            spatial = nil
        }
        countIncludePad = try attributes.int("count_include_pad", default: 0) != 0
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        guard let xs = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard xs.count == 4 else { throw failure("X has rank \(xs.count); 2-D pooling takes [N, C, H, W]") }
        guard let spatial, let kernel = spatial.kernel else { return [ValueType(dataType: .fp32, shape: [xs[0], xs[1], 1, 1])] }
        guard xs[2] >= 0, xs[3] >= 0 else { return [ValueType(dataType: .fp32, shape: [xs[0], xs[1], -1, -1])] }
        let (_, out) = try spatial.resolve(height: xs[2], width: xs[3], kernel: (kernel[0], kernel[1]))
        return [ValueType(dataType: .fp32, shape: [xs[0], xs[1], out.0, out.1])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let window: Pooling2D
        if let spatial, let kernel = spatial.kernel {
            let (pads, out) = try spatial.resolve(height: h, width: w, kernel: (kernel[0], kernel[1]))
            window = Pooling2D(
                kind: kind == .max ? .max : .average(countIncludePad: countIncludePad), height: h, width: w,
                kernel: (kernel[0], kernel[1]), stride: (spatial.strides[0], spatial.strides[1]),
                dilation: (spatial.dilations[0], spatial.dilations[1]), pads: pads, outputHeight: out.0, outputWidth: out.1)
        } else {
            window = Pooling2D(
                kind: kind == .globalMax ? .max : .average(countIncludePad: false), height: h, width: w, kernel: (h, w),
                stride: (1, 1), dilation: (1, 1), pads: (0, 0, 0, 0), outputHeight: 1, outputWidth: 1)
        }
        let (input, y) = (UnsafePointer(x.floats()), outputs[0].floats())
        return { backend.pool(window, planes: n * c, x: input, y: y) }
    }
}

/// HardSigmoid `max(0, min(1, alpha·x + beta))` (alpha 0.2, beta 0.5) and HardSwish
/// `x · HardSigmoid(x)` with alpha 1/6, beta 0.5 (opset 14), FP32.
struct HardSigmoidOperator: Operator {
    let alpha: Float
    let beta: Float
    let swish: Bool

    init(attributes: NodeAttributes, swish: Bool) throws(RuntimeError) {
        self.swish = swish
        alpha = swish ? 1 / 6 : try attributes.float("alpha", default: 0.2)
        beta = swish ? 0.5 : try attributes.float("beta", default: 0.5)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        return [x.withoutValues]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let (input, out, count) = (UnsafePointer(inputs[0]!.floats()), outputs[0].floats(), outputs[0].elementCount)
        let (alpha, beta, swish) = (alpha, beta, swish)
        return {
            for i in 0..<count {
                let gate = max(0, min(1, alpha * input[i] + beta))
                out[i] = swish ? input[i] * gate : gate
            }
        }
    }
}

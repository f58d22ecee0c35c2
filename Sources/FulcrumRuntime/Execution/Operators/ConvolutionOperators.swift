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
    func resolve(height: Int, width: Int, kernel k: (Int, Int)) throws(RuntimeError) -> Window2D {
        guard k.0 >= 1, k.1 >= 1, k.0 <= 1 << 16, k.1 <= 1 << 16 else {
            throw RuntimeError(code: .invalidModel, message: "kernel \(k.0)×\(k.1) is out of range")
        }
        guard height <= ConvOperator.maximumSide, width <= ConvOperator.maximumSide else {
            throw RuntimeError(code: .invalidModel, message: "a \(height)×\(width) plane is larger than \(ConvOperator.maximumSide) on a side")
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
        return Window2D(
            height: height, width: width, kernel: k, stride: (strides[0], strides[1]), dilation: (dilations[0], dilations[1]),
            pads: p, outputHeight: oh, outputWidth: ow)
    }
}

/// Conv (2-D, NCHW, FP32): groups (depthwise included), dilations, pads or auto_pad, strides,
/// optional bias; a following BatchNormalization folds into constant weights and an activation
/// runs in the same pass (`ExecutionPlan.fuseConvolution`).
struct ConvOperator: Operator {
    /// The most scratch (padded input + im2col matrix) one convolution may take: 1 GiB.
    static let maximumScratchFloats = 1 << 28
    /// The product of `factors` (scratch floats for an input of `shape`), checked for overflow
    /// and against `maximumScratchFloats` before anything is allocated.
    static func scratchFloats(_ factors: [Int], _ shape: [Int]) throws(RuntimeError) -> Int {
        var product = 1
        for factor in factors {
            let (next, overflow) = product.multipliedReportingOverflow(by: factor)
            guard !overflow, next <= maximumScratchFloats else { throw scratchTooLarge(shape) }
            product = next
        }
        return product
    }

    static func scratchTooLarge(_ shape: [Int]) -> RuntimeError {
        RuntimeError(code: .invalidInput, message: "an input of shape \(shape) needs more than \(maximumScratchFloats) floats of convolution scratch")
    }

    /// The largest plane side and group count accepted (sizes from a model file are outside input).
    static let maximumSide = 1 << 24

    let spatial: SpatialAttributes
    let groups: Int
    var activation: Activation = .none
    /// Each group's constant filter matrix packed for the microkernels at load
    /// (`ExecutionPlan.packWeights`; not for depthwise convolutions).
    var packedWeights: [PackedMatrix]?

    init(attributes: NodeAttributes) throws(RuntimeError) {
        spatial = try SpatialAttributes(attributes, kernelRequired: false)
        groups = try attributes.int("group", default: 1)
        guard groups >= 1, groups <= 1 << 16 else { throw RuntimeError(code: .invalidModel, message: "group \(groups) is out of range (1...65536)") }
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
        guard let ws = w.shape, ws.count == 4, ws.allSatisfy({ $0 >= 0 && $0 <= Self.maximumSide }) else {
            throw failure("W must be [M, C/group, kH, kW] (2-D convolution)")
        }
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
        let window = try spatial.resolve(height: xs[2], width: xs[3], kernel: (ws[2], ws[3]))
        return [ValueType(dataType: .fp32, shape: [xs[0], ws[0], window.outputHeight, window.outputWidth])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let (x, w) = (inputs[0]!, inputs[1]!)
        let window = try spatial.resolve(height: x.shape[2], width: x.shape[3], kernel: (w.shape[2], w.shape[3]))
        let shape = Convolution2D(channels: x.shape[1], outputChannels: w.shape[0], groups: groups, window: window)
        // The scratch size from shapes a request chose: multiplied with overflow checks first.
        let cg = shape.channels / groups
        let columns = try Self.scratchFloats([cg, window.kernel.h, window.kernel.w, window.outputHeight, window.outputWidth], x.shape)
        let padded = try Self.scratchFloats([cg, window.paddedHeight, window.paddedWidth], x.shape)
        let grid = try Self.scratchFloats([w.shape[0] / groups, window.outputHeight, window.paddedWidth], x.shape)
        guard padded + max(columns, grid) <= Self.maximumScratchFloats else { throw Self.scratchTooLarge(x.shape) }
        // Depthwise convolutions run on the microkernels' vector loops unless products are on
        // OpenBLAS; those loops read the planes in place and need no scratch.
        let depthwiseKernels = shape.isDepthwise ? Microkernels.current : .off
        let scratchCount = depthwiseKernels != .off ? 0 : shape.scratchCount
        let scratch = TensorBuffer(byteCount: scratchCount * 4)
        let scratchPointer = scratchCount > 0 ? scratch.pointer.assumingMemoryBound(to: Float.self) : nil
        let (input, weights, bias, y) = (UnsafePointer(x.floats()), UnsafePointer(w.floats()), inputs.count > 2 ? inputs[2].map { UnsafePointer($0.floats()) } : nil, outputs[0].floats())
        let (batch, activation) = (x.shape[0], activation)
        let k = cg * window.kernel.h * window.kernel.w
        let m = shape.outputChannels / groups
        // The microkernels when the filters were packed at load.
        let micro = packedWeights.flatMap { $0.count == groups && $0.allSatisfy({ $0.rows == m && $0.columns == k }) ? $0 : nil }
        // The in-place products' row pointers, once per binding (k is at most `columns` above).
        let rows = micro != nil && shape.readsPlanesInPlace ? TensorBuffer(byteCount: k * MemoryLayout<UnsafePointer<Float>>.stride) : nil
        let rowsPointer = rows?.pointer.assumingMemoryBound(to: UnsafePointer<Float>?.self)
        return {
            _ = (scratch, rows)
            backend.convolve(shape, batch: batch, x: input, weights: weights, packedWeights: micro, bias: bias, y: y, scratch: scratchPointer,
                             activation: activation, planeRows: rowsPointer, depthwiseKernels: depthwiseKernels)
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
        let window = try spatial.resolve(height: xs[2], width: xs[3], kernel: (kernel[0], kernel[1]))
        return [ValueType(dataType: .fp32, shape: [xs[0], xs[1], window.outputHeight, window.outputWidth])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let pooling: Pooling2D
        if let spatial, let kernel = spatial.kernel {
            let window = try spatial.resolve(height: h, width: w, kernel: (kernel[0], kernel[1]))
            pooling = Pooling2D(kind: kind == .max ? .max : .average(countIncludePad: countIncludePad), window: window)
        } else {
            let whole = Window2D(height: h, width: w, kernel: (h, w), stride: (1, 1), dilation: (1, 1), pads: (0, 0, 0, 0), outputHeight: 1, outputWidth: 1)
            pooling = Pooling2D(kind: kind == .globalMax ? .max : .average(countIncludePad: false), window: whole)
        }
        let (input, y) = (UnsafePointer(x.floats()), outputs[0].floats())
        let kernels = Microkernels.current
        return { backend.pool(pooling, planes: n * c, x: input, y: y, kernels: kernels) }
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
        alpha = swish ? Activation.hardSwishGate.alpha : try attributes.float("alpha", default: 0.2)
        beta = swish ? Activation.hardSwishGate.beta : try attributes.float("beta", default: 0.5)
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
            backend.hardSigmoid(input, out, count: count, alpha: alpha, beta: beta, swish: swish)
        }
    }
}

/// ConvTranspose (2-D, NCHW, FP32): groups, strides, dilations, pads, output_padding, bias.
/// Per image and group `Wᵀ · X` by sgemm gives every kernel tap's contribution per input pixel;
/// col2im adds them into the output. `output_shape` and `auto_pad` are refused (not written).
struct ConvTransposeOperator: Operator {
    let strides: [Int]
    let dilations: [Int]
    let pads: [Int]
    let outputPadding: [Int]
    let groups: Int

    init(attributes: NodeAttributes) throws(RuntimeError) {
        strides = try attributes.ints("strides") ?? [1, 1]
        dilations = try attributes.ints("dilations") ?? [1, 1]
        pads = try attributes.ints("pads") ?? [0, 0, 0, 0]
        outputPadding = try attributes.ints("output_padding") ?? [0, 0]
        groups = try attributes.int("group", default: 1)
        if attributes.has("output_shape") {
            throw RuntimeError(code: .unsupportedOperator, message: "attribute 'output_shape' is not supported; give pads and output_padding")
        }
        if try attributes.string("auto_pad", default: "NOTSET") != "NOTSET" {
            throw RuntimeError(code: .unsupportedOperator, message: "attribute 'auto_pad' other than NOTSET is not supported; give pads")
        }
        guard strides.count == 2, dilations.count == 2, pads.count == 4, outputPadding.count == 2 else {
            throw RuntimeError(code: .unsupportedOperator, message: "only 2-D (NCHW) ConvTranspose is supported")
        }
        guard 1...(1 << 16) ~= groups, strides.allSatisfy({ 1...(1 << 16) ~= $0 }), dilations.allSatisfy({ 1...(1 << 16) ~= $0 }),
              pads.allSatisfy({ 0...(1 << 16) ~= $0 }), outputPadding.allSatisfy({ 0...(1 << 16) ~= $0 }) else {
            throw RuntimeError(code: .invalidModel, message: "group, strides, dilations, pads or output_padding out of range")
        }
    }

    func outputSize(_ input: Int, _ axis: Int, _ kernel: Int) -> Int {
        strides[axis] * (input - 1) + outputPadding[axis] + (kernel - 1) * dilations[axis] + 1 - pads[axis] - pads[axis + 2]
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        let w = try required(inputs, 1, "W")
        guard x.dataType == .fp32, w.dataType == .fp32 else { throw unsupported(x.dataType == .fp32 ? w.dataType : x.dataType, "FP32") }
        guard let ws = w.shape, ws.count == 4, ws.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }) else {
            throw failure("W must be [C, M/group, kH, kW] (2-D)")
        }
        let m = ws[1] * groups
        if let b = optional(inputs, 2), b.shape != nil, b.shape! != [m] { throw failure("B must be [\(m)]") }
        guard let xs = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard xs.count == 4 else { throw failure("X has rank \(xs.count); ConvTranspose takes [N, C, H, W]") }
        if xs[1] >= 0, xs[1] != ws[0] { throw failure("X has \(xs[1]) channels, W \(ws[0])") }
        guard ws[0] % groups == 0 else { throw failure("W's \(ws[0]) input channels are not a multiple of group \(groups)") }
        guard xs[2] >= 1, xs[3] >= 1 else { return [ValueType(dataType: .fp32, shape: [xs[0], m, -1, -1])] }
        guard xs[2] <= ConvOperator.maximumSide, xs[3] <= ConvOperator.maximumSide else {
            throw failure("a \(xs[2])×\(xs[3]) plane is larger than \(ConvOperator.maximumSide) on a side")
        }
        let (oh, ow) = (outputSize(xs[2], 0, ws[2]), outputSize(xs[3], 1, ws[3]))
        guard oh >= 1, ow >= 1 else { throw failure("pads leave no output for a \(xs[2])×\(xs[3]) input") }
        return [ValueType(dataType: .fp32, shape: [xs[0], m, oh, ow])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let (x, w, y) = (inputs[0]!, inputs[1]!, outputs[0])
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (mg, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        let (oh, ow) = (y.shape[2], y.shape[3])
        let cg = c / groups
        let columns = try ConvOperator.scratchFloats([mg, kh, kw, h, wd], x.shape)
        let scratch = TensorBuffer(byteCount: columns * 4)
        let col = scratch.pointer.assumingMemoryBound(to: Float.self)
        let (input, weights, out) = (UnsafePointer(x.floats()), UnsafePointer(w.floats()), y.floats())
        let bias = inputs.count > 2 ? inputs[2].map { UnsafePointer($0.floats()) } : nil
        let (groups, strides, dilations, pads) = (groups, strides, dilations, pads)
        return {
            _ = scratch
            let m = mg * groups
            for image in 0..<n {
                let target = out + image * m * oh * ow
                for channel in 0..<m {
                    (target + channel * oh * ow).update(repeating: bias?[channel] ?? 0, count: oh * ow)
                }
                for g in 0..<groups {
                    backend.sgemm(
                        transposeA: true, transposeB: false, m: mg * kh * kw, n: h * wd, k: cg, alpha: 1,
                        a: weights + g * cg * mg * kh * kw, lda: mg * kh * kw,
                        b: input + (image * c + g * cg) * h * wd, ldb: h * wd, beta: 0, c: col, ldc: h * wd)
                    // col2im: row (m, kh, kw), column (i, j) lands on (i·s − pad + kh·d, j·s − pad + kw·d).
                    for om in 0..<mg {
                        let plane = target + (g * mg + om) * oh * ow
                        for a in 0..<kh {
                            for b in 0..<kw {
                                let row = col + ((om * kh + a) * kw + b) * h * wd
                                for i in 0..<h {
                                    let oi = i * strides[0] - pads[0] + a * dilations[0]
                                    guard oi >= 0, oi < oh else { continue }
                                    for j in 0..<wd {
                                        let oj = j * strides[1] - pads[1] + b * dilations[1]
                                        if oj >= 0, oj < ow { plane[oi * ow + oj] += row[i * wd + j] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Resize (opsets 10–19) on the last two axes of a 4-D FP32 tensor: `nearest` (round_prefer_floor,
/// round_prefer_ceil, floor, ceil) and `linear` (bilinear), coordinate transformation modes
/// half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn. Scales or
/// sizes must be known while planning (constants). Others (cubic, tf_crop_and_resize,
/// antialias, axes, keep_aspect_ratio_policy) are refused by name.
struct ResizeOperator: Operator {
    enum Mode: String { case nearest, linear }
    enum Rounding: String { case roundPreferFloor = "round_prefer_floor", roundPreferCeil = "round_prefer_ceil", floor, ceil }
    enum Coordinates: String {
        case halfPixel = "half_pixel", pytorchHalfPixel = "pytorch_half_pixel", alignCorners = "align_corners"
        case asymmetric, tfHalfPixelForNN = "tf_half_pixel_for_nn"
    }
    let mode: Mode
    let rounding: Rounding
    let coordinates: Coordinates
    let opset: Int

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        self.opset = opset
        let modeName = try attributes.string("mode", default: "nearest")
        guard let mode = Mode(rawValue: modeName) else {
            throw RuntimeError(code: .unsupportedOperator, message: "mode '\(modeName)' is not supported (supported: nearest, linear)")
        }
        self.mode = mode
        let roundingName = try attributes.string("nearest_mode", default: "round_prefer_floor")
        guard let rounding = Rounding(rawValue: roundingName) else {
            throw RuntimeError(code: .invalidModel, message: "nearest_mode '\(roundingName)' is not round_prefer_floor, round_prefer_ceil, floor or ceil")
        }
        self.rounding = rounding
        let defaultCoordinates = opset >= 11 ? "half_pixel" : "asymmetric"
        let coordinateName = try attributes.string("coordinate_transformation_mode", default: defaultCoordinates)
        guard let coordinates = Coordinates(rawValue: coordinateName) else {
            throw RuntimeError(code: .unsupportedOperator, message: "coordinate_transformation_mode '\(coordinateName)' is not supported (supported: half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn)")
        }
        self.coordinates = coordinates
        if try attributes.int("antialias", default: 0) != 0 { throw RuntimeError(code: .unsupportedOperator, message: "attribute 'antialias' 1 is not supported") }
        if attributes.has("axes") { throw RuntimeError(code: .unsupportedOperator, message: "attribute 'axes' is not supported; give scales for every axis") }
        if try attributes.string("keep_aspect_ratio_policy", default: "stretch") != "stretch" {
            throw RuntimeError(code: .unsupportedOperator, message: "keep_aspect_ratio_policy other than 'stretch' is not supported")
        }
    }

    /// The source coordinate of each output row and column (onnxruntime uses the given scales).
    func sourceCoordinates(_ planned: (scales: [Double], out: [Int]), height h: Int, width w: Int) -> (rows: [Double], columns: [Double]) {
        let coordinates = coordinates
        func source(_ o: Int, scale: Double, input: Int, output: Int) -> Double {
            let x = Double(o)
            switch coordinates {
            case .halfPixel: return (x + 0.5) / scale - 0.5
            case .pytorchHalfPixel: return output > 1 ? (x + 0.5) / scale - 0.5 : 0
            case .alignCorners: return output == 1 ? 0 : x * Double(input - 1) / Double(output - 1)
            case .asymmetric: return x / scale
            case .tfHalfPixelForNN: return (x + 0.5) / scale
            }
        }
        let (oh, ow) = (planned.out[2], planned.out[3])
        return ((0..<oh).map { source($0, scale: planned.scales[2], input: h, output: oh) },
                (0..<ow).map { source($0, scale: planned.scales[3], input: w, output: ow) })
    }

    /// The input index nearest source coordinate `v` by this node's rounding, in `0..<limit`.
    func nearestIndex(_ v: Double, _ limit: Int) -> Int {
        let index: Double
        switch rounding {
        case .roundPreferFloor: index = v == v.rounded(.down) + 0.5 ? v.rounded(.down) : v.rounded()
        case .roundPreferCeil: index = v == v.rounded(.down) + 0.5 ? v.rounded(.up) : v.rounded()
        case .floor: index = v.rounded(.down)
        case .ceil: index = v.rounded(.up)
        }
        guard index.isFinite else { return 0 }
        return Int(Swift.min(Swift.max(index, 0), Double(limit - 1)))
    }

    /// Linear interpolation at source coordinate `v`: the two input indices and the second's weight.
    static func linearTaps(_ v: Double, _ limit: Int) -> (Int, Int, Float) {
        guard v.isFinite else { return (0, 0, 0) }
        let clamped = Swift.min(Swift.max(v, 0), Double(limit - 1))
        let low = Int(clamped.rounded(.down))
        return (low, Swift.min(low + 1, limit - 1), Float(clamped - Double(low)))
    }

    /// Scales (per axis) and output shape from the known scales or sizes input.
    func plan(_ inputs: [ValueType?], shape: [Int]) throws(RuntimeError) -> (scales: [Double], out: [Int])? {
        let scalesInput = opset < 11 ? optional(inputs, 1) : optional(inputs, 2)
        let sizesInput = opset < 11 ? nil : optional(inputs, 3)
        if let sizes = sizesInput, sizes.shape?.reduce(1, *) ?? 1 > 0 {
            guard let values = sizes.values else { return nil }
            guard values.count == shape.count, values.allSatisfy({ $0 >= 1 && $0 <= 1 << 24 }) else { throw failure("sizes \(values) do not fit X's rank \(shape.count)") }
            return (zip(values, shape).map { Double($0) / Double(max($1, 1)) }, values)
        }
        guard let scales = scalesInput, let values = scales.reals else { return nil }
        guard values.count == shape.count, values.allSatisfy({ $0 > 0 && $0 <= 65536 }) else {
            throw failure("scales \(values) do not fit X's rank \(shape.count)")
        }
        var out: [Int] = []
        for (scale, size) in zip(values, shape) {
            let value = (Double(size) * scale).rounded(.down)
            guard value >= 1, value <= Double(1 << 24) else { throw failure("scale \(scale) gives an output size of \(value)") }
            out.append(Int(value))
        }
        return (values, out)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        guard let shape = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard shape.count == 4 else { throw failure("X has rank \(shape.count); Resize takes [N, C, H, W]") }
        guard shape.allSatisfy({ $0 >= 0 }), let planned = try plan(inputs, shape: shape) else {
            return [ValueType(dataType: .fp32, shape: [shape[0], shape[1], -1, -1])]
        }
        guard planned.out[0] == shape[0], planned.out[1] == shape[1] else { throw failure("only the last two axes may be resized (scales \(planned.scales))") }
        return [ValueType(dataType: .fp32, shape: planned.out)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let types = inputs.map { $0.map(ValueType.init(known:)) }
        guard let planned = try plan(types, shape: x.shape) else { throw failure("scales or sizes must be known while planning (a constant)") }
        let (h, w, oh, ow) = (x.shape[2], x.shape[3], planned.out[2], planned.out[3])
        guard h >= 1, w >= 1 else { throw failure("X \(x.shape) has no pixels to resize into \(planned.out)") }
        let (rows, columns) = sourceCoordinates(planned, height: h, width: w)
        let planes = x.shape[0] * x.shape[1]
        let (input, out) = (UnsafePointer(x.floats()), outputs[0].floats())
        switch mode {
        case .nearest:
            let r = rows.map { nearestIndex($0, h) }
            let c = columns.map { nearestIndex($0, w) }
            return {
                for p in 0..<planes {
                    let (src, dst) = (input + p * h * w, out + p * oh * ow)
                    for i in 0..<oh {
                        let line = src + r[i] * w
                        for j in 0..<ow { dst[i * ow + j] = line[c[j]] }
                    }
                }
            }
        case .linear:
            let r = rows.map { Self.linearTaps($0, h) }
            let c = columns.map { Self.linearTaps($0, w) }
            return {
                for p in 0..<planes {
                    let (src, dst) = (input + p * h * w, out + p * oh * ow)
                    for i in 0..<oh {
                        let (r0, r1, fy) = r[i]
                        for j in 0..<ow {
                            let (c0, c1, fx) = c[j]
                            let top = src[r0 * w + c0] * (1 - fx) + src[r0 * w + c1] * fx
                            let bottom = src[r1 * w + c0] * (1 - fx) + src[r1 * w + c1] * fx
                            dst[i * ow + j] = top * (1 - fy) + bottom * fy
                        }
                    }
                }
            }
        }
    }
}

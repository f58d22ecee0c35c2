import CGEMM

/// 2-D convolution and pooling over NCHW FP32 tensors.
///
/// With the microkernels (`CPUBackend+PackedGEMM`) a convolution is one product per image and
/// group against its filters packed at load: stride-1 windows read the zero-padded planes in
/// place through row pointers, other strides through an im2col matrix, and a 1×1, stride-1,
/// unpadded convolution reads the image itself. Depthwise convolutions (one input and one output
/// channel per group) run CGEMM's vector loops (`fulcrum_depthwise_conv`), the planes split over
/// the threads. With `--microkernels off`, im2col + OpenBLAS `sgemm` (threaded by OpenBLAS) and
/// a scalar depthwise loop on the calling thread.

/// A 2-D sliding window over one plane: its geometry and the output size it gives (computed
/// once, by whoever resolves the operator's attributes: floor or ceil mode, auto_pad).
public struct Window2D: Sendable {
    public var height: Int
    public var width: Int
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)
    /// Top, left, bottom, right.
    public var pads: (top: Int, left: Int, bottom: Int, right: Int)
    public var outputHeight: Int
    public var outputWidth: Int

    public init(height: Int, width: Int, kernel: (h: Int, w: Int), stride: (h: Int, w: Int), dilation: (h: Int, w: Int),
                pads: (top: Int, left: Int, bottom: Int, right: Int), outputHeight: Int, outputWidth: Int) {
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.pads = pads
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }

    /// The input plane with its padding around it.
    public var paddedHeight: Int { height + pads.top + pads.bottom }
    public var paddedWidth: Int { width + pads.left + pads.right }
    public var isPadded: Bool { pads != (0, 0, 0, 0) }
}

/// A convolution's channels over a window.
public struct Convolution2D: Sendable {
    public var channels: Int
    public var outputChannels: Int
    public var groups: Int
    public var window: Window2D

    public init(channels: Int, outputChannels: Int, groups: Int, window: Window2D) {
        self.channels = channels
        self.outputChannels = outputChannels
        self.groups = groups
        self.window = window
    }

    /// Whether every group maps one input channel to one output channel (depthwise).
    public var isDepthwise: Bool { groups == channels && outputChannels == channels && groups > 1 }
    /// Whether the convolution is a plain matrix product per image (1×1, stride 1, no padding).
    public var isPointwise: Bool {
        window.kernel == (1, 1) && window.stride == (1, 1) && !window.isPadded
    }

    /// FP32 elements of the im2col matrix one group needs (0 when none is used).
    var columnCount: Int {
        isDepthwise || isPointwise ? 0 : (channels / groups) * window.kernel.h * window.kernel.w * window.outputHeight * window.outputWidth
    }
    /// FP32 elements of one group's (or, depthwise, one channel's) zero-padded input.
    var paddedCount: Int {
        window.isPadded && !isPointwise ? (isDepthwise ? 1 : channels / groups) * window.paddedHeight * window.paddedWidth : 0
    }

    /// Whether, with packed filters, the products read the (padded) planes in place: stride 1,
    /// a window wider than one pixel, not depthwise. The output is then computed on the padded
    /// width — `(outputHeight − 1) · paddedWidth + outputWidth` columns per channel, the extra
    /// ones discarded — because tap (kh, kw) of every output is then one shift of the planes.
    public var readsPlanesInPlace: Bool { window.stride == (1, 1) && !isPointwise && !isDepthwise }
    /// Output columns of one channel on the padded width (`readsPlanesInPlace`).
    var gridColumns: Int {
        (window.outputHeight - 1) * (window.isPadded ? window.paddedWidth : window.width) + window.outputWidth
    }
    /// FP32 elements of one group's output on the padded width (0 when not used).
    var gridCount: Int { readsPlanesInPlace && window.outputHeight > 0 ? (outputChannels / groups) * gridColumns : 0 }

    /// FP32 elements of scratch `convolve` needs: the padded input, then the im2col matrix or
    /// the output on the padded width (whichever is larger: the path is chosen per call).
    public var scratchCount: Int { paddedCount + max(columnCount, gridCount) }
}

extension CPUBackend {
    /// `y[n] = conv(x[n], weights) + bias`, then `activation`, for `batch` images.
    /// `weights`: `[outputChannels, channels / groups, kH, kW]`; `bias`: `outputChannels` or nil;
    /// `scratch`: `shape.scratchCount` floats. `packedWeights` (one left-packed filter matrix per
    /// group, `CPUBackend+PackedGEMM`) runs the products on the microkernels, with the bias and
    /// the activation; without it, OpenBLAS. `planeRows` (`channels / groups · kH · kW` pointers,
    /// owned by the caller once per binding) holds the in-place products' row pointers; without
    /// it they are built on the stack or heap per group. A depthwise convolution runs the vector
    /// loops of `depthwiseKernels` (no scratch needed), or with `.off` the scalar loop.
    public func convolve(
        _ shape: Convolution2D, batch: Int, x: UnsafePointer<Float>, weights: UnsafePointer<Float>, packedWeights: [PackedMatrix]? = nil,
        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?, activation: Activation,
        planeRows: UnsafeMutablePointer<UnsafePointer<Float>?>? = nil, depthwiseKernels: Microkernels = .off
    ) {
        if shape.isDepthwise, depthwiseKernels != .off {
            depthwise(shape, batch: batch, x: x, weights: weights, bias: bias, y: y, activation: activation, kernels: depthwiseKernels)
            return
        }
        let (oh, ow) = (shape.window.outputHeight, shape.window.outputWidth)
        let plane = oh * ow
        let inPlane = shape.window.height * shape.window.width
        let cg = shape.channels / shape.groups
        let mg = shape.outputChannels / shape.groups
        let k = cg * shape.window.kernel.h * shape.window.kernel.w
        for n in 0..<batch {
            let image = x + n * shape.channels * inPlane
            let out = y + n * shape.outputChannels * plane
            if shape.isDepthwise {
                for c in 0..<shape.channels {
                    let source = padded(shape, image + c * inPlane, channels: 1, scratch: scratch)
                    depthwise(shape, input: source, filter: weights + c * shape.window.kernel.h * shape.window.kernel.w,
                              bias: bias?[c] ?? 0, output: out + c * plane)
                }
            } else {
                for g in 0..<shape.groups {
                    let groupOut = out + g * mg * plane
                    if packedWeights == nil {
                        for m in 0..<mg {
                            let value = bias?[g * mg + m] ?? 0
                            (groupOut + m * plane).update(repeating: value, count: plane)
                        }
                    }
                    if let packedWeights, shape.readsPlanesInPlace {
                        productInPlace(shape, planes: image + g * cg * inPlane, filters: packedWeights[g],
                                       bias: bias.map { $0 + g * mg }, output: groupOut, scratch: scratch!, activation: activation,
                                       rows: planeRows)
                        continue
                    }
                    let columns: UnsafePointer<Float>
                    if shape.isPointwise {
                        columns = image + g * cg * inPlane
                    } else {
                        let source = padded(shape, image + g * cg * inPlane, channels: cg, scratch: scratch)
                        let matrix = scratch! + shape.paddedCount
                        im2col(shape, padded: source, channels: cg, into: matrix, kernels: packedWeights?.first?.kernels ?? .off)
                        columns = UnsafePointer(matrix)
                    }
                    if let packedWeights {
                        sgemm(left: packedWeights[g], n: plane, b: columns, ldb: plane, c: groupOut, ldc: plane,
                              rowBias: bias.map { $0 + g * mg }, activation: activation)
                    } else {
                        sgemm(transposeA: false, transposeB: false, m: mg, n: plane, k: k, alpha: 1,
                              a: weights + g * mg * k, lda: k, b: columns, ldb: plane, beta: 1, c: groupOut, ldc: plane)
                    }
                }
            }
            if shape.isDepthwise || packedWeights == nil {
                apply(activation, out, count: shape.outputChannels * plane)
            }
        }
    }

    /// One group's stride-1 convolution with no im2col matrix: B's row (c, kh, kw) is channel c's
    /// padded plane shifted by kh rows and kw columns, read in place; the product's columns are
    /// the outputs on the padded width (`gridColumns`), compacted into `output` afterwards.
    private func productInPlace(
        _ s: Convolution2D, planes: UnsafePointer<Float>, filters: PackedMatrix, bias: UnsafePointer<Float>?,
        output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, activation: Activation,
        rows given: UnsafeMutablePointer<UnsafePointer<Float>?>?
    ) {
        let cg = s.channels / s.groups
        let mg = s.outputChannels / s.groups
        let source = padded(s, planes, channels: cg, scratch: scratch)
        let (ph, pw) = s.window.isPadded ? (s.window.paddedHeight, s.window.paddedWidth) : (s.window.height, s.window.width)
        let (oh, ow) = (s.window.outputHeight, s.window.outputWidth)
        let n = s.gridColumns
        guard oh > 0, ow > 0 else { return }
        let grid = scratch + s.paddedCount
        let (kh, kw) = s.window.kernel
        func product(_ rows: UnsafeMutablePointer<UnsafePointer<Float>?>) {
            var r = 0
            for c in 0..<cg {
                for i in 0..<kh {
                    for j in 0..<kw {
                        rows[r] = source + c * ph * pw + i * s.window.dilation.h * pw + j * s.window.dilation.w
                        r += 1
                    }
                }
            }
            sgemm(left: filters, n: n, rows: UnsafePointer(rows), c: grid, ldc: n, rowBias: bias, activation: activation)
        }
        if let given {
            product(given)
        } else {
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: cg * kh * kw) { product($0.baseAddress!) }
        }
        for m in 0..<mg {
            for i in 0..<oh {
                (output + m * oh * ow + i * ow).update(from: grid + m * n + i * pw, count: ow)
            }
        }
    }

    /// `channels` planes with their zero padding written around them (at the start of
    /// `scratch`), or the planes themselves when the convolution has no padding.
    private func padded(_ s: Convolution2D, _ planes: UnsafePointer<Float>, channels: Int, scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        guard s.window.isPadded, let scratch else { return planes }
        let (ph, pw) = (s.window.paddedHeight, s.window.paddedWidth)
        scratch.update(repeating: 0, count: channels * ph * pw)
        for c in 0..<channels {
            for h in 0..<s.window.height {
                (scratch + c * ph * pw + (h + s.window.pads.top) * pw + s.window.pads.left)
                    .update(from: planes + c * s.window.height * s.window.width + h * s.window.width, count: s.window.width)
            }
        }
        return UnsafePointer(scratch)
    }

    /// Rows `(c, kh, kw)`, columns `(oh, ow)`: the value each kernel tap sees, read from the
    /// zero-padded planes (no bounds checks; a stride of 1 copies whole rows).
    /// A stride of 2 copies through the microkernels' vector permutes when `kernels` has them.
    private func im2col(
        _ s: Convolution2D, padded input: UnsafePointer<Float>, channels: Int, into columns: UnsafeMutablePointer<Float>,
        kernels: Microkernels
    ) {
        let (oh, ow) = (s.window.outputHeight, s.window.outputWidth)
        let (ph, pw) = s.window.isPadded ? (s.window.paddedHeight, s.window.paddedWidth) : (s.window.height, s.window.width)
        var row = columns
        for c in 0..<channels {
            let channel = input + c * ph * pw
            for kh in 0..<s.window.kernel.h {
                for kw in 0..<s.window.kernel.w {
                    for i in 0..<oh {
                        let line = channel + (i * s.window.stride.h + kh * s.window.dilation.h) * pw + kw * s.window.dilation.w
                        let target = row + i * ow
                        if s.window.stride.w == 1 {
                            target.update(from: line, count: ow)
                        } else if kernels != .off {
                            fulcrum_copy_strided(Int32(kernels.rawValue), target, line, ow, s.window.stride.w)
                        } else {
                            for j in 0..<ow { target[j] = line[j * s.window.stride.w] }
                        }
                    }
                    row += oh * ow
                }
            }
        }
    }

    /// Every depthwise plane of the batch on the microkernels' vector loops (CGEMM's
    /// `fulcrum_depthwise_conv`: no padded copy, each output stored once, planes split over
    /// `BLASThreading`'s threads); Relu and HardSwish inside the loop, other activations afterwards.
    private func depthwise(
        _ s: Convolution2D, batch: Int, x: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>, activation: Activation, kernels: Microkernels
    ) {
        let w = s.window
        var window = FulcrumWindow(
            height: w.height, width: w.width, kernel_h: w.kernel.h, kernel_w: w.kernel.w, stride_h: w.stride.h, stride_w: w.stride.w,
            dilation_h: w.dilation.h, dilation_w: w.dilation.w, pad_top: w.pads.top, pad_left: w.pads.left,
            out_h: w.outputHeight, out_w: w.outputWidth)
        let inLoop = activation == .relu || activation == .hardSwish
        fulcrum_depthwise_conv(Int32(kernels.rawValue), &window, batch * s.channels, s.channels, x, weights, bias, y,
                               Self.epilogue(inLoop ? activation : .none), Int32(clamping: BLASThreading.threadCount))
        if !inLoop {
            apply(activation, y, count: batch * s.outputChannels * w.outputHeight * w.outputWidth)
        }
    }

    /// One depthwise channel over its zero-padded plane.
    private func depthwise(_ s: Convolution2D, input: UnsafePointer<Float>, filter: UnsafePointer<Float>, bias: Float, output: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (s.window.outputHeight, s.window.outputWidth)
        let pw = s.window.isPadded ? s.window.paddedWidth : s.window.width
        output.update(repeating: bias, count: oh * ow)
        for kh in 0..<s.window.kernel.h {
            for kw in 0..<s.window.kernel.w {
                let weight = filter[kh * s.window.kernel.w + kw]
                for i in 0..<oh {
                    let line = input + (i * s.window.stride.h + kh * s.window.dilation.h) * pw + kw * s.window.dilation.w
                    let target = output + i * ow
                    if s.window.stride.w == 1 {
                        for j in 0..<ow { target[j] += weight * line[j] }
                    } else {
                        for j in 0..<ow { target[j] += weight * line[j * s.window.stride.w] }
                    }
                }
            }
        }
    }
}

/// Max and average pooling over a window (planes = batch × channels).
public struct Pooling2D: Sendable {
    public enum Kind: Sendable, Equatable { case max, average(countIncludePad: Bool) }
    public var kind: Kind
    public var window: Window2D

    public init(kind: Kind, window: Window2D) {
        self.kind = kind
        self.window = window
    }
}

extension CPUBackend {
    /// Pools `planes` planes of `height × width` into `outputHeight × outputWidth`. Average:
    /// without `countIncludePad` divides by the taps inside the input; with it, by the taps
    /// inside the padded input (onnxruntime's rule, which leaves out a ceil_mode overhang).
    /// The planes are split over `BLASThreading`'s threads (the microkernels' helpers) when
    /// there are at least 2¹⁶ taps to visit. Max pooling's taps of strides 1 and 2 run on the
    /// vector loops of `kernels` (`fulcrum_max_strided`); `.off`, a scalar loop.
    public func pool(_ p: Pooling2D, planes: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, kernels: Microkernels = .off) {
        let w = p.window
        let (inPlane, outPlane) = (w.height * w.width, w.outputHeight * w.outputWidth)
        let taps = Double(planes) * Double(outPlane) * Double(w.kernel.h * w.kernel.w)
        let threads = BLASThreading.threadCount
        guard threads > 1, planes > 1, taps >= 65536 else {
            poolPlanes(p, planes: planes, x: x, y: y, kernels: kernels)
            return
        }
        Self.parallelFor(count: planes, parts: min(planes, 4 * threads)) { _, range in
            poolPlanes(p, planes: range.count, x: x + range.lowerBound * inPlane, y: y + range.lowerBound * outPlane, kernels: kernels)
        }
    }

    private func poolPlanes(_ p: Pooling2D, planes: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, kernels: Microkernels) {
        let (oh, ow) = (p.window.outputHeight, p.window.outputWidth)
        if p.kind == .max {
            maxPool(p.window, planes: planes, x: x, y: y, kernels: kernels)
            return
        }
        guard case .average(let includePad) = p.kind else { return }
        let w = p.window
        for plane in 0..<planes {
            let input = x + plane * w.height * w.width
            let output = y + plane * oh * ow
            for i in 0..<oh {
                let h0 = i * w.stride.h - w.pads.top
                let hEnd = min(h0 + w.kernel.h, w.height + w.pads.bottom)
                let (hs, he) = (max(h0, 0), min(hEnd, w.height))
                for j in 0..<ow {
                    let w0 = j * w.stride.w - w.pads.left
                    let wEnd = min(w0 + w.kernel.w, w.width + w.pads.right)
                    let (ws, we) = (max(w0, 0), min(wEnd, w.width))
                    var sum: Float = 0
                    if hs < he, ws < we {
                        for h in hs..<he {
                            for c in ws..<we { sum += input[h * w.width + c] }
                        }
                    }
                    let count = includePad ? (hEnd - h0) * (wEnd - w0) : max(0, he - hs) * max(0, we - ws)
                    output[i * ow + j] = count > 0 ? sum / Float(count) : 0
                }
            }
        }
    }

    /// Max pooling tap by tap: for each output row and each kernel tap inside the input, the
    /// output columns whose tap lands inside it (a range, computed once) take the maximum, with
    /// no bounds check per element. A window wholly in the padding gives -infinity (as the
    /// per-window loop did).
    private func maxPool(_ w: Window2D, planes: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, kernels: Microkernels) {
        let (oh, ow) = (w.outputHeight, w.outputWidth)
        // Per kernel column: the output columns whose tap is inside the row, and its offset.
        var columns: [(low: Int, high: Int, offset: Int)] = []
        for kw in 0..<w.kernel.w {
            let offset = kw * w.dilation.w - w.pads.left
            // j · stride + offset ∈ [0, width)
            let low = offset >= 0 ? 0 : (-offset + w.stride.w - 1) / w.stride.w
            let high = w.width - 1 - offset < 0 ? 0 : min(ow, (w.width - 1 - offset) / w.stride.w + 1)
            columns.append((low, max(low, high), offset))
        }
        let sw = w.stride.w
        for plane in 0..<planes {
            let input = x + plane * w.height * w.width
            let output = y + plane * oh * ow
            for i in 0..<oh {
                let row = output + i * ow
                row.update(repeating: -.infinity, count: ow)
                let h0 = i * w.stride.h - w.pads.top
                for kh in 0..<w.kernel.h {
                    let h = h0 + kh * w.dilation.h
                    guard h >= 0, h < w.height else { continue }
                    let line = input + h * w.width
                    for column in columns where column.low < column.high {
                        let source = line + column.offset
                        if kernels != .off, sw <= 2 {
                            fulcrum_max_strided(Int32(kernels.rawValue), row + column.low, source + column.low * sw, column.high - column.low, sw)
                            continue
                        }
                        // A select, not a branch: the comparisons of real data are unpredictable.
                        if sw == 1 {
                            for j in column.low..<column.high {
                                let (v, r) = (source[j], row[j])
                                row[j] = v > r ? v : r
                            }
                        } else {
                            for j in column.low..<column.high {
                                let (v, r) = (source[j * sw], row[j])
                                row[j] = v > r ? v : r
                            }
                        }
                    }
                }
            }
        }
    }
}

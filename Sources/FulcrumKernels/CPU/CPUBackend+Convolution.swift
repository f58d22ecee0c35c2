/// 2-D convolution and pooling over NCHW FP32 tensors.
///
/// Convolution is im2col + `sgemm` per image and group (a 1×1, stride-1, unpadded convolution
/// skips im2col: the image already is the matrix); depthwise convolutions (one input and one
/// output channel per group) run a direct loop instead, where a one-row `sgemm` would waste
/// its packing. Threading is OpenBLAS's inside `sgemm` (BLASThreading); the loops here run on
/// the calling thread.
public struct Convolution2D: Sendable, Equatable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var outputChannels: Int
    public var groups: Int
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)
    /// Top, left, bottom, right.
    public var pads: (top: Int, left: Int, bottom: Int, right: Int)

    public init(channels: Int, height: Int, width: Int, outputChannels: Int, groups: Int, kernel: (h: Int, w: Int),
                stride: (h: Int, w: Int), dilation: (h: Int, w: Int), pads: (top: Int, left: Int, bottom: Int, right: Int)) {
        self.channels = channels
        self.height = height
        self.width = width
        self.outputChannels = outputChannels
        self.groups = groups
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.pads = pads
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.channels == b.channels && a.height == b.height && a.width == b.width && a.outputChannels == b.outputChannels
            && a.groups == b.groups && a.kernel == b.kernel && a.stride == b.stride && a.dilation == b.dilation && a.pads == b.pads
    }

    /// Output rows and columns: `⌊(in + pads − dilation·(k − 1) − 1) / stride⌋ + 1`.
    public var outputHeight: Int { (height + pads.top + pads.bottom - dilation.h * (kernel.h - 1) - 1) / stride.h + 1 }
    public var outputWidth: Int { (width + pads.left + pads.right - dilation.w * (kernel.w - 1) - 1) / stride.w + 1 }

    /// Whether every group maps one input channel to one output channel (depthwise).
    public var isDepthwise: Bool { groups == channels && outputChannels == channels && groups > 1 }
    /// Whether the convolution is a plain matrix product per image (1×1, stride 1, no padding).
    public var isPointwise: Bool {
        kernel == (1, 1) && stride == (1, 1) && pads == (0, 0, 0, 0)
    }

    /// The input plane with its padding around it.
    var paddedHeight: Int { height + pads.top + pads.bottom }
    var paddedWidth: Int { width + pads.left + pads.right }
    var isPadded: Bool { pads != (0, 0, 0, 0) }

    /// FP32 elements of the im2col matrix one group needs (0 when none is used).
    var columnCount: Int { isDepthwise || isPointwise ? 0 : (channels / groups) * kernel.h * kernel.w * outputHeight * outputWidth }
    /// FP32 elements of one group's (or, depthwise, one channel's) zero-padded input.
    var paddedCount: Int { isPadded && !isPointwise ? (isDepthwise ? 1 : channels / groups) * paddedHeight * paddedWidth : 0 }

    /// FP32 elements of scratch `convolve` needs: the padded input, then the im2col matrix.
    public var scratchCount: Int { paddedCount + columnCount }
}

extension CPUBackend {
    /// `y[n] = conv(x[n], weights) + bias`, then `activation`, for `batch` images.
    /// `weights`: `[outputChannels, channels / groups, kH, kW]`; `bias`: `outputChannels` or nil;
    /// `scratch`: `shape.scratchCount` floats.
    public func convolve(
        _ shape: Convolution2D, batch: Int, x: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?, activation: Activation
    ) {
        let (oh, ow) = (shape.outputHeight, shape.outputWidth)
        let plane = oh * ow
        let inPlane = shape.height * shape.width
        let cg = shape.channels / shape.groups
        let mg = shape.outputChannels / shape.groups
        let k = cg * shape.kernel.h * shape.kernel.w
        for n in 0..<batch {
            let image = x + n * shape.channels * inPlane
            let out = y + n * shape.outputChannels * plane
            if shape.isDepthwise {
                for c in 0..<shape.channels {
                    let source = padded(shape, image + c * inPlane, channels: 1, scratch: scratch)
                    depthwise(shape, input: source, filter: weights + c * shape.kernel.h * shape.kernel.w,
                              bias: bias?[c] ?? 0, output: out + c * plane)
                }
            } else {
                for g in 0..<shape.groups {
                    let groupOut = out + g * mg * plane
                    for m in 0..<mg {
                        let value = bias?[g * mg + m] ?? 0
                        (groupOut + m * plane).update(repeating: value, count: plane)
                    }
                    let columns: UnsafePointer<Float>
                    if shape.isPointwise {
                        columns = image + g * cg * inPlane
                    } else {
                        let source = padded(shape, image + g * cg * inPlane, channels: cg, scratch: scratch)
                        let matrix = scratch! + shape.paddedCount
                        im2col(shape, padded: source, channels: cg, into: matrix)
                        columns = UnsafePointer(matrix)
                    }
                    sgemm(transposeA: false, transposeB: false, m: mg, n: plane, k: k, alpha: 1,
                          a: weights + g * mg * k, lda: k, b: columns, ldb: plane, beta: 1, c: groupOut, ldc: plane)
                }
            }
            apply(activation, out, count: shape.outputChannels * plane)
        }
    }

    /// `channels` planes with their zero padding written around them (at the start of
    /// `scratch`), or the planes themselves when the convolution has no padding.
    private func padded(_ s: Convolution2D, _ planes: UnsafePointer<Float>, channels: Int, scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        guard s.isPadded, let scratch else { return planes }
        let (ph, pw) = (s.paddedHeight, s.paddedWidth)
        scratch.update(repeating: 0, count: channels * ph * pw)
        for c in 0..<channels {
            for h in 0..<s.height {
                (scratch + c * ph * pw + (h + s.pads.top) * pw + s.pads.left)
                    .update(from: planes + c * s.height * s.width + h * s.width, count: s.width)
            }
        }
        return UnsafePointer(scratch)
    }

    /// Rows `(c, kh, kw)`, columns `(oh, ow)`: the value each kernel tap sees, read from the
    /// zero-padded planes (no bounds checks; a stride of 1 copies whole rows).
    private func im2col(_ s: Convolution2D, padded input: UnsafePointer<Float>, channels: Int, into columns: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (s.outputHeight, s.outputWidth)
        let (ph, pw) = s.isPadded ? (s.paddedHeight, s.paddedWidth) : (s.height, s.width)
        var row = columns
        for c in 0..<channels {
            let channel = input + c * ph * pw
            for kh in 0..<s.kernel.h {
                for kw in 0..<s.kernel.w {
                    for i in 0..<oh {
                        let line = channel + (i * s.stride.h + kh * s.dilation.h) * pw + kw * s.dilation.w
                        let target = row + i * ow
                        if s.stride.w == 1 {
                            target.update(from: line, count: ow)
                        } else {
                            for j in 0..<ow { target[j] = line[j * s.stride.w] }
                        }
                    }
                    row += oh * ow
                }
            }
        }
    }

    /// One depthwise channel over its zero-padded plane.
    private func depthwise(_ s: Convolution2D, input: UnsafePointer<Float>, filter: UnsafePointer<Float>, bias: Float, output: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (s.outputHeight, s.outputWidth)
        let pw = s.isPadded ? s.paddedWidth : s.width
        output.update(repeating: bias, count: oh * ow)
        for kh in 0..<s.kernel.h {
            for kw in 0..<s.kernel.w {
                let weight = filter[kh * s.kernel.w + kw]
                for i in 0..<oh {
                    let line = input + (i * s.stride.h + kh * s.dilation.h) * pw + kw * s.dilation.w
                    let target = output + i * ow
                    if s.stride.w == 1 {
                        for j in 0..<ow { target[j] += weight * line[j] }
                    } else {
                        for j in 0..<ow { target[j] += weight * line[j * s.stride.w] }
                    }
                }
            }
        }
    }
}

/// Max and average pooling windows over NCHW FP32 (planes = batch × channels).
public struct Pooling2D: Sendable {
    public enum Kind: Sendable, Equatable { case max, average(countIncludePad: Bool) }
    public var kind: Kind
    public var height: Int
    public var width: Int
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)
    public var pads: (top: Int, left: Int, bottom: Int, right: Int)
    public var outputHeight: Int
    public var outputWidth: Int

    public init(kind: Kind, height: Int, width: Int, kernel: (h: Int, w: Int), stride: (h: Int, w: Int), dilation: (h: Int, w: Int),
                pads: (top: Int, left: Int, bottom: Int, right: Int), outputHeight: Int, outputWidth: Int) {
        self.kind = kind
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.pads = pads
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }
}

extension CPUBackend {
    /// Pools `planes` planes of `height × width` into `outputHeight × outputWidth`. Average:
    /// without `countIncludePad` divides by the taps inside the input; with it, by the taps
    /// inside the padded input (onnxruntime's rule, which leaves out a ceil_mode overhang).
    public func pool(_ p: Pooling2D, planes: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (p.outputHeight, p.outputWidth)
        for plane in 0..<planes {
            let input = x + plane * p.height * p.width
            let output = y + plane * oh * ow
            for i in 0..<oh {
                for j in 0..<ow {
                    let h0 = i * p.stride.h - p.pads.top
                    let w0 = j * p.stride.w - p.pads.left
                    switch p.kind {
                    case .max:
                        var best = -Float.infinity
                        for kh in 0..<p.kernel.h {
                            let h = h0 + kh * p.dilation.h
                            guard h >= 0, h < p.height else { continue }
                            for kw in 0..<p.kernel.w {
                                let w = w0 + kw * p.dilation.w
                                if w >= 0, w < p.width { best = max(best, input[h * p.width + w]) }
                            }
                        }
                        output[i * ow + j] = best
                    case .average(let includePad):
                        let hEnd = min(h0 + p.kernel.h, p.height + p.pads.bottom)
                        let wEnd = min(w0 + p.kernel.w, p.width + p.pads.right)
                        let padded = (hEnd - h0) * (wEnd - w0)
                        let (hs, ws, he, we) = (max(h0, 0), max(w0, 0), min(hEnd, p.height), min(wEnd, p.width))
                        var sum: Float = 0
                        if hs < he, ws < we {
                            for h in hs..<he {
                                for w in ws..<we { sum += input[h * p.width + w] }
                            }
                        }
                        let count = includePad ? padded : max(0, he - hs) * max(0, we - ws)
                        output[i * ow + j] = count > 0 ? sum / Float(count) : 0
                    }
                }
            }
        }
    }
}

import FulcrumKernels
import Testing

/// Convolution, pooling and HardSigmoid/HardSwish kernels against `CPUBackend` (and the CPU
/// plan's HardSigmoid formula) on seeded random inputs: odd sizes, strides, asymmetric pads,
/// dilations, groups, depthwise (with and without a channel multiplier), 1×1, bias and every
/// fused activation, several images per batch. Tolerance: relative L2 ≤ 1e-5 (the direct kernel
/// and the im2col + sgemm path add the taps in another order than OpenBLAS).
@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanConvolutionTests {
    /// A window as the runtime resolves it (explicit pads; floor or ceil mode with the ONNX rule
    /// that a last window starts inside the input or its leading padding).
    static func window(
        _ h: Int, _ w: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1), dilation: (Int, Int) = (1, 1),
        pads: (Int, Int, Int, Int) = (0, 0, 0, 0), ceil: Bool = false
    ) -> Window2D {
        func size(_ input: Int, _ before: Int, _ after: Int, _ k: Int, _ d: Int, _ s: Int) -> Int {
            let span = input + before + after - ((k - 1) * d + 1)
            var out = (ceil ? (span + s - 1) / s : span / s) + 1
            if ceil, (out - 1) * s >= input + before { out -= 1 }
            return out
        }
        return Window2D(
            height: h, width: w, kernel: kernel, stride: stride, dilation: dilation, pads: pads,
            outputHeight: size(h, pads.0, pads.2, kernel.0, dilation.0, stride.0),
            outputWidth: size(w, pads.1, pads.3, kernel.1, dilation.1, stride.1))
    }

    struct ConvCase: Sendable, CustomStringConvertible {
        var name: String
        var batch: Int
        var channels: Int
        var outputChannels: Int
        var groups: Int
        var window: Window2D
        var bias: Bool
        var activation: Activation
        var description: String { name }
        var shape: Convolution2D { Convolution2D(channels: channels, outputChannels: outputChannels, groups: groups, window: window) }
    }

    static let convCases: [ConvCase] = [
        ConvCase(name: "3x3 pad 1, bias, relu", batch: 1, channels: 3, outputChannels: 8, groups: 1,
                 window: window(17, 13, kernel: (3, 3), pads: (1, 1, 1, 1)), bias: true, activation: .relu),
        ConvCase(name: "stem 7x7 stride 2 pad 3, two images", batch: 2, channels: 3, outputChannels: 16, groups: 1,
                 window: window(37, 41, kernel: (7, 7), stride: (2, 2), pads: (3, 3, 3, 3)), bias: true, activation: .relu),
        ConvCase(name: "2 groups, 3x2 kernel, strides 2x1, asymmetric pads", batch: 2, channels: 4, outputChannels: 6, groups: 2,
                 window: window(11, 9, kernel: (3, 2), stride: (2, 1), pads: (0, 1, 2, 0)), bias: false, activation: .none),
        ConvCase(name: "depthwise 3x3 stride 2 pad 1, three images", batch: 3, channels: 8, outputChannels: 8, groups: 8,
                 window: window(15, 15, kernel: (3, 3), stride: (2, 2), pads: (1, 1, 1, 1)), bias: true, activation: .none),
        ConvCase(name: "depthwise with channel multiplier 2", batch: 1, channels: 4, outputChannels: 8, groups: 4,
                 window: window(10, 7, kernel: (3, 3), pads: (1, 1, 1, 1)), bias: true, activation: .tanh),
        ConvCase(name: "pointwise 1x1, bias, sigmoid", batch: 2, channels: 5, outputChannels: 7, groups: 1,
                 window: window(9, 10, kernel: (1, 1)), bias: true, activation: .sigmoid),
        ConvCase(name: "1x1 stride 2", batch: 1, channels: 16, outputChannels: 8, groups: 1,
                 window: window(14, 13, kernel: (1, 1), stride: (2, 2)), bias: false, activation: .none),
        ConvCase(name: "dilations 2x3 with pads, leaky relu", batch: 1, channels: 3, outputChannels: 4, groups: 1,
                 window: window(20, 18, kernel: (3, 3), dilation: (2, 3), pads: (2, 3, 2, 3)), bias: true, activation: .leakyRelu(alpha: 0.1)),
        ConvCase(name: "5x5 stride 3, uneven pads, gelu", batch: 2, channels: 6, outputChannels: 4, groups: 1,
                 window: window(12, 12, kernel: (5, 5), stride: (3, 3), pads: (2, 2, 1, 1)), bias: true, activation: .gelu),
        ConvCase(name: "wide: 64 to 72 channels 3x3 (tile128 and splitk sgemm)", batch: 2, channels: 64, outputChannels: 72, groups: 1,
                 window: window(23, 21, kernel: (3, 3), pads: (1, 1, 1, 1)), bias: true, activation: .relu),
        ConvCase(name: "1x1 input plane", batch: 3, channels: 9, outputChannels: 5, groups: 1,
                 window: window(1, 1, kernel: (3, 3), pads: (1, 1, 1, 1)), bias: true, activation: .none),
    ]

    func expectedConvolution(_ c: ConvCase, x: [Float], w: [Float], b: [Float]) -> [Float] {
        let shape = c.shape
        var y = [Float](repeating: 0, count: c.batch * c.outputChannels * c.window.outputHeight * c.window.outputWidth)
        var scratch = [Float](repeating: 0, count: max(shape.scratchCount, 1))
        y.withUnsafeMutableBufferPointer { out in
            scratch.withUnsafeMutableBufferPointer { s in
                b.withUnsafeBufferPointer { bias in
                    CPUBackend().convolve(
                        shape, batch: c.batch, x: x, weights: w, bias: c.bias ? bias.baseAddress : nil, y: out.baseAddress!,
                        scratch: s.baseAddress, activation: c.activation)
                }
            }
        }
        return y
    }

    @Test(arguments: convCases)
    func convolutionMatchesCPU(_ c: ConvCase) throws {
        let backend = TestDevice.backend
        let shape = c.shape
        let x = randomFloats(c.batch * c.channels * c.window.height * c.window.width, seed: 301)
        let w = randomFloats(c.outputChannels * (c.channels / c.groups) * c.window.kernel.h * c.window.kernel.w, seed: 302)
        let b = randomFloats(c.outputChannels, seed: 303)
        let expected = expectedConvolution(c, x: x, w: w, b: b)
        let gx = try backend.makeBuffer(x), gw = try backend.makeBuffer(w), gb = try backend.makeBuffer(b)
        let methods: [ConvolutionMethod] = c.groups == 1 ? [.automatic, .direct, .im2col] : [.automatic, .direct]
        for method in methods {
            let y = try VulkanBuffer(device: backend.device, count: expected.count)
            try backend.convolve(shape, batch: c.batch, x: gx, weights: gw, bias: c.bias ? gb : nil, y: y, activation: c.activation, method: method)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-5, "\(c) \(method): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func im2colIsRefusedForGroupsAndTheDirectKernelTakesThem() throws {
        let backend = TestDevice.backend
        let c = Self.convCases[2]
        #expect(VulkanRecording.im2colFloats(c.shape, batch: c.batch) == nil)
        let gx = try backend.makeBuffer(randomFloats(c.batch * c.channels * c.window.height * c.window.width, seed: 1))
        let gw = try backend.makeBuffer(randomFloats(c.outputChannels * 2 * 3 * 2, seed: 2))
        let y = try VulkanBuffer(device: backend.device, count: c.batch * c.outputChannels * c.window.outputHeight * c.window.outputWidth)
        #expect(throws: VulkanError.self) { try backend.convolve(c.shape, batch: c.batch, x: gx, weights: gw, bias: nil, y: y, method: .im2col) }
    }

    @Test func sharedColumnBufferIsReusedByConvolutionsInOneRecording() throws {
        // Two convolutions in a row through one column buffer: the second overwrites the first's
        // matrix only after the first sgemm has read it.
        let backend = TestDevice.backend
        let first = Self.convCases[0], second = Self.convCases[8]
        let x1 = randomFloats(first.batch * first.channels * 17 * 13, seed: 11)
        let w1 = randomFloats(first.outputChannels * first.channels * 9, seed: 12), b1 = randomFloats(first.outputChannels, seed: 13)
        let x2 = randomFloats(second.batch * second.channels * 12 * 12, seed: 14)
        let w2 = randomFloats(second.outputChannels * second.channels * 25, seed: 15), b2 = randomFloats(second.outputChannels, seed: 16)
        let floats = max(
            try #require(VulkanRecording.im2colFloats(first.shape, batch: first.batch)),
            try #require(VulkanRecording.im2colFloats(second.shape, batch: second.batch)))
        let columns = try VulkanBuffer(device: backend.device, count: floats)
        let e1 = expectedConvolution(first, x: x1, w: w1, b: b1), e2 = expectedConvolution(second, x: x2, w: w2, b: b2)
        let y1 = try VulkanBuffer(device: backend.device, count: e1.count), y2 = try VulkanBuffer(device: backend.device, count: e2.count)
        let (gx1, gw1, gb1) = (try backend.makeBuffer(x1), try backend.makeBuffer(w1), try backend.makeBuffer(b1))
        let (gx2, gw2, gb2) = (try backend.makeBuffer(x2), try backend.makeBuffer(w2), try backend.makeBuffer(b2))
        try backend.run {
            try $0.convolve(first.shape, batch: first.batch, x: gx1, weights: gw1, bias: gb1, y: y1, activation: first.activation, method: .im2col, columns: columns)
            try $0.convolve(second.shape, batch: second.batch, x: gx2, weights: gw2, bias: gb2, y: y2, activation: second.activation, method: .im2col, columns: columns)
        }
        #expect(relativeL2(try y1.download(), e1) <= 1e-5)
        #expect(relativeL2(try y2.download(), e2) <= 1e-5)
        let small = try VulkanBuffer(device: backend.device, count: 4)
        #expect(throws: VulkanError.self) {
            try backend.convolve(first.shape, batch: first.batch, x: gx1, weights: gw1, bias: gb1, y: y1, method: .im2col, columns: small)
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func hostileSizesAreRefusedNotCrashed() throws {
        let backend = TestDevice.backend
        let tiny = try VulkanBuffer(device: backend.device, count: 16)
        let y = try VulkanBuffer(device: backend.device, count: 16)
        // Products that overflow Int, buffers too small, channels that do not split into groups.
        let huge = Convolution2D(channels: 1 << 40, outputChannels: 1 << 40, groups: 1, window: Self.window(1 << 20, 1 << 20, kernel: (3, 3)))
        #expect(throws: VulkanError.self) { try backend.convolve(huge, batch: 1 << 20, x: tiny, weights: tiny, bias: nil, y: y) }
        #expect(VulkanRecording.im2colFloats(huge, batch: 1 << 20) == nil)
        let tooSmall = Convolution2D(channels: 3, outputChannels: 4, groups: 1, window: Self.window(8, 8, kernel: (3, 3)))
        #expect(throws: VulkanError.self) { try backend.convolve(tooSmall, batch: 1, x: tiny, weights: tiny, bias: nil, y: y) }
        let badGroups = Convolution2D(channels: 3, outputChannels: 4, groups: 2, window: Self.window(2, 2, kernel: (1, 1)))
        #expect(throws: VulkanError.self) { try backend.convolve(badGroups, batch: 1, x: tiny, weights: tiny, bias: nil, y: y) }
        let pool = Pooling2D(kind: .max, window: Self.window(1 << 31, 1 << 31, kernel: (2, 2)))
        #expect(throws: VulkanError.self) { try backend.pool(pool, planes: 1 << 31, x: tiny, y: y) }
        expectNoValidationMessages(TestDevice.device)
    }

    struct PoolCase: Sendable, CustomStringConvertible {
        var name: String
        var planes: Int
        var pooling: Pooling2D
        var description: String { name }
    }

    static let poolCases: [PoolCase] = [
        PoolCase(name: "max 3x3 stride 2 pad 1", planes: 6, pooling: Pooling2D(kind: .max, window: window(17, 16, kernel: (3, 3), stride: (2, 2), pads: (1, 1, 1, 1)))),
        PoolCase(name: "max 2x2 ceil", planes: 3, pooling: Pooling2D(kind: .max, window: window(9, 10, kernel: (2, 2), stride: (2, 2), ceil: true))),
        PoolCase(name: "max 3x3 dilation 2", planes: 2, pooling: Pooling2D(kind: .max, window: window(13, 11, kernel: (3, 3), dilation: (2, 2), pads: (1, 0, 1, 2)))),
        PoolCase(name: "average 2x2 pads bottom/right", planes: 5, pooling: Pooling2D(kind: .average(countIncludePad: false), window: window(7, 7, kernel: (2, 2), pads: (0, 0, 1, 1)))),
        PoolCase(name: "average 3x3 count_include_pad", planes: 4, pooling: Pooling2D(kind: .average(countIncludePad: true), window: window(11, 9, kernel: (3, 3), stride: (2, 2), pads: (1, 1, 1, 1)))),
        PoolCase(name: "average 3x3 ceil, count_include_pad (overhang left out)", planes: 3, pooling: Pooling2D(kind: .average(countIncludePad: true), window: window(10, 11, kernel: (3, 3), stride: (2, 2), pads: (1, 1, 1, 1), ceil: true))),
        PoolCase(name: "average 3x3 ceil without pad", planes: 3, pooling: Pooling2D(kind: .average(countIncludePad: false), window: window(10, 12, kernel: (3, 3), stride: (2, 2), ceil: true))),
        PoolCase(name: "global (whole plane)", planes: 7, pooling: Pooling2D(kind: .average(countIncludePad: false), window: window(5, 6, kernel: (5, 6)))),
    ]

    @Test(arguments: poolCases)
    func poolingMatchesCPU(_ c: PoolCase) throws {
        let backend = TestDevice.backend
        let window = c.pooling.window
        let x = randomFloats(c.planes * window.height * window.width, seed: 401)
        var expected = [Float](repeating: 0, count: c.planes * window.outputHeight * window.outputWidth)
        expected.withUnsafeMutableBufferPointer { CPUBackend().pool(c.pooling, planes: c.planes, x: x, y: $0.baseAddress!) }
        let gx = try backend.makeBuffer(x)
        let y = try VulkanBuffer(device: backend.device, count: expected.count)
        try backend.pool(c.pooling, planes: c.planes, x: gx, y: y)
        let error = relativeL2(try y.download(), expected)
        #expect(error <= 1e-6, "\(c): relative L2 \(error)")
        expectNoValidationMessages(TestDevice.device)
    }

    @Test(arguments: [false, true])
    func hardSigmoidMatchesCPU(_ swish: Bool) throws {
        let backend = TestDevice.backend
        let (alpha, beta): (Float, Float) = swish ? (1 / 6, 0.5) : (0.2, 0.5)
        for count in [1, 257, 4099] {
            let input = randomFloats(count, in: -8...8, seed: UInt64(500 + count))
            let expected = input.map { v -> Float in
                let gate = max(0, min(1, alpha * v + beta))
                return swish ? v * gate : gate
            }
            let x = try backend.makeBuffer(input)
            let y = try VulkanBuffer(device: backend.device, count: count)
            try backend.hardSigmoid(x, y, count: count, alpha: alpha, beta: beta, swish: swish)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-6, "swish \(swish) × \(count): relative L2 \(error)")
            try backend.hardSigmoid(x, x, count: count, alpha: alpha, beta: beta, swish: swish)
            #expect(try x.download() == y.download(), "in place")
        }
        expectNoValidationMessages(TestDevice.device)
    }
}

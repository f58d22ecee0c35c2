import FulcrumKernels
import Testing

/// The Pad/Resize gather (`remap`), bilinear Resize and ConvTranspose kernels against host
/// references written here (the CPU plan's Pad, Resize and ConvTranspose compute inside the
/// runtime's operators; those run against onnxruntime fixtures on the device in
/// FulcrumRuntimeTests.VulkanModelTests). Tolerances: exact for gathers, relative L2 ≤ 1e-6
/// bilinear, ≤ 1e-5 ConvTranspose.
@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanResamplingTests {
    /// Pad's tables: constant (-1), edge and reflect, negative pads cropping.
    static func padMap(size: Int, begin: Int, end: Int, mode: String) -> [Int] {
        (0..<(size + begin + end)).map { o in
            var i = o - begin
            if i >= 0, i < size { return i }
            switch mode {
            case "edge": return min(max(i, 0), size - 1)
            case "reflect":
                let period = 2 * (size - 1)
                i = ((i % period) + period) % period
                return i < size ? i : period - i
            default: return -1
            }
        }
    }

    static func gather(_ x: [Float], shape: [Int], maps: [[Int]], constant: Float) -> [Float] {
        let strides = CopyLayout.contiguousStrides(shape)
        let outShape = maps.map(\.count)
        let total = outShape.reduce(1, *)
        return (0..<total).map { o in
            var rest = o, source = 0
            for axis in (0..<shape.count).reversed() {
                let index = maps[axis][rest % outShape[axis]]
                rest /= outShape[axis]
                if index < 0 { return constant }
                source += index * strides[axis]
            }
            return x[source]
        }
    }

    @Test(arguments: ["constant", "edge", "reflect"])
    func padTablesGatherExactly(_ mode: String) throws {
        let backend = TestDevice.backend
        let cases: [(shape: [Int], begin: [Int], end: [Int])] = [
            ([2, 3, 5, 7], [0, 0, 1, 2], [0, 0, 2, 1]),
            ([1, 4, 6, 6], [0, 1, -1, 3], [0, 0, 2, -2]),
            ([13], [4], [5]),
            ([2, 1, 3, 2, 4, 3], [1, 0, 1, 0, 2, 1], [0, 0, 1, 1, 0, 2]),
        ]
        for c in cases {
            let maps = c.shape.indices.map { axis in
                Self.padMap(size: c.shape[axis], begin: c.begin[axis], end: c.end[axis], mode: c.shape[axis] < 2 && mode == "reflect" ? "edge" : mode)
            }
            let x = randomFloats(c.shape.reduce(1, *), seed: 71)
            let expected = Self.gather(x, shape: c.shape, maps: maps, constant: 2.5)
            let gx = try backend.makeBuffer(x)
            let y = try VulkanBuffer(device: backend.device, count: expected.count)
            try backend.run { try $0.remap(gx, inputShape: c.shape, maps: maps, constant: 2.5, to: y) }
            #expect(try y.download() == expected, "\(mode) \(c)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func remapRefusesBadTablesAndRanksAboveEight() throws {
        let backend = TestDevice.backend
        let x = try backend.makeBuffer(randomFloats(16, seed: 1))
        let y = try VulkanBuffer(device: backend.device, count: 64)
        #expect(throws: VulkanError.self) { try backend.run { try $0.remap(x, inputShape: [4, 4], maps: [[0, 4], [0]], to: y) } }
        #expect(throws: VulkanError.self) { try backend.run { try $0.remap(x, inputShape: [4, 4], maps: [[0]], to: y) } }
        let nine = [Int](repeating: 1, count: 9)
        #expect(throws: VulkanError.self) { try backend.run { try $0.remap(x, inputShape: nine, maps: nine.map { _ in [0] }, to: y) } }
        #expect(throws: VulkanError.self) { try backend.run { try $0.remap(x, inputShape: [1 << 40, 1 << 40], maps: [[0], [0]], to: y) } }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func bilinearMatchesTheHostFormula() throws {
        let backend = TestDevice.backend
        let (planes, h, w, oh, ow) = (5, 7, 9, 15, 4)
        func taps(_ o: Int, _ input: Int, _ output: Int) -> (Int, Int, Float) {
            let v = min(max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0), Double(input - 1))
            let low = Int(v.rounded(.down))
            return (low, min(low + 1, input - 1), Float(v - Double(low)))
        }
        let rows = (0..<oh).map { taps($0, h, oh) }, columns = (0..<ow).map { taps($0, w, ow) }
        let x = randomFloats(planes * h * w, seed: 81)
        var expected: [Float] = []
        for p in 0..<planes {
            for (r0, r1, fy) in rows {
                for (c0, c1, fx) in columns {
                    let base = p * h * w
                    let top = x[base + r0 * w + c0] * (1 - fx) + x[base + r0 * w + c1] * fx
                    let bottom = x[base + r1 * w + c0] * (1 - fx) + x[base + r1 * w + c1] * fx
                    expected.append(top * (1 - fy) + bottom * fy)
                }
            }
        }
        let gx = try backend.makeBuffer(x)
        let y = try VulkanBuffer(device: backend.device, count: expected.count)
        try backend.run { try $0.resizeBilinear(gx, planes: planes, height: h, width: w, rows: rows, columns: columns, to: y) }
        #expect(relativeL2(try y.download(), expected) <= 1e-6)
        #expect(throws: VulkanError.self) {
            try backend.run { try $0.resizeBilinear(gx, planes: planes, height: h, width: w, rows: [(0, h, 0)], columns: columns, to: y) }
        }
        expectNoValidationMessages(TestDevice.device)
    }

    struct TransposeCase: Sendable, CustomStringConvertible {
        var name: String
        var batch, channels, outputChannels, groups, height, width, kernel, stride, dilation, pad, outputPadding: Int
        var bias: Bool
        var description: String { name }
        var outputSize: (Int, Int) {
            let size = { (input: Int) in self.stride * (input - 1) + self.outputPadding + (self.kernel - 1) * self.dilation + 1 - 2 * self.pad }
            return (size(height), size(width))
        }
    }

    static let transposeCases: [TransposeCase] = [
        TransposeCase(name: "k2 s2", batch: 2, channels: 4, outputChannels: 3, groups: 1, height: 5, width: 6, kernel: 2, stride: 2, dilation: 1, pad: 0, outputPadding: 0, bias: true),
        TransposeCase(name: "k3 s2 pad 1 output_padding 1", batch: 1, channels: 3, outputChannels: 5, groups: 1, height: 7, width: 4, kernel: 3, stride: 2, dilation: 1, pad: 1, outputPadding: 1, bias: false),
        TransposeCase(name: "2 groups, dilation 2, stride 3", batch: 3, channels: 4, outputChannels: 6, groups: 2, height: 4, width: 5, kernel: 3, stride: 3, dilation: 2, pad: 2, outputPadding: 0, bias: true),
        TransposeCase(name: "k4 s1", batch: 1, channels: 2, outputChannels: 2, groups: 1, height: 9, width: 3, kernel: 4, stride: 1, dilation: 1, pad: 0, outputPadding: 0, bias: true),
    ]

    @Test(arguments: transposeCases)
    func convTransposeMatchesScatter(_ c: TransposeCase) throws {
        let backend = TestDevice.backend
        let (oh, ow) = c.outputSize
        let (cg, mg) = (c.channels / c.groups, c.outputChannels / c.groups)
        let x = randomFloats(c.batch * c.channels * c.height * c.width, seed: 91)
        let w = randomFloats(c.channels * mg * c.kernel * c.kernel, seed: 92)
        let b = randomFloats(c.outputChannels, seed: 93)
        // Scatter form, as the CPU plan's col2im: every input pixel adds each tap to the output it lands on.
        var expected = [Float](repeating: 0, count: c.batch * c.outputChannels * oh * ow)
        for n in 0..<c.batch {
            for m in 0..<c.outputChannels {
                for p in 0..<(oh * ow) { expected[(n * c.outputChannels + m) * oh * ow + p] = c.bias ? b[m] : 0 }
            }
            for ch in 0..<c.channels {
                let g = ch / cg
                for om in 0..<mg {
                    for kh in 0..<c.kernel {
                        for kw in 0..<c.kernel {
                            let weight = w[((ch * mg + om) * c.kernel + kh) * c.kernel + kw]
                            for i in 0..<c.height {
                                let oi = i * c.stride - c.pad + kh * c.dilation
                                guard oi >= 0, oi < oh else { continue }
                                for j in 0..<c.width {
                                    let oj = j * c.stride - c.pad + kw * c.dilation
                                    guard oj >= 0, oj < ow else { continue }
                                    expected[((n * c.outputChannels + g * mg + om) * oh + oi) * ow + oj] +=
                                        x[((n * c.channels + ch) * c.height + i) * c.width + j] * weight
                                }
                            }
                        }
                    }
                }
            }
        }
        let window = Window2D(
            height: c.height, width: c.width, kernel: (c.kernel, c.kernel), stride: (c.stride, c.stride), dilation: (c.dilation, c.dilation),
            pads: (c.pad, c.pad, c.pad, c.pad), outputHeight: oh, outputWidth: ow)
        let shape = Convolution2D(channels: c.channels, outputChannels: c.outputChannels, groups: c.groups, window: window)
        let gx = try backend.makeBuffer(x), gw = try backend.makeBuffer(w), gb = try backend.makeBuffer(b)
        let y = try VulkanBuffer(device: backend.device, count: expected.count)
        try backend.run { try $0.convTranspose(shape, batch: c.batch, x: gx, weights: gw, bias: c.bias ? gb : nil, y: y) }
        let error = relativeL2(try y.download(), expected)
        #expect(error <= 1e-5, "\(c): relative L2 \(error)")
        expectNoValidationMessages(TestDevice.device)
    }
}

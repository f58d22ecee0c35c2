@testable import FulcrumKernels
import Foundation
import Testing

/// CPU convolutions against a double-precision reference loop: the depthwise vector loops
/// (CGEMM's planes.c) and the strided im2col copies, on every microkernel set this CPU has and
/// on the portable path (`off`), over strides 1–3, dilations, asymmetric padding, windows
/// wider than the input and the activations the loops apply themselves (Relu, HardSwish).
@Suite("Convolution kernels against reference loops")
struct ConvolutionKernelTests {
    static let sets = Microkernels.allCases.filter { $0.rawValue <= Microkernels.detected.rawValue }

    struct Case: CustomStringConvertible {
        var batch: Int, channels: Int, outputChannels: Int, groups: Int
        var height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int)
        var pads: (Int, Int, Int, Int)
        var bias: Bool, activation: Activation

        var shape: Convolution2D? {
            let extent = ((kernel.0 - 1) * dilation.0 + 1, (kernel.1 - 1) * dilation.1 + 1)
            let (h, w) = (height + pads.0 + pads.2 - extent.0, width + pads.1 + pads.3 - extent.1)
            guard h >= 0, w >= 0 else { return nil }
            let window = Window2D(
                height: height, width: width, kernel: (h: kernel.0, w: kernel.1), stride: (h: stride.0, w: stride.1),
                dilation: (h: dilation.0, w: dilation.1), pads: (top: pads.0, left: pads.1, bottom: pads.2, right: pads.3),
                outputHeight: h / stride.0 + 1, outputWidth: w / stride.1 + 1)
            return Convolution2D(channels: channels, outputChannels: outputChannels, groups: groups, window: window)
        }

        var description: String {
            "n\(batch) c\(channels)→\(outputChannels) g\(groups) \(height)×\(width) k\(kernel) s\(stride) d\(dilation) p\(pads) \(activation)"
        }
    }

    /// Random cases: depthwise ones (stride 1 and 2 take the vector loops) and dense stride-2 ones (im2col).
    static func cases() -> [Case] {
        var random = SplitMix(state: 29)
        func pick(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }
        var cases: [Case] = []
        while cases.count < 60 {
            let depthwise = cases.count % 3 != 2
            let channels = depthwise ? pick(2...6) : pick(1...4)
            let activations: [Activation] = [.none, .relu, .sigmoid, .hardSwish]
            let c = Case(
                batch: pick(1...2), channels: channels, outputChannels: depthwise ? channels : pick(1...9), groups: depthwise ? channels : 1,
                height: pick(1...23), width: pick(1...41), kernel: (pick(1...5), pick(1...5)),
                stride: depthwise ? (pick(1...3), pick(1...3)) : (2, 2), dilation: (pick(1...2), pick(1...2)),
                pads: (pick(0...2), pick(0...2), pick(0...2), pick(0...2)), bias: pick(0...1) == 1,
                activation: activations[pick(0...3)])
            if c.shape != nil { cases.append(c) }
        }
        return cases
    }

    static func reference(_ c: Case, _ s: Convolution2D, x: [Float], w: [Float], b: [Float]) -> [Double] {
        let (oh, ow) = (s.window.outputHeight, s.window.outputWidth)
        let (cg, mg) = (c.channels / c.groups, c.outputChannels / c.groups)
        var y = [Double](repeating: 0, count: c.batch * c.outputChannels * oh * ow)
        for n in 0..<c.batch {
            for m in 0..<c.outputChannels {
                let g = m / mg
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum = c.bias ? Double(b[m]) : 0
                        for ci in 0..<cg {
                            for ky in 0..<c.kernel.0 {
                                for kx in 0..<c.kernel.1 {
                                    let r = i * c.stride.0 - c.pads.0 + ky * c.dilation.0
                                    let q = j * c.stride.1 - c.pads.1 + kx * c.dilation.1
                                    guard r >= 0, r < c.height, q >= 0, q < c.width else { continue }
                                    let input = x[((n * c.channels + g * cg + ci) * c.height + r) * c.width + q]
                                    sum += Double(w[((m * cg + ci) * c.kernel.0 + ky) * c.kernel.1 + kx]) * Double(input)
                                }
                            }
                        }
                        switch c.activation {
                        case .relu: sum = max(sum, 0)
                        case .sigmoid: sum = 1 / (1 + exp(-sum))
                        case .hardSwish: sum *= min(max(sum / 6 + 0.5, 0), 1)
                        default: break
                        }
                        y[((n * c.outputChannels + m) * oh + i) * ow + j] = sum
                    }
                }
            }
        }
        return y
    }

    @Test("depthwise and strided convolutions match the reference", arguments: sets)
    func convolutions(_ set: Microkernels) {
        let backend = CPUBackend()
        var random = SplitMix(state: 41)
        for threads in [1, 3] {
            let previous = BLASThreading.threadCount
            BLASThreading.setThreadCount(threads)
            defer { BLASThreading.setThreadCount(previous) }
            for c in Self.cases() {
                let s = c.shape!
                let k = c.channels / c.groups * c.kernel.0 * c.kernel.1
                let x = random.floats(c.batch * c.channels * c.height * c.width)
                let w = random.floats(c.outputChannels * k)
                let b = random.floats(c.outputChannels)
                let expected = Self.reference(c, s, x: x, w: w, b: b)
                // Dense convolutions take the microkernels through filters packed per group, as at load.
                let packed: [PackedMatrix]? = set == .off || s.isDepthwise ? nil : (0..<c.groups).compactMap { g in
                    w.withUnsafeBufferPointer {
                        backend.packLeft(m: c.outputChannels / c.groups, k: k, a: $0.baseAddress! + g * (c.outputChannels / c.groups) * k,
                                         lda: k, kernels: set)
                    }
                }
                var y = [Float](repeating: .nan, count: expected.count)
                var scratch = [Float](repeating: 0, count: max(1, s.scratchCount))
                x.withUnsafeBufferPointer { xp in
                    w.withUnsafeBufferPointer { wp in
                        b.withUnsafeBufferPointer { bp in
                            backend.convolve(
                                s, batch: c.batch, x: xp.baseAddress!, weights: wp.baseAddress!, packedWeights: packed,
                                bias: c.bias ? bp.baseAddress! : nil, y: &y, scratch: &scratch, activation: c.activation,
                                depthwiseKernels: s.isDepthwise ? set : .off)
                        }
                    }
                }
                let tolerance = 1e-5 * Double(k).squareRoot() * 4
                for (index, (actual, wanted)) in zip(y, expected).enumerated()
                where !(abs(Double(actual) - wanted) <= tolerance * max(1, abs(wanted))) {
                    Issue.record("\(set), \(threads) threads, \(c): element \(index) is \(actual), expected \(wanted)")
                    break
                }
            }
        }
    }

    @Test("max pooling on the vector loops gives the scalar loop's answers, NaNs included")
    func vectorMaxPooling() {
        let backend = CPUBackend()
        var random = SplitMix(state: 71)
        func pick(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }
        var checked = 0
        while checked < 80 {
            let (height, width) = (pick(1...19), pick(1...70))
            let kernel = (pick(1...4), pick(1...4))
            let stride = (pick(1...3), pick(1...3))
            let dilation = (pick(1...2), pick(1...2))
            let pads = (pick(0...2), pick(0...2), pick(0...2), pick(0...2))
            let extent = ((kernel.0 - 1) * dilation.0 + 1, (kernel.1 - 1) * dilation.1 + 1)
            let (h, w) = (height + pads.0 + pads.2 - extent.0, width + pads.1 + pads.3 - extent.1)
            guard h >= 0, w >= 0 else { continue }
            let window = Window2D(
                height: height, width: width, kernel: (h: kernel.0, w: kernel.1), stride: (h: stride.0, w: stride.1),
                dilation: (h: dilation.0, w: dilation.1), pads: (top: pads.0, left: pads.1, bottom: pads.2, right: pads.3),
                outputHeight: h / stride.0 + 1, outputWidth: w / stride.1 + 1)
            let planes = pick(1...3)
            var x = random.floats(planes * height * width)
            // A few NaNs and infinities: the vector max must keep the scalar select's answer.
            for _ in 0..<pick(0...3) { x[pick(0...(x.count - 1))] = [Float.nan, .infinity, -.infinity][pick(0...2)] }
            let count = planes * window.outputHeight * window.outputWidth
            var expected = [Float](repeating: 7, count: count)
            backend.pool(Pooling2D(kind: .max, window: window), planes: planes, x: x, y: &expected, kernels: .off)
            for set in Self.sets where set != .off {
                var y = [Float](repeating: 7, count: count)
                backend.pool(Pooling2D(kind: .max, window: window), planes: planes, x: x, y: &y, kernels: set)
                let same = zip(y, expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
                #expect(same, "\(set): \(height)×\(width) k\(kernel) s\(stride) d\(dilation) p\(pads)")
            }
            checked += 1
        }
    }

    @Test("pooling split over threads gives the single thread's answers")
    func threadedPooling() {
        let backend = CPUBackend()
        var random = SplitMix(state: 53)
        let window = Window2D(
            height: 64, width: 61, kernel: (h: 3, w: 3), stride: (h: 2, w: 2), dilation: (h: 1, w: 1),
            pads: (top: 1, left: 1, bottom: 1, right: 1), outputHeight: 32, outputWidth: 31)
        let planes = 9
        let x = random.floats(planes * 64 * 61)
        for kind in [Pooling2D.Kind.max, .average(countIncludePad: false), .average(countIncludePad: true)] {
            var results: [[Float]] = []
            for threads in [1, 3] {
                let previous = BLASThreading.threadCount
                BLASThreading.setThreadCount(threads)
                defer { BLASThreading.setThreadCount(previous) }
                var y = [Float](repeating: .nan, count: planes * 32 * 31)
                backend.pool(Pooling2D(kind: kind, window: window), planes: planes, x: x, y: &y)
                results.append(y)
            }
            #expect(results[0] == results[1], "\(kind)")
            #expect(!results[1].contains { $0.isNaN }, "\(kind): an output was not written")
        }
    }
}

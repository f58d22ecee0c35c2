import FulcrumKernels
import Testing

/// Softmax, layer and batch normalisation, reductions and clip on Vulkan against `CPUBackend`
/// on the same seeded random inputs. Tolerances (FP32, relative L2): 1e-5 elementwise (clip,
/// batch normalisation), 1e-4 for anything that reduces (softmax, layer normalisation,
/// reductions: the summation order differs).
@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanNormalizationTests {
    // MARK: Softmax

    struct SoftmaxShape: Sendable, CustomStringConvertible {
        var outer, axis, inner: Int
        var description: String { "[\(outer), \(axis), \(inner)]" }
    }

    /// Short axes (< 64) run one invocation per row, longer ones one workgroup per row.
    static let softmaxShapes: [SoftmaxShape] = [
        .init(outer: 1, axis: 1, inner: 1), .init(outer: 3, axis: 7, inner: 1), .init(outer: 5, axis: 33, inner: 1),
        .init(outer: 4, axis: 129, inner: 1), .init(outer: 2, axis: 1000, inner: 1), .init(outer: 3, axis: 4096, inner: 1),
        .init(outer: 2, axis: 7, inner: 5), .init(outer: 3, axis: 33, inner: 9), .init(outer: 2, axis: 129, inner: 3),
        .init(outer: 1, axis: 1031, inner: 17), .init(outer: 300, axis: 1, inner: 4),
    ]

    func cpuSoftmax(_ input: [Float], _ s: SoftmaxShape, logarithm: Bool) -> [Float] {
        var expected = [Float](repeating: 0, count: input.count)
        expected.withUnsafeMutableBufferPointer {
            CPUBackend().softmax(input, $0.baseAddress!, outer: s.outer, axis: s.axis, inner: s.inner, logarithm: logarithm)
        }
        return expected
    }

    @Test(arguments: [false, true])
    func softmaxMatchesCPU(_ logarithm: Bool) throws {
        let backend = TestDevice.backend
        for (index, shape) in Self.softmaxShapes.enumerated() {
            let count = shape.outer * shape.axis * shape.inner
            let input = randomFloats(count, in: -8...8, seed: UInt64(300 + index))
            let x = try backend.makeBuffer(input)
            let y = try VulkanBuffer(device: backend.device, count: count)
            try backend.softmax(x, y, outer: shape.outer, axis: shape.axis, inner: shape.inner, logarithm: logarithm)
            let error = relativeL2(try y.download(), cpuSoftmax(input, shape, logarithm: logarithm))
            #expect(error <= 1e-4, "\(shape) log=\(logarithm): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func softmaxInPlaceAndLargeValuesAndManyRows() throws {
        let backend = TestDevice.backend
        // Values near the FP32 exp limit only work when the maximum is subtracted first.
        for (shape, range) in [(SoftmaxShape(outer: 6, axis: 300, inner: 2), Float(80)...Float(120)), (SoftmaxShape(outer: 9, axis: 20, inner: 1), -120...(-80))] {
            let count = shape.outer * shape.axis * shape.inner
            let input = randomFloats(count, in: range, seed: 17)
            let x = try backend.makeBuffer(input)
            try backend.softmax(x, x, outer: shape.outer, axis: shape.axis, inner: shape.inner)
            let error = relativeL2(try x.download(), cpuSoftmax(input, shape, logarithm: false))
            #expect(error <= 1e-4, "in place \(shape): relative L2 \(error)")
        }
        // More rows than the 65535 workgroups of one dispatch dimension.
        let many = SoftmaxShape(outer: 66_000, axis: 64, inner: 1)
        let input = randomFloats(many.outer * many.axis, in: -4...4, seed: 18)
        let x = try backend.makeBuffer(input)
        let y = try VulkanBuffer(device: backend.device, count: input.count)
        try backend.softmax(x, y, outer: many.outer, axis: many.axis, inner: many.inner, logarithm: true)
        let error = relativeL2(try y.download(), cpuSoftmax(input, many, logarithm: true))
        #expect(error <= 1e-4, "\(many): relative L2 \(error)")
        expectNoValidationMessages(TestDevice.device)
    }

    // MARK: Layer normalisation

    static let layerShapes: [(rows: Int, columns: Int)] = [(1, 1), (3, 7), (5, 33), (4, 129), (2, 1000), (3, 4096), (2, 1031), (70, 64)]

    func cpuLayerNormalization(_ input: [Float], rows: Int, columns: Int, scale: [Float], bias: [Float]?, epsilon: Float) -> [Float] {
        var expected = [Float](repeating: 0, count: input.count)
        expected.withUnsafeMutableBufferPointer { out in
            scale.withUnsafeBufferPointer { scale in
                if let bias {
                    bias.withUnsafeBufferPointer { bias in
                        CPUBackend().layerNormalization(
                            input, out.baseAddress!, rows: rows, columns: columns, scale: scale.baseAddress!, bias: bias.baseAddress!,
                            epsilon: epsilon)
                    }
                } else {
                    CPUBackend().layerNormalization(
                        input, out.baseAddress!, rows: rows, columns: columns, scale: scale.baseAddress!, bias: nil, epsilon: epsilon)
                }
            }
        }
        return expected
    }

    @Test(arguments: [true, false])
    func layerNormalizationMatchesCPU(_ withBias: Bool) throws {
        let backend = TestDevice.backend
        for (index, (rows, columns)) in Self.layerShapes.enumerated() {
            // An offset mean, so the two-pass variance matters.
            let input = randomFloats(rows * columns, in: 2...5, seed: UInt64(400 + index))
            let scale = randomFloats(columns, in: 0.5...1.5, seed: UInt64(500 + index))
            let bias = withBias ? randomFloats(columns, seed: UInt64(600 + index)) : nil
            let x = try backend.makeBuffer(input)
            let y = try VulkanBuffer(device: backend.device, count: input.count)
            let gscale = try backend.makeBuffer(scale)
            let gbias = try bias.map { try backend.makeBuffer($0) }
            try backend.layerNormalization(x, y, rows: rows, columns: columns, scale: gscale, bias: gbias, epsilon: 1e-5)
            let expected = cpuLayerNormalization(input, rows: rows, columns: columns, scale: scale, bias: bias, epsilon: 1e-5)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-4, "\(rows)×\(columns) bias=\(withBias): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func layerNormalizationInPlaceWithManyRows() throws {
        let backend = TestDevice.backend
        let (rows, columns) = (66_000, 40)
        let input = randomFloats(rows * columns, in: -3...3, seed: 41)
        let scale = randomFloats(columns, seed: 42), bias = randomFloats(columns, seed: 43)
        let x = try backend.makeBuffer(input)
        try backend.layerNormalization(
            x, x, rows: rows, columns: columns, scale: try backend.makeBuffer(scale), bias: try backend.makeBuffer(bias), epsilon: 1e-3)
        let expected = cpuLayerNormalization(input, rows: rows, columns: columns, scale: scale, bias: bias, epsilon: 1e-3)
        let error = relativeL2(try x.download(), expected)
        #expect(error <= 1e-4, "in place \(rows)×\(columns): relative L2 \(error)")
        expectNoValidationMessages(TestDevice.device)
    }

    // MARK: Batch normalisation

    static let batchShapes: [(batch: Int, channels: Int, spatial: Int)] = [
        (1, 1, 1), (2, 3, 7), (4, 16, 33), (1, 64, 1), (3, 5, 1000), (2, 300, 17), (1, 1, 129),
    ]

    @Test func batchNormalizationMatchesCPU() throws {
        let backend = TestDevice.backend
        for (index, (batch, channels, spatial)) in Self.batchShapes.enumerated() {
            let seed = UInt64(700 + 10 * index)
            let input = randomFloats(batch * channels * spatial, in: -3...3, seed: seed)
            let scale = randomFloats(channels, in: 0.5...2, seed: seed + 1), bias = randomFloats(channels, seed: seed + 2)
            let mean = randomFloats(channels, seed: seed + 3), variance = randomFloats(channels, in: 0.1...2, seed: seed + 4)
            var expected = [Float](repeating: 0, count: input.count)
            expected.withUnsafeMutableBufferPointer {
                CPUBackend().batchNormalization(
                    input, $0.baseAddress!, batch: batch, channels: channels, spatial: spatial, scale: scale, bias: bias, mean: mean,
                    variance: variance, epsilon: 1e-5)
            }
            let x = try backend.makeBuffer(input)
            // Out of place for odd cases, in place for even ones.
            let y = index % 2 == 0 ? x : try VulkanBuffer(device: backend.device, count: input.count)
            try backend.batchNormalization(
                x, y, batch: batch, channels: channels, spatial: spatial, scale: try backend.makeBuffer(scale),
                bias: try backend.makeBuffer(bias), mean: try backend.makeBuffer(mean), variance: try backend.makeBuffer(variance),
                epsilon: 1e-5)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-5, "[\(batch), \(channels), \(spatial)]: relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    // MARK: Reductions

    struct ReduceCase: Sendable, CustomStringConvertible {
        var shape: [Int]
        var axes: Set<Int>
        var description: String { "\(shape) over \(axes.sorted())" }
    }

    static let reduceCases: [ReduceCase] = [
        .init(shape: [7], axes: [0]), .init(shape: [1000], axes: [0]), .init(shape: [1], axes: [0]),
        .init(shape: [5, 33], axes: [1]), .init(shape: [5, 33], axes: [0]), .init(shape: [5, 33], axes: [0, 1]),
        .init(shape: [4, 129, 3], axes: [1]), .init(shape: [4, 129, 3], axes: [0, 2]), .init(shape: [4, 129, 3], axes: [0, 1, 2]),
        .init(shape: [2, 3, 4, 5], axes: [1, 3]), .init(shape: [2, 3, 4, 5], axes: [0, 2]), .init(shape: [2, 3, 4, 5], axes: [3]),
        .init(shape: [2, 3, 4, 5], axes: []), .init(shape: [1, 6, 1, 7], axes: [0, 2]), .init(shape: [1, 6, 1, 7], axes: [1, 2]),
        .init(shape: [3, 4096], axes: [1]), .init(shape: [4096, 3], axes: [0]), .init(shape: [2000, 70], axes: [0]),
        .init(shape: [70_000, 40], axes: [1]), .init(shape: [2, 3, 2, 3, 2, 3, 2, 3], axes: [1, 3, 5, 7]),
        .init(shape: [3, 2, 3, 2, 3, 2, 3, 2], axes: [1, 3, 5, 7]), .init(shape: [9, 1, 17, 1, 33], axes: [0, 1, 4]),
    ]

    func cpuReduce(_ op: ReductionOperator, _ input: [Float], shape: [Int], axes: Set<Int>) -> [Float] {
        let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let keptStrides = CopyLayout.contiguousStrides(kept)
        let destination = shape.indices.map { axes.contains($0) ? 0 : keptStrides[$0] }
        let layout = CopyLayout(shape: shape, sourceStrides: CopyLayout.contiguousStrides(shape), destinationStrides: destination)
        let outputCount = kept.reduce(1, *)
        let reducedCount = axes.map { shape[$0] }.reduce(1, *)
        var expected = [Float](repeating: 0, count: outputCount)
        expected.withUnsafeMutableBufferPointer {
            CPUBackend().reduce(op, input, $0.baseAddress!, layout: layout, outputCount: outputCount, reducedCount: reducedCount)
        }
        return expected
    }

    @Test(arguments: ReductionOperator.allCases)
    func reduceMatchesCPU(_ op: ReductionOperator) throws {
        let backend = TestDevice.backend
        for (index, c) in Self.reduceCases.enumerated() {
            let input = randomFloats(c.shape.reduce(1, *), seed: UInt64(800 + index))
            let expected = cpuReduce(op, input, shape: c.shape, axes: c.axes)
            let x = try backend.makeBuffer(input)
            let y = try VulkanBuffer(device: backend.device, count: expected.count)
            try backend.reduce(op, x, y, shape: c.shape, axes: c.axes)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-4, "\(op) \(c): relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test(arguments: ReductionOperator.allCases)
    func emptyReductionsGiveTheStartValue(_ op: ReductionOperator) throws {
        let backend = TestDevice.backend
        for c in [ReduceCase(shape: [3, 0], axes: [1]), ReduceCase(shape: [0, 4], axes: [0]), ReduceCase(shape: [2, 0, 5], axes: [1])] {
            let expected = cpuReduce(op, [], shape: c.shape, axes: c.axes)
            #expect(expected.allSatisfy { $0 == (op == .max ? -.infinity : 0) })
            let x = try VulkanBuffer(device: backend.device, count: 0)
            let y = try backend.makeBuffer([Float](repeating: 42, count: expected.count))
            try backend.reduce(op, x, y, shape: c.shape, axes: c.axes)
            #expect(try y.download() == expected, "\(op) \(c)")
        }
        // No outputs: nothing is written and nothing is read.
        let y = try backend.makeBuffer([42])
        try backend.reduce(op, try VulkanBuffer(device: backend.device, count: 0), y, shape: [0, 5], axes: [1])
        #expect(try y.download() == [42])
        expectNoValidationMessages(TestDevice.device)
    }

    // MARK: Clip

    @Test func clipMatchesCPU() throws {
        let backend = TestDevice.backend
        // 17 M elements: more than 65535 workgroups of 256 would cover, so the grid-stride loop runs.
        for (count, low, high) in [(1, Float(-0.5), Float(0.5)), (257, -0.25, 0.75), (4099, 0, 6), (17_000_000, -1, 0.3)] {
            // (A cheap pattern for the big case: seeded random numbers are slow in debug builds.)
            let input = count > 100_000 ? (0..<count).map { Float($0 % 1999) / 500 - 2 } : randomFloats(count, in: -2...2, seed: UInt64(count))
            var expected = [Float](repeating: 0, count: count)
            expected.withUnsafeMutableBufferPointer { CPUBackend().clip(input, $0.baseAddress!, count: count, low: low, high: high) }
            let x = try backend.makeBuffer(input)
            let y = count % 2 == 0 ? x : try VulkanBuffer(device: backend.device, count: count)
            try backend.clip(x, y, count: count, low: low, high: high)
            let error = relativeL2(try y.download(), expected)
            #expect(error <= 1e-5, "clip × \(count) [\(low), \(high)]: relative L2 \(error)")
        }
        expectNoValidationMessages(TestDevice.device)
    }

    /// low > high: ONNX Clip (and `min(max(x, low), high)`) gives `high` everywhere. Not compared
    /// with `CPUBackend.clip`, whose 8-lane path gives `low` where `x <= high` in that case.
    @Test func clipWithLowAboveHighGivesHigh() throws {
        let backend = TestDevice.backend
        let x = try backend.makeBuffer(randomFloats(33, in: -2...2, seed: 33))
        try backend.clip(x, x, count: 33, low: 1, high: -1)
        #expect(try x.download() == [Float](repeating: -1, count: 33))
        expectNoValidationMessages(TestDevice.device)
    }

    // MARK: One recording

    /// Layer normalisation, softmax in place, a row max and a clip recorded once and replayed
    /// with new inputs (barriers between the dependent kernels).
    @Test func oneRecordingChainsTheKernelsAndReplays() throws {
        let backend = TestDevice.backend
        let device = backend.device
        let (rows, columns) = (12, 300)
        let scale = randomFloats(columns, in: 0.5...1.5, seed: 91), bias = randomFloats(columns, seed: 92)
        let x = try VulkanBuffer(device: device, count: rows * columns)
        let h = try VulkanBuffer(device: device, count: rows * columns)
        let m = try VulkanBuffer(device: device, count: rows)
        let recording = try VulkanRecording(device: device)
        try recording.layerNormalization(
            x, h, rows: rows, columns: columns, scale: try backend.makeBuffer(scale), bias: try backend.makeBuffer(bias), epsilon: 1e-5)
        try recording.softmax(h, h, outer: rows, axis: columns, inner: 1)
        try recording.reduce(.max, h, m, shape: [rows, columns], axes: [1])
        try recording.clip(m, m, count: rows, low: 0, high: 0.01)
        try recording.end()
        for round in 0..<3 {
            let input = randomFloats(rows * columns, in: -2...2, seed: UInt64(93 + round))
            try x.upload(input)
            try recording.submit()
            var expected = cpuLayerNormalization(input, rows: rows, columns: columns, scale: scale, bias: bias, epsilon: 1e-5)
            expected = cpuSoftmax(expected, SoftmaxShape(outer: rows, axis: columns, inner: 1), logarithm: false)
            var maxima = cpuReduce(.max, expected, shape: [rows, columns], axes: [1])
            maxima = maxima.map { min(max($0, 0), 0.01) }
            let error = relativeL2(try m.download(), maxima)
            #expect(error <= 1e-4, "round \(round): relative L2 \(error)")
        }
        expectNoValidationMessages(device)
    }

    // MARK: Bad sizes

    func expectError(_ code: VulkanError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { try body() } throws: { error in (error as? VulkanError)?.code == code }
    }

    @Test func badSizesThrow() throws {
        let backend = TestDevice.backend
        let device = backend.device
        let small = try backend.makeBuffer([1, 2, 3])
        let big = try VulkanBuffer(device: device, count: 100)
        expectError(.invalidArgument) { try backend.softmax(small, big, outer: 2, axis: 5, inner: 1) }
        expectError(.invalidArgument) { try backend.softmax(big, small, outer: 2, axis: 5, inner: 1) }
        expectError(.invalidArgument) { try backend.softmax(big, big, outer: -1, axis: 5, inner: 1) }
        expectError(.unsupported) { try backend.softmax(big, big, outer: Int.max, axis: 5, inner: 1) }
        expectError(.invalidArgument) { try backend.layerNormalization(big, big, rows: 2, columns: 10, scale: small, bias: nil, epsilon: 1e-5) }
        expectError(.invalidArgument) { try backend.layerNormalization(big, big, rows: 2, columns: 10, scale: big, bias: small, epsilon: 1e-5) }
        expectError(.invalidArgument) { try backend.layerNormalization(small, big, rows: 2, columns: 10, scale: big, bias: nil, epsilon: 1e-5) }
        expectError(.invalidArgument) {
            try backend.batchNormalization(big, big, batch: 2, channels: 4, spatial: 3, scale: big, bias: big, mean: small, variance: big, epsilon: 1e-5)
        }
        expectError(.invalidArgument) {
            try backend.batchNormalization(big, small, batch: 2, channels: 2, spatial: 3, scale: big, bias: big, mean: big, variance: big, epsilon: 1e-5)
        }
        expectError(.invalidArgument) { try backend.reduce(.sum, big, small, shape: [4, 5], axes: [2]) }
        expectError(.invalidArgument) { try backend.reduce(.sum, big, small, shape: [4, 5], axes: [0]) }
        expectError(.invalidArgument) { try backend.reduce(.sum, small, big, shape: [4, 5], axes: [1]) }
        expectError(.invalidArgument) { try backend.reduce(.sum, big, big, shape: [4, 5], axes: [1]) }
        expectError(.invalidArgument) { try backend.reduce(.sum, big, big, shape: [4, -5], axes: [1]) }
        // Nine merged loops (5 kept, 4 reduced): more than the kernel handles.
        let nine = try VulkanBuffer(device: device, count: 2 * 3 * 2 * 3 * 2 * 3 * 2 * 3 * 2)
        expectError(.unsupported) { try backend.reduce(.max, nine, big, shape: [2, 3, 2, 3, 2, 3, 2, 3, 2], axes: [1, 3, 5, 7]) }
        expectError(.invalidArgument) { try backend.clip(small, big, count: 10, low: 0, high: 1) }
        expectError(.invalidArgument) { try backend.clip(big, big, count: -1, low: 0, high: 1) }
        // Nothing recorded by the refused calls; the device is still fine.
        try backend.clip(small, small, count: 3, low: 1.5, high: 2.5)
        #expect(try small.download() == [1.5, 2, 2.5])
        expectNoValidationMessages(device)
    }
}

import FulcrumKernels
import Testing

/// The data-movement and integer kernels (copy, gather, fill, convert, compare, select, INT32
/// binary) against CPU references on seeded random inputs with odd shapes. Data movement and
/// integer results must match exactly (bit for bit); the validation layer must report nothing.
@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanDataTests {
    var backend: VulkanBackend { TestDevice.backend }
    var device: VulkanDevice { TestDevice.device }

    // MARK: Words on the device

    /// A buffer holding `words` exactly (uploaded as float bit patterns).
    func buffer(words: [UInt32]) throws -> VulkanBuffer {
        try backend.makeBuffer(words.map { Float(bitPattern: $0) }, count: max(words.count, 1))
    }

    func buffer(_ values: [Int32]) throws -> VulkanBuffer { try buffer(words: values.map { UInt32(bitPattern: $0) }) }
    func buffer(_ values: [Int64]) throws -> VulkanBuffer { try buffer(words: Self.words(values)) }
    func buffer(_ values: [Bool]) throws -> VulkanBuffer { try buffer(words: values.map { $0 ? 1 : 0 }) }
    func buffer(_ values: [Float]) throws -> VulkanBuffer { try buffer(words: values.map(\.bitPattern)) }

    /// A buffer of `count` words, all `0xDEADBEEF` (so untouched words are visible).
    func poisoned(_ count: Int) throws -> VulkanBuffer { try buffer(words: [UInt32](repeating: 0xDEAD_BEEF, count: count)) }

    func words(_ buffer: VulkanBuffer, _ count: Int? = nil) throws -> [UInt32] {
        try buffer.download(count: count).map(\.bitPattern)
    }

    static func words(_ values: [Int64]) -> [UInt32] {
        values.flatMap { [UInt32(truncatingIfNeeded: $0), UInt32(truncatingIfNeeded: $0 >> 32)] }
    }

    static func int64s(_ words: [UInt32]) -> [Int64] {
        stride(from: 0, to: words.count, by: 2).map { Int64(bitPattern: UInt64(words[$0]) | UInt64(words[$0 + 1]) << 32) }
    }

    static func randomWords(_ count: Int, seed: UInt64) -> [UInt32] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt32.random(in: 0...UInt32.max, using: &generator) }
    }

    /// The CPU reference of a copy of `wordsPerElement`-word elements (4 or 8 bytes).
    static func cpuCopy(
        _ source: [UInt32], sourceOffset: Int, into destination: [UInt32], destinationOffset: Int, layout: CopyLayout,
        wordsPerElement: Int
    ) -> [UInt32] {
        var result = destination
        source.withUnsafeBytes { s in
            result.withUnsafeMutableBytes { d in
                CPUBackend().copy(
                    layout, from: s.baseAddress! + sourceOffset * 4 * wordsPerElement,
                    to: d.baseAddress! + destinationOffset * 4 * wordsPerElement, elementSize: 4 * wordsPerElement)
            }
        }
        return result
    }

    /// Records one copy on the device and on the CPU and expects the same words everywhere in
    /// the destination (untouched words included).
    func expectCopy(
        source count: Int, sourceOffset: Int = 0, destination destinationCount: Int, destinationOffset: Int = 0,
        layout: CopyLayout, wordsPerElement: Int, seed: UInt64, _ what: String
    ) throws {
        let source = Self.randomWords(count * wordsPerElement, seed: seed)
        let initial = [UInt32](repeating: 0xDEAD_BEEF, count: destinationCount * wordsPerElement)
        let expected = Self.cpuCopy(
            source, sourceOffset: sourceOffset, into: initial, destinationOffset: destinationOffset, layout: layout,
            wordsPerElement: wordsPerElement)
        let gs = try buffer(words: source)
        let gd = try buffer(words: initial)
        try backend.run {
            try $0.copy(
                gs, sourceOffset: sourceOffset, to: gd, destinationOffset: destinationOffset, layout: layout,
                wordsPerElement: wordsPerElement)
        }
        #expect(try words(gd) == expected, "\(what) (\(wordsPerElement) words per element)")
    }

    // MARK: Copy

    @Test(arguments: [1, 2])
    func transposesMatchCPU(_ wordsPerElement: Int) throws {
        for (index, shape) in [[2, 17, 9, 3], [3, 5, 7, 11], [1, 13, 1, 6]].enumerated() {
            for perm in [[0, 2, 1, 3], [0, 2, 3, 1], [3, 1, 0, 2]] {
                let strides = CopyLayout.contiguousStrides(shape)
                let outShape = perm.map { shape[$0] }
                let layout = CopyLayout(
                    shape: outShape, sourceStrides: perm.map { strides[$0] },
                    destinationStrides: CopyLayout.contiguousStrides(outShape))
                let count = shape.reduce(1, *)
                try expectCopy(
                    source: count, destination: count, layout: layout, wordsPerElement: wordsPerElement,
                    seed: UInt64(10 * index + perm[1]), "transpose \(shape) by \(perm)")
            }
        }
        expectNoValidationMessages(device)
    }

    @Test(arguments: [1, 2])
    func slicesMatchCPU(_ wordsPerElement: Int) throws {
        // (shape, per-dimension (start, step, size)), negative steps walk backwards.
        let cases: [([Int], [(Int, Int, Int)])] = [
            ([7, 11, 13], [(1, 2, 3), (2, 1, 9), (12, -1, 13)]),
            ([9, 31], [(8, -2, 5), (3, 3, 10)]),
            ([5, 6, 7, 8], [(0, 1, 5), (1, 1, 4), (2, 1, 1), (7, -3, 3)]),
            ([1000], [(999, -1, 1000)]),
        ]
        for (index, (shape, plan)) in cases.enumerated() {
            let strides = CopyLayout.contiguousStrides(shape)
            let offset = zip(strides, plan).reduce(0) { $0 + $1.0 * $1.1.0 }
            let outShape = plan.map(\.2)
            let layout = CopyLayout(
                shape: outShape, sourceStrides: zip(strides, plan).map { $0 * $1.1 },
                destinationStrides: CopyLayout.contiguousStrides(outShape))
            try expectCopy(
                source: shape.reduce(1, *), sourceOffset: offset, destination: outShape.reduce(1, *), layout: layout,
                wordsPerElement: wordsPerElement, seed: UInt64(30 + index), "slice \(shape) \(plan)")
        }
        expectNoValidationMessages(device)
    }

    @Test(arguments: [1, 2])
    func concatAtOffsetsMatchesCPU(_ wordsPerElement: Int) throws {
        // Concat [3, a, 5] along axis 1 for a in 4, 1, 7 into [3, 12, 5]: one copy per input.
        let parts = [4, 1, 7]
        let outShape = [3, parts.reduce(0, +), 5]
        let outStrides = CopyLayout.contiguousStrides(outShape)
        var expected = [UInt32](repeating: 0xDEAD_BEEF, count: outShape.reduce(1, *) * wordsPerElement)
        let out = try buffer(words: expected)
        var offset = 0
        var inputs: [(VulkanBuffer, CopyLayout, Int)] = []
        for (index, part) in parts.enumerated() {
            let shape = [3, part, 5]
            let source = Self.randomWords(shape.reduce(1, *) * wordsPerElement, seed: UInt64(40 + index))
            let layout = CopyLayout(shape: shape, sourceStrides: CopyLayout.contiguousStrides(shape), destinationStrides: outStrides)
            expected = Self.cpuCopy(
                source, sourceOffset: 0, into: expected, destinationOffset: offset * outStrides[1], layout: layout,
                wordsPerElement: wordsPerElement)
            inputs.append((try buffer(words: source), layout, offset * outStrides[1]))
            offset += part
        }
        try backend.run { recording in
            for (source, layout, destinationOffset) in inputs {
                try recording.copy(
                    source, to: out, destinationOffset: destinationOffset, layout: layout, wordsPerElement: wordsPerElement)
            }
        }
        #expect(try words(out) == expected)
        #expect(!expected.contains(0xDEAD_BEEF))
        expectNoValidationMessages(device)
    }

    @Test(arguments: [1, 2])
    func expandMatchesCPU(_ wordsPerElement: Int) throws {
        for (index, (input, target)) in [([3, 1, 5], [4, 3, 6, 5]), ([1], [17, 3]), ([7, 1], [7, 9])].enumerated() {
            let padded = [Int](repeating: 1, count: target.count - input.count) + input
            let contiguous = CopyLayout.contiguousStrides(padded)
            let layout = CopyLayout(
                shape: target, sourceStrides: zip(padded, contiguous).map { $0 == 1 ? 0 : $1 },
                destinationStrides: CopyLayout.contiguousStrides(target))
            try expectCopy(
                source: input.reduce(1, *), destination: target.reduce(1, *), layout: layout,
                wordsPerElement: wordsPerElement, seed: UInt64(50 + index), "expand \(input) to \(target)")
        }
        expectNoValidationMessages(device)
    }

    /// More elements than 65535 workgroups × 256 invocations cover at once: the grid-stride loop.
    @Test func copyBeyondOneDispatchGrid() throws {
        let count = 65535 * 256 + 1001
        let layout = CopyLayout(shape: [count], sourceStrides: [1], destinationStrides: [1])
        let source = (0..<count).map { UInt32($0) &* 2_654_435_761 }
        let gs = try buffer(words: source)
        let gd = try poisoned(count)
        try backend.run { try $0.copy(gs, to: gd, layout: layout) }
        #expect(try words(gd) == source)
        expectNoValidationMessages(device)
    }

    // MARK: Gather

    static func cpuGather(
        _ data: [UInt32], _ indices: [Int64], outer: Int, axisSize: Int, inner: Int, wordsPerElement: Int
    ) -> (out: [UInt32], failed: Bool) {
        var out: [UInt32] = []
        var failed = false
        for o in 0..<outer {
            for raw in indices {
                let index = raw < 0 ? raw + Int64(axisSize) : raw
                for i in 0..<inner {
                    for w in 0..<wordsPerElement {
                        if index >= 0 && index < axisSize {
                            out.append(data[((o * axisSize + Int(index)) * inner + i) * wordsPerElement + w])
                        } else {
                            failed = true
                            out.append(0)
                        }
                    }
                }
            }
        }
        return (out, failed)
    }

    struct GatherCase: Sendable, CustomStringConvertible {
        var shape: [Int]
        var axis: Int
        var indexType: VulkanElementType
        var wordsPerElement: Int
        var description: String { "\(shape) axis \(axis) \(indexType) indices, \(wordsPerElement)-word elements" }
    }

    static let gatherCases: [GatherCase] = [
        GatherCase(shape: [37, 13], axis: 0, indexType: .int64, wordsPerElement: 1),
        GatherCase(shape: [37, 13], axis: 0, indexType: .int32, wordsPerElement: 1),
        GatherCase(shape: [5, 9, 7], axis: 1, indexType: .int64, wordsPerElement: 1),
        GatherCase(shape: [5, 9, 7], axis: 1, indexType: .int32, wordsPerElement: 2),
        GatherCase(shape: [11], axis: 0, indexType: .int64, wordsPerElement: 2),
        GatherCase(shape: [3, 4, 17], axis: 2, indexType: .int32, wordsPerElement: 1),
    ]

    @Test(arguments: gatherCases)
    func gatherMatchesCPU(_ c: GatherCase) throws {
        let outer = c.shape[..<c.axis].reduce(1, *)
        let axisSize = c.shape[c.axis]
        let inner = c.shape[(c.axis + 1)...].reduce(1, *)
        var generator = SeededGenerator(seed: UInt64(axisSize * 7 + c.axis))
        let indices = (0..<23).map { _ in Int64.random(in: -Int64(axisSize)..<Int64(axisSize), using: &generator) }
        let data = Self.randomWords(c.shape.reduce(1, *) * c.wordsPerElement, seed: 60)
        let expected = Self.cpuGather(data, indices, outer: outer, axisSize: axisSize, inner: inner, wordsPerElement: c.wordsPerElement)
        #expect(!expected.failed)
        let gi = c.indexType == .int64 ? try buffer(indices) : try buffer(indices.map { Int32($0) })
        let gd = try buffer(words: data)
        let out = try poisoned(expected.out.count)
        let status = try poisoned(1)
        try backend.run {
            try $0.fill(status)
            try $0.gather(
                gd, indices: gi, indexType: c.indexType, to: out, outer: outer, axisSize: axisSize, inner: inner,
                indexCount: indices.count, wordsPerElement: c.wordsPerElement, status: status)
        }
        #expect(try words(out) == expected.out)
        #expect(try words(status) == [0])
        expectNoValidationMessages(device)
    }

    @Test(arguments: [VulkanElementType.int64, .int32])
    func gatherOutOfRangeSetsStatusAndWritesZeros(_ indexType: VulkanElementType) throws {
        let (outer, axisSize, inner) = (3, 6, 5)
        var indices: [Int64] = [0, -6, 5, 6, -7, 2, Int64(Int32.max), Int64(Int32.min)]
        if indexType == .int64 { indices += [1 << 32, (1 << 32) + 1, -(1 << 32), -(1 << 32) + 1, .min, .max] }
        let data = Self.randomWords(outer * axisSize * inner, seed: 70)
        let expected = Self.cpuGather(data, indices, outer: outer, axisSize: axisSize, inner: inner, wordsPerElement: 1)
        #expect(expected.failed)
        let gi = indexType == .int64 ? try buffer(indices) : try buffer(indices.map { Int32($0) })
        let gd = try buffer(words: data)
        let out = try poisoned(expected.out.count)
        let status = try poisoned(1)
        try backend.run {
            try $0.fill(status)
            try $0.gather(
                gd, indices: gi, indexType: indexType, to: out, outer: outer, axisSize: axisSize, inner: inner,
                indexCount: indices.count, status: status)
        }
        #expect(try words(out) == expected.out)
        let reported = try words(status)[0]
        // 1 + the position of an offending index (the last one: the atomic max).
        #expect(reported == UInt32(indices.count))
        #expect(reported != 0)
        expectNoValidationMessages(device)
    }

    // MARK: Fill

    @Test func fillWritesTheFirstWordsInOrder() throws {
        let target = try buffer(words: Self.randomWords(300, seed: 80))
        let before = try words(target)
        let copyOut = try poisoned(300)
        let layout = CopyLayout(shape: [300], sourceStrides: [1], destinationStrides: [1])
        try backend.run {
            try $0.fill(target, word: 0x1234_5678, count: 101)
            try $0.copy(target, to: copyOut, layout: layout)  // sees the fill
            try $0.fill(target)
        }
        #expect(try words(copyOut) == [UInt32](repeating: 0x1234_5678, count: 101) + before[101...])
        #expect(try words(target) == [UInt32](repeating: 0, count: 300))
        expectNoValidationMessages(device)
    }

    // MARK: Convert

    static let specialFloats: [Float] = [
        0, -0.0, 1, -1, 0.5, -0.5, 2.5, -2.5, 0.999, -0.999, 16_777_216, 1e10, -1e10, 3e9, -3e9, 2_147_483_648,
        -2_147_483_648, 9.223372e18, -9.223372e18, 1e20, -1e20, .infinity, -.infinity, .nan, .leastNonzeroMagnitude,
        .greatestFiniteMagnitude, 4_294_967_296.5, 123_456.789,
    ]
    static let specialInt32s: [Int32] = [0, 1, -1, .max, .min, 16_777_217, -16_777_217, 16_777_219, 33_554_435, 7, -123_456_789]
    static let specialInt64s: [Int64] = [
        0, 1, -1, .max, .min, 1 << 32, -(1 << 32), (1 << 32) + 1, (1 << 53) + 1, 16_777_217, 16_777_219, (1 << 24) + 3,
        (1 << 40) + (1 << 16), (1 << 40) + (1 << 16) + 1, (1 << 40) + 3 << 16, -((1 << 40) + 3 << 16), 0xFFFF_FFFF,
        0x7FFF_FFFF, -0x8000_0000, 1 << 62, -(1 << 62) - 12345, 9_007_199_254_740_993,
    ]

    /// The host's Cast (as the runtime's CastOperator computes it): truncation toward zero,
    /// saturating at the int64 range, NaN → 0.
    static func truncate(_ value: Float) -> Int64 {
        value.isNaN ? 0 : Int64(exactly: value.rounded(.towardZero)) ?? (value < 0 ? .min : .max)
    }

    /// `values` of type `type` as device words, decoded through Int64/Float for the reference.
    enum Values {
        case floats([Float]), int32s([Int32]), int64s([Int64]), bools([Bool])
        var type: VulkanElementType {
            switch self {
            case .floats: .float32
            case .int32s: .int32
            case .int64s: .int64
            case .bools: .bool
            }
        }
        var count: Int {
            switch self {
            case .floats(let v): v.count
            case .int32s(let v): v.count
            case .int64s(let v): v.count
            case .bools(let v): v.count
            }
        }
        var words: [UInt32] {
            switch self {
            case .floats(let v): v.map(\.bitPattern)
            case .int32s(let v): v.map { UInt32(bitPattern: $0) }
            case .int64s(let v): VulkanDataTests.words(v)
            case .bools(let v): v.map { $0 ? 1 : 0 }
            }
        }
        /// Cast to `target` as device words.
        func cast(to target: VulkanElementType) -> [UInt32] {
            let integers: [Int64]
            switch self {
            case .floats(let v):
                switch target {
                case .float32: return v.map(\.bitPattern)
                case .bool: return v.map { $0 != 0 || $0.isNaN ? 1 : 0 }
                default: integers = v.map(VulkanDataTests.truncate)
                }
            case .int32s(let v): integers = v.map(Int64.init)
            case .int64s(let v): integers = v
            case .bools(let v): integers = v.map { $0 ? 1 : 0 }
            }
            switch target {
            case .float32: return integers.map { Float($0).bitPattern }
            case .int32: return integers.map { UInt32(truncatingIfNeeded: $0) }
            case .int64: return VulkanDataTests.words(integers)
            case .bool: return integers.map { $0 != 0 ? 1 : 0 }
            }
        }
    }

    static func sampleValues(_ type: VulkanElementType) -> Values {
        var generator = SeededGenerator(seed: 90)
        let n = 500
        switch type {
        case .float32:
            let scales: [Float] = [1, 100, 1e6, 1e12, 1e19]
            return .floats(specialFloats + (0..<n).map { i in Float.random(in: -1...1, using: &generator) * scales[i % scales.count] })
        case .int32:
            return .int32s(specialInt32s + (0..<n).map { _ in Int32.random(in: .min ... .max, using: &generator) })
        case .int64:
            return .int64s(specialInt64s + (0..<n).map { i in Int64.random(in: .min ... .max, using: &generator) >> (i % 60) })
        case .bool:
            return .bools((0..<n).map { _ in Bool.random(using: &generator) })
        }
    }

    @Test(arguments: VulkanElementType.allCases)
    func convertMatchesHostCast(_ from: VulkanElementType) throws {
        let values = Self.sampleValues(from)
        let input = try buffer(words: values.words)
        for target in VulkanElementType.allCases {
            let out = try poisoned(values.count * target.words + 3)
            try backend.run { try $0.convert(input, from: from, to: out, as: target, count: values.count) }
            let actual = try words(out)
            let expected = values.cast(to: target)
            let mismatches = zip(actual, expected).enumerated().filter { $0.element.0 != $0.element.1 }
            #expect(
                mismatches.isEmpty,
                "\(from) → \(target): \(mismatches.count) mismatches, first (index, got, want): \(mismatches.prefix(3).map { ($0.offset, $0.element.0, $0.element.1) })")
            #expect(Array(actual.suffix(3)) == [0xDEAD_BEEF, 0xDEAD_BEEF, 0xDEAD_BEEF], "\(from) → \(target) wrote past count")
        }
        expectNoValidationMessages(device)
    }

    @Test func convertBeyondOneDispatchGrid() throws {
        let count = 65535 * 256 + 77
        let values = (0..<count).map { Int32(truncatingIfNeeded: $0 &* 40_503) &- 1_000_000 }
        let input = try buffer(values)
        let out = try poisoned(count * 2)
        try backend.run { try $0.convert(input, from: .int32, to: out, as: .int64, count: count) }
        #expect(Self.int64s(try words(out)) == values.map(Int64.init))
        expectNoValidationMessages(device)
    }

    // MARK: Compare

    static let comparePairs: [([Int], [Int])] = [([7], [7]), ([3, 5], [5]), ([4, 1, 6], [1, 5, 1]), ([1], [9, 11]), ([2, 3, 4, 5], [3, 1, 5])]

    @Test(arguments: [VulkanComparison.equal, .less, .greater])
    func compareMatchesCPU(_ op: VulkanComparison) throws {
        let cpu = CPUBackend()
        for (index, (shapeA, shapeB)) in Self.comparePairs.enumerated() {
            let layout = try #require(BroadcastLayout(shapeA, shapeB))
            let (countA, countB) = (shapeA.reduce(1, *), shapeB.reduce(1, *))
            var generator = SeededGenerator(seed: UInt64(100 + index))
            func pick<T>(_ pool: [T], _ fallback: () -> T) -> T {
                Bool.random(using: &generator) ? pool.randomElement(using: &generator)! : fallback()
            }
            // Small pools make equal values common; the int64 pool differs only in the high or
            // only in the low word, and crosses 2^32 and zero.
            let floatPool: [Float] = [0, -0.0, 1, -1, 0.5, .nan, .infinity, -.infinity]
            let floatsA = (0..<countA).map { _ in pick(floatPool) { Float.random(in: -2...2, using: &generator) } }
            let floatsB = (0..<countB).map { _ in pick(floatPool) { Float.random(in: -2...2, using: &generator) } }
            let int32Pool: [Int32] = [0, 1, -1, .max, .min, 5]
            let int32sA = (0..<countA).map { _ in pick(int32Pool) { Int32.random(in: -3...3, using: &generator) } }
            let int32sB = (0..<countB).map { _ in pick(int32Pool) { Int32.random(in: -3...3, using: &generator) } }
            let int64Pool: [Int64] = [0, 1, -1, .max, .min, 1 << 32, (1 << 32) + 1, -(1 << 32), -(1 << 32) + 1, 0xFFFF_FFFF, 5 << 32, (5 << 32) + 7, -(5 << 32) + 7]
            let int64sA = (0..<countA).map { _ in pick(int64Pool) { Int64.random(in: -(1 << 40)...(1 << 40), using: &generator) } }
            let int64sB = (0..<countB).map { _ in pick(int64Pool) { Int64.random(in: -(1 << 40)...(1 << 40), using: &generator) } }

            func check<T: Comparable>(_ a: [T], _ b: [T], _ ga: VulkanBuffer, _ gb: VulkanBuffer, _ type: VulkanElementType) throws {
                var expected = [UInt32](repeating: 0, count: layout.elementCount)
                expected.withUnsafeMutableBufferPointer { out in
                    switch op {
                    case .equal: cpu.broadcast(a, b, out.baseAddress!, layout: layout) { $0 == $1 ? 1 : 0 }
                    case .less: cpu.broadcast(a, b, out.baseAddress!, layout: layout) { $0 < $1 ? 1 : 0 }
                    case .greater: cpu.broadcast(a, b, out.baseAddress!, layout: layout) { $0 > $1 ? 1 : 0 }
                    }
                }
                let out = try poisoned(layout.elementCount)
                try backend.run { try $0.compare(op, ga, gb, elementType: type, to: out, layout: layout) }
                #expect(try words(out) == expected, "\(op) \(type) \(shapeA) vs \(shapeB)")
            }
            try check(floatsA, floatsB, try buffer(floatsA), try buffer(floatsB), .float32)
            try check(int32sA, int32sB, try buffer(int32sA), try buffer(int32sB), .int32)
            try check(int64sA, int64sB, try buffer(int64sA), try buffer(int64sB), .int64)
            if op == .equal {
                let boolsA = (0..<countA).map { _ in Bool.random(using: &generator) }
                let boolsB = (0..<countB).map { _ in Bool.random(using: &generator) }
                try check(boolsA.map { $0 ? 1 : 0 } as [Int32], boolsB.map { $0 ? 1 : 0 }, try buffer(boolsA), try buffer(boolsB), .bool)
            }
        }
        expectNoValidationMessages(device)
    }

    // MARK: Select

    struct SelectCase: Sendable, CustomStringConvertible {
        var condition: [Int], x: [Int], y: [Int]
        var description: String { "where(\(condition), \(x), \(y))" }
    }

    static let selectCases: [SelectCase] = [
        SelectCase(condition: [7], x: [7], y: [7]),
        SelectCase(condition: [3, 1, 5], x: [1, 4, 5], y: [5]),
        SelectCase(condition: [1], x: [9, 11], y: [1, 11]),
        SelectCase(condition: [2, 3, 1, 5], x: [3, 4, 1], y: [2, 1, 4, 5]),
        SelectCase(condition: [13, 17], x: [], y: [13, 1]),
        SelectCase(condition: [2, 1, 3, 1, 2, 1, 3, 1], x: [1, 2, 1, 3, 1, 2, 1, 3], y: [2, 2, 1, 1, 2, 2, 1, 1]),
    ]

    static func broadcastStrides(_ shape: [Int], to output: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: output.count - shape.count) + shape
        return zip(padded, CopyLayout.contiguousStrides(padded)).map { $0 == 1 ? 0 : $1 }
    }

    @Test(arguments: selectCases)
    func selectMatchesCPU(_ c: SelectCase) throws {
        let xy = try #require(BroadcastLayout.broadcastShape(c.x, c.y))
        let shape = try #require(BroadcastLayout.broadcastShape(c.condition, xy))
        let (cs, xs, ys) = (Self.broadcastStrides(c.condition, to: shape), Self.broadcastStrides(c.x, to: shape), Self.broadcastStrides(c.y, to: shape))
        var generator = SeededGenerator(seed: UInt64(shape.reduce(1, *)))
        let condition = (0..<c.condition.reduce(1, *)).map { _ in Bool.random(using: &generator) }
        for wordsPerElement in [1, 2] {
            let x = Self.randomWords(c.x.reduce(1, *) * wordsPerElement, seed: 110)
            let y = Self.randomWords(c.y.reduce(1, *) * wordsPerElement, seed: 111)
            var expected: [UInt32] = []
            let outStrides = CopyLayout.contiguousStrides(shape)
            for i in 0..<shape.reduce(1, *) {
                let coords = zip(shape, outStrides).map { i / $1 % $0 }
                func at(_ strides: [Int]) -> Int { zip(coords, strides).reduce(0) { $0 + $1.0 * $1.1 } }
                for w in 0..<wordsPerElement {
                    expected.append(condition[at(cs)] ? x[at(xs) * wordsPerElement + w] : y[at(ys) * wordsPerElement + w])
                }
            }
            let (gc, gx, gy) = (try buffer(condition), try buffer(words: x), try buffer(words: y))
            let out = try poisoned(expected.count + 1)
            try backend.run {
                try $0.select(gc, gx, gy, to: out, shape: shape, conditionStrides: cs, xStrides: xs, yStrides: ys, wordsPerElement: wordsPerElement)
            }
            #expect(try words(out) == expected + [0xDEAD_BEEF], "\(c) with \(wordsPerElement)-word elements")
        }
        expectNoValidationMessages(device)
    }

    // MARK: INT32 binary

    @Test(arguments: BinaryOperator.allCases)
    func int32BinaryMatchesCPU(_ op: BinaryOperator) throws {
        let cpu = CPUBackend()
        let extremes: [Int32] = [0, 1, -1, .max, .min, 2, -2, 65_536, 46_341, -46_341, 7, -7]
        for (index, (shapeA, shapeB)) in [([12], [12]), ([12, 1], [1, 12]), ([3, 5, 7], [5, 1]), ([1000], [1])].enumerated() {
            let layout = try #require(BroadcastLayout(shapeA, shapeB))
            var generator = SeededGenerator(seed: UInt64(120 + index))
            func values(_ count: Int, _ first: [Int32]) -> [Int32] {
                (0..<count).map { i in
                    i < first.count ? first[i] : (Bool.random(using: &generator) ? extremes.randomElement(using: &generator)! : Int32.random(in: .min ... .max, using: &generator))
                }
            }
            let a = values(shapeA.reduce(1, *), extremes)
            let b = values(shapeB.reduce(1, *), index == 1 ? extremes.reversed() : extremes)
            var expected = [Int32](repeating: 0, count: layout.elementCount)
            expected.withUnsafeMutableBufferPointer { cpu.binary(op, a, b, $0.baseAddress!, layout: layout) }
            let out = try poisoned(layout.elementCount)
            try backend.run { try $0.binary(op, try buffer(a), try buffer(b), out, layout: layout, elementType: .int32) }
            #expect(try words(out) == expected.map { UInt32(bitPattern: $0) }, "\(op) \(shapeA) ∘ \(shapeB)")
        }
        expectNoValidationMessages(device)
    }

    @Test func int32DivisionEdgeCases() throws {
        let a: [Int32] = [7, -7, 7, -7, .min, .min, 5, 0, .max, -1]
        let b: [Int32] = [2, 2, -2, -2, -1, 0, 0, 0, .min, .max]
        let layout = try #require(BroadcastLayout([10], [10]))
        let out = try poisoned(10)
        try backend.run { try $0.binary(.div, try buffer(a), try buffer(b), out, layout: layout, elementType: .int32) }
        #expect(try words(out).map { Int32(bitPattern: $0) } == [3, -3, -3, 3, .min, 0, 0, 0, 0, 0])
        expectNoValidationMessages(device)
    }

    // MARK: Refusals

    @Test func badSizesThrowInsteadOfTrapping() throws {
        let small = try poisoned(4)
        let big = try poisoned(64)
        func expectError(_ code: VulkanError.Code, _ what: String, _ body: (VulkanRecording) throws -> Void) throws {
            let recording = try VulkanRecording(device: device)
            do {
                try body(recording)
                Issue.record("\(what): no error")
            } catch let error as VulkanError {
                #expect(error.code == code, "\(what): \(error)")
            } catch {
                Issue.record("\(what): \(error)")
            }
        }
        let layout = CopyLayout(shape: [3, 5], sourceStrides: [5, 1], destinationStrides: [5, 1])
        try expectError(.invalidArgument, "copy into a small destination") { try $0.copy(big, to: small, layout: layout) }
        try expectError(.invalidArgument, "copy from a small source") { try $0.copy(small, to: big, layout: layout) }
        try expectError(.invalidArgument, "copy past the end at an offset") { try $0.copy(big, sourceOffset: 50, to: big, layout: layout) }
        try expectError(.invalidArgument, "copy with a negative reach") {
            try $0.copy(big, to: big, layout: CopyLayout(shape: [4], sourceStrides: [-1], destinationStrides: [1]))
        }
        try expectError(.invalidArgument, "int64 copy past the end") { try $0.copy(big, to: big, destinationOffset: 20, layout: layout, wordsPerElement: 2) }
        try expectError(.invalidArgument, "copy with 0 words per element") { try $0.copy(big, to: big, layout: layout, wordsPerElement: 0) }
        try expectError(.unsupported, "copy of 9 dimensions") {
            let shape = [Int](repeating: 2, count: 9)
            try $0.copy(big, to: big, layout: CopyLayout(shape: shape, sourceStrides: (0..<9).map { 1 << $0 }, destinationStrides: (0..<9).map { 1 << (8 - $0) }))
        }
        try expectError(.invalidArgument, "gather into a small output") {
            try $0.gather(big, indices: big, indexType: .int32, to: small, outer: 2, axisSize: 4, inner: 3, indexCount: 5, status: small)
        }
        try expectError(.invalidArgument, "gather with too few indices") {
            try $0.gather(big, indices: small, indexType: .int64, to: big, outer: 1, axisSize: 4, inner: 1, indexCount: 3, status: small)
        }
        try expectError(.invalidArgument, "gather with negative sizes") {
            try $0.gather(big, indices: big, indexType: .int32, to: big, outer: -1, axisSize: 4, inner: 1, indexCount: 3, status: small)
        }
        try expectError(.unsupported, "gather with float indices") {
            try $0.gather(big, indices: big, indexType: .float32, to: big, outer: 1, axisSize: 4, inner: 1, indexCount: 3, status: small)
        }
        try expectError(.invalidArgument, "fill past the end") { try $0.fill(small, count: 5) }
        try expectError(.invalidArgument, "convert into a small output") { try $0.convert(big, from: .int32, to: small, as: .int64, count: 3) }
        try expectError(.invalidArgument, "convert from a small input") { try $0.convert(small, from: .int64, to: big, as: .float32, count: 3) }
        let broadcast = try #require(BroadcastLayout([4, 5], [5]))
        try expectError(.invalidArgument, "compare with a small operand") { try $0.compare(.less, small, big, elementType: .int32, to: big, layout: broadcast) }
        try expectError(.invalidArgument, "int64 compare with a small operand") { 
            try $0.compare(.less, big, big, elementType: .int64, to: big, layout: BroadcastLayout([8, 5], [5])!)
        }
        try expectError(.invalidArgument, "compare into a small output") { try $0.compare(.equal, big, big, elementType: .float32, to: small, layout: broadcast) }
        try expectError(.unsupported, "less on bools") { try $0.compare(.less, big, big, elementType: .bool, to: big, layout: broadcast) }
        try expectError(.invalidArgument, "select with mismatched strides") {
            try $0.select(big, big, big, to: big, shape: [2, 3], conditionStrides: [3], xStrides: [3, 1], yStrides: [3, 1])
        }
        try expectError(.invalidArgument, "select reading past x") {
            try $0.select(big, small, big, to: big, shape: [2, 3], conditionStrides: [3, 1], xStrides: [3, 1], yStrides: [3, 1])
        }
        try expectError(.invalidArgument, "select into a small output") {
            try $0.select(big, big, big, to: small, shape: [2, 3], conditionStrides: [3, 1], xStrides: [3, 1], yStrides: [3, 1])
        }
        try expectError(.unsupported, "select of 3-word elements") {
            try $0.select(big, big, big, to: big, shape: [2], conditionStrides: [1], xStrides: [1], yStrides: [1], wordsPerElement: 3)
        }
        try expectError(.unsupported, "int64 binary") { try $0.binary(.add, big, big, big, layout: broadcast, elementType: .int64) }
        try expectError(.invalidArgument, "int32 binary with a small operand") { try $0.binary(.add, small, big, big, layout: broadcast, elementType: .int32) }
        expectNoValidationMessages(device)
    }

    @Test func emptyWorkRecordsNothing() throws {
        let small = try poisoned(4)
        try backend.run {
            try $0.copy(small, to: small, layout: CopyLayout(shape: [0, 3], sourceStrides: [3, 1], destinationStrides: [3, 1]))
            try $0.convert(small, from: .float32, to: small, as: .int32, count: 0)
            try $0.fill(small, count: 0)
            try $0.select(small, small, small, to: small, shape: [2, 0], conditionStrides: [0, 1], xStrides: [0, 1], yStrides: [0, 1])
            try $0.gather(small, indices: small, indexType: .int32, to: small, outer: 0, axisSize: 4, inner: 1, indexCount: 3, status: small)
        }
        #expect(try words(small) == [UInt32](repeating: 0xDEAD_BEEF, count: 4))
        expectNoValidationMessages(device)
    }
}

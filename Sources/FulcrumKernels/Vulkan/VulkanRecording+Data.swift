/// Data movement and integer/boolean kernels: strided copies (Transpose, Slice, Expand, Concat,
/// Split), Gather, fills, Cast, comparisons and Where, on buffers laid out as
/// `VulkanElementType` says (INT64 as word pairs, BOOL as one word per element).
///
/// Every call validates sizes, offsets and strides against the buffers before recording and
/// throws `VulkanError` (`invalidArgument`, or `unsupported` for what the kernels do not handle)
/// instead of trapping. Each kernel is one dispatch with a grid-stride loop, so any element
/// count up to 2^32 fits the dispatch limits; indexing is 32-bit (word indices up to 2^32 - 1).
extension VulkanRecording {
    /// Strided copy of elements of `wordsPerElement` words: for each index of `layout`,
    /// `destination[destinationOffset + Σ i·dstStride] = source[sourceOffset + Σ i·srcStride]`
    /// (offsets and strides in ELEMENTS; source strides may be 0 (broadcast) or negative (Slice
    /// with negative steps)). Transpose, Slice, Expand (source stride 0), Concat (one copy per
    /// input at an offset), Split. Source and destination must not overlap.
    public func copy(
        _ source: VulkanBuffer, sourceOffset: Int = 0, to destination: VulkanBuffer, destinationOffset: Int = 0,
        layout: CopyLayout, wordsPerElement: Int = 1
    ) throws {
        guard wordsPerElement >= 1 else {
            throw VulkanError(.invalidArgument, "copy with \(wordsPerElement) words per element")
        }
        guard layout.sizes.allSatisfy({ $0 >= 0 }) else {
            throw VulkanError(.invalidArgument, "copy with negative sizes \(layout.sizes)")
        }
        let count = layout.elementCount
        guard count > 0 else { return }
        let rank = layout.sizes.count
        guard rank <= 8 else {
            throw VulkanError(.unsupported, "copy with \(rank) merged dimensions (the Vulkan kernel handles 8)")
        }
        try Self.checkSpan(
            "copy source", source, offset: sourceOffset, sizes: layout.sizes, strides: layout.sourceStrides, words: wordsPerElement)
        try Self.checkSpan(
            "copy destination", destination, offset: destinationOffset, sizes: layout.sizes,
            strides: layout.destinationStrides, words: wordsPerElement)
        try Self.checkRange([count, sourceOffset, destinationOffset, wordsPerElement] + layout.sizes)
        let words: [UInt32] =
            [UInt32(count), UInt32(rank), UInt32(wordsPerElement), UInt32(sourceOffset), UInt32(destinationOffset)]
            + Self.padded(layout.sizes, with: 1) + (try Self.signedWords(layout.sourceStrides))
            + (try Self.signedWords(layout.destinationStrides))
        try dispatch(.copy, buffers: [source, destination], push: words, groups: (Self.elementGroups(count), 1))
    }

    /// Gather along an axis: `data` viewed as `[outer, axisSize, inner]` (elements of
    /// `wordsPerElement` words), `indices` (`.int32` or `.int64`, `indexCount` of them, negative
    /// counts from the end) → `out` `[outer, indexCount, inner]`.
    ///
    /// An index outside `[-axisSize, axisSize)` writes zeros and raises `status[0]` to at least
    /// 1 + its position in `indices` (atomic max), so a nonzero `status[0]` means the batch
    /// failed; the caller zeroes it with `fill(_:word:count:)` first and reads it afterwards.
    /// When the output is empty (`outer` or `inner` 0) nothing is recorded and the indices are
    /// not checked.
    public func gather(
        _ data: VulkanBuffer, indices: VulkanBuffer, indexType: VulkanElementType, to out: VulkanBuffer, outer: Int,
        axisSize: Int, inner: Int, indexCount: Int, wordsPerElement: Int = 1, status: VulkanBuffer
    ) throws {
        guard indexType == .int32 || indexType == .int64 else {
            throw VulkanError(.unsupported, "gather with \(indexType) indices (int32 or int64)")
        }
        guard outer >= 0, axisSize >= 0, inner >= 0, indexCount >= 0, wordsPerElement >= 1 else {
            throw VulkanError(
                .invalidArgument,
                "gather with outer \(outer), axis \(axisSize), inner \(inner), \(indexCount) indices, \(wordsPerElement) words per element")
        }
        let total = try Self.product([outer, indexCount, inner])
        guard total > 0 else { return }
        let dataWords = try Self.product([outer, axisSize, inner, wordsPerElement])
        let outWords = try Self.product([total, wordsPerElement])
        let indexWords = try Self.product([indexCount, indexType.words])
        guard data.count >= dataWords, indices.count >= indexWords, out.count >= outWords, status.count >= 1 else {
            throw VulkanError(
                .invalidArgument,
                "gather needs \(dataWords) data, \(indexWords) index, \(outWords) output and 1 status words; "
                    + "buffers have \(data.count), \(indices.count), \(out.count) and \(status.count)")
        }
        try Self.checkRange([dataWords, outWords, indexWords, axisSize])
        let words: [UInt32] = [
            UInt32(total), UInt32(inner), UInt32(indexCount), UInt32(axisSize), UInt32(wordsPerElement),
            indexType == .int64 ? 1 : 0,
        ]
        try dispatch(.gather, buffers: [data, indices, out, status], push: words, groups: (Self.elementGroups(total), 1))
    }

    /// Fills the first `count` words (default: all) of `buffer` with `word` (`vkCmdFillBuffer`),
    /// ordered after earlier commands and before later ones.
    public func fill(_ buffer: VulkanBuffer, word: UInt32 = 0, count: Int? = nil) throws {
        let n = count ?? buffer.count
        guard n >= 0, n <= buffer.count else {
            throw VulkanError(.invalidArgument, "fill of \(n) words in a buffer of \(buffer.count)")
        }
        guard n > 0 else { return }
        try recordFill(buffer, word: word, bytes: n * 4)
    }

    /// Converts `count` elements of type `from` in `input` to type `target` in `out`, with ONNX
    /// Cast semantics as `CPUBackend`'s Cast computes them: float → integer truncates toward zero
    /// (NaN → 0; beyond the int64 range saturates, and int32 keeps the low word of that int64);
    /// integer → float rounds to nearest, ties to even (int64 exactly, from both words); → bool
    /// is `x != 0` (NaN → true); bool → numbers is 0 or 1. The same type copies the words.
    public func convert(
        _ input: VulkanBuffer, from: VulkanElementType, to out: VulkanBuffer, as target: VulkanElementType, count: Int
    ) throws {
        guard count >= 0 else { throw VulkanError(.invalidArgument, "convert of \(count) elements") }
        guard count > 0 else { return }
        let inWords = try Self.product([count, from.words])
        let outWords = try Self.product([count, target.words])
        guard input.count >= inWords, out.count >= outWords else {
            throw VulkanError(
                .invalidArgument,
                "convert of \(count) \(from) to \(target) needs \(inWords) and \(outWords) words; buffers have \(input.count) and \(out.count)")
        }
        try Self.checkRange([inWords, outWords])
        try dispatch(
            .convert, buffers: [input, out], push: [UInt32(count), from.code, target.code],
            groups: (Self.elementGroups(count), 1))
    }

    /// Records `out = a op b` as bool words (0 or 1) with numpy broadcasting as planned by
    /// `layout` (`BroadcastLayout(shapeA, shapeB)`, at most 8 merged loops). Operands of
    /// `elementType` `.float32` (false with NaN), `.int32`, `.int64` (compared exactly as signed
    /// 64-bit, both words) or, for `.equal` only, `.bool` (`(a != 0) == (b != 0)`).
    public func compare(
        _ op: VulkanComparison, _ a: VulkanBuffer, _ b: VulkanBuffer, elementType: VulkanElementType, to out: VulkanBuffer,
        layout: BroadcastLayout
    ) throws {
        guard elementType != .bool || op == .equal else {
            throw VulkanError(.unsupported, "compare \(op) on bool (only equal)")
        }
        let total = layout.elementCount
        guard total > 0 else { return }
        let rank = layout.sizes.count
        guard rank <= 8 else {
            throw VulkanError(.unsupported, "broadcast with \(rank) merged dimensions (the Vulkan kernel handles 8)")
        }
        let words = elementType.words
        try Self.checkSpan("compare a", a, offset: 0, sizes: layout.sizes, strides: layout.stridesA, words: words)
        try Self.checkSpan("compare b", b, offset: 0, sizes: layout.sizes, strides: layout.stridesB, words: words)
        guard out.count >= total else {
            throw VulkanError(.invalidArgument, "compare writes \(total) words; the output buffer has \(out.count)")
        }
        try Self.checkRange([total] + layout.sizes + layout.stridesA + layout.stridesB)
        let opCode: UInt32 = switch op {
        case .equal: 0
        case .less: 1
        case .greater: 2
        }
        let push: [UInt32] = [UInt32(total), opCode, elementType.code, UInt32(rank)]
            + Self.padded(layout.sizes, with: 1) + Self.padded(layout.stridesA, with: 0) + Self.padded(layout.stridesB, with: 0)
        try dispatch(.compare, buffers: [a, b, out], push: push, groups: (Self.elementGroups(total), 1))
    }

    /// ONNX Where: `out = condition ? x : y` with three-way broadcasting to `shape` (rank ≤ 8
    /// after merging dimensions that are contiguous for all three inputs); strides in elements,
    /// 0 where broadcast; `x`, `y` and `out` (contiguous, `shape`) hold elements of
    /// `wordsPerElement` words (1 or 2); `condition` holds bool words (nonzero is true).
    public func select(
        _ condition: VulkanBuffer, _ x: VulkanBuffer, _ y: VulkanBuffer, to out: VulkanBuffer, shape: [Int],
        conditionStrides: [Int], xStrides: [Int], yStrides: [Int], wordsPerElement: Int = 1
    ) throws {
        guard conditionStrides.count == shape.count, xStrides.count == shape.count, yStrides.count == shape.count else {
            throw VulkanError(
                .invalidArgument,
                "select: shape \(shape) with \(conditionStrides.count), \(xStrides.count) and \(yStrides.count) strides")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw VulkanError(.invalidArgument, "select with negative shape \(shape)") }
        guard wordsPerElement == 1 || wordsPerElement == 2 else {
            throw VulkanError(.unsupported, "select with \(wordsPerElement) words per element (1 or 2)")
        }
        let total = try Self.product(shape)
        guard total > 0 else { return }
        // Drop size-1 dimensions and merge neighbours that are contiguous in all three inputs
        // (the output is contiguous, so it always merges).
        var sizes: [Int] = []
        var strides: [[Int]] = [[], [], []]
        for d in shape.indices where shape[d] != 1 {
            let here = [conditionStrides[d], xStrides[d], yStrides[d]]
            if let last = sizes.last, (0..<3).allSatisfy({ strides[$0].last! == here[$0] * shape[d] }) {
                sizes[sizes.count - 1] = last * shape[d]
                for k in 0..<3 { strides[k][strides[k].count - 1] = here[k] }
            } else {
                sizes.append(shape[d])
                for k in 0..<3 { strides[k].append(here[k]) }
            }
        }
        guard sizes.count <= 8 else {
            throw VulkanError(.unsupported, "select with \(sizes.count) merged dimensions (the Vulkan kernel handles 8)")
        }
        try Self.checkSpan("select condition", condition, offset: 0, sizes: sizes, strides: strides[0], words: 1)
        try Self.checkSpan("select x", x, offset: 0, sizes: sizes, strides: strides[1], words: wordsPerElement)
        try Self.checkSpan("select y", y, offset: 0, sizes: sizes, strides: strides[2], words: wordsPerElement)
        let outWords = try Self.product([total, wordsPerElement])
        guard out.count >= outWords else {
            throw VulkanError(.invalidArgument, "select writes \(outWords) words; the output buffer has \(out.count)")
        }
        try Self.checkRange([outWords] + sizes)
        // Unused loops go first (outermost) with size 1: the kernel always runs 8.
        let unused = 8 - sizes.count
        func leading(_ values: [Int], _ fill: Int) -> [Int] { Array(repeating: fill, count: unused) + values }
        let push: [UInt32] = leading(sizes, 1).map { UInt32($0) }
            + (try Self.signedWords(leading(strides[0], 0))) + (try Self.signedWords(leading(strides[1], 0)))
            + (try Self.signedWords(leading(strides[2], 0)))
        try dispatch(
            wordsPerElement == 1 ? .select : .select64, buffers: [condition, x, y, out], push: push,
            groups: (Self.elementGroups(total), 1))
    }

    // MARK: Checks

    /// Throws unless every element that `offset + Σ i·stride` reaches (for `i` below `sizes`,
    /// which are all positive) lies inside `buffer` as elements of `words` words.
    static func checkSpan(_ what: String, _ buffer: VulkanBuffer, offset: Int, sizes: [Int], strides: [Int], words: Int) throws {
        guard sizes.count == strides.count else {
            throw VulkanError(.invalidArgument, "\(what): \(sizes.count) sizes and \(strides.count) strides")
        }
        var low = offset
        var high = offset
        for (size, stride) in zip(sizes, strides) where size > 1 {
            let (step, overflow) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, overflowSum) = step < 0 ? low.addingReportingOverflow(step) : high.addingReportingOverflow(step)
            guard !overflow, !overflowSum else { throw VulkanError(.unsupported, "\(what): strides beyond 64-bit indexing") }
            if step < 0 { low = sum } else { high = sum }
        }
        let elements = buffer.count / words
        guard low >= 0, high < elements else {
            throw VulkanError(
                .invalidArgument,
                "\(what) reaches elements \(low)...\(high) of a buffer holding \(elements) elements of \(words) words")
        }
        guard (high + 1) * words <= Int(UInt32.max) + 1 else {
            throw VulkanError(.unsupported, "\(what): word indices beyond 32 bits")
        }
    }

    /// The product of non-negative `values`, or `unsupported` on overflow.
    static func product(_ values: [Int]) throws -> Int {
        try values.reduce(1) { result, value in
            let (product, overflow) = result.multipliedReportingOverflow(by: value)
            guard !overflow else { throw VulkanError(.unsupported, "sizes \(values) overflow") }
            return product
        }
    }

    /// `values` as unsigned words, padded to 8 with `fill`.
    static func padded(_ values: [Int], with fill: Int) -> [UInt32] {
        (values + Array(repeating: fill, count: 8 - values.count)).map { UInt32(truncatingIfNeeded: $0) }
    }

    /// Signed `values` as two's complement words padded to 8 with 0; `unsupported` beyond Int32.
    static func signedWords(_ values: [Int]) throws -> [UInt32] {
        try (values + Array(repeating: 0, count: 8 - values.count)).map { value in
            guard let narrow = Int32(exactly: value) else {
                throw VulkanError(.unsupported, "stride \(value) beyond 32-bit indexing")
            }
            return UInt32(bitPattern: narrow)
        }
    }
}

extension VulkanKernel {
    /// Strided copy (`copy.comp`).
    static let copy = VulkanKernel(name: "copy", spirv: SPIRV.copy, bindings: 2, pushConstantBytes: 29 * 4)
    /// Gather along an axis (`gather.comp`).
    static let gather = VulkanKernel(name: "gather", spirv: SPIRV.gather, bindings: 4, pushConstantBytes: 6 * 4)
    /// Element type conversion (`convert.comp`).
    static let convert = VulkanKernel(name: "convert", spirv: SPIRV.convert, bindings: 2, pushConstantBytes: 3 * 4)
    /// Broadcast comparison (`compare.comp`).
    static let compare = VulkanKernel(name: "compare", spirv: SPIRV.compare, bindings: 3, pushConstantBytes: 28 * 4)
    /// Where on one-word elements (`select.comp`).
    static let select = VulkanKernel(name: "select", spirv: SPIRV.select, bindings: 4, pushConstantBytes: 32 * 4)
    /// Where on two-word elements (`select64.comp`).
    static let select64 = VulkanKernel(name: "select64", spirv: SPIRV.select64, bindings: 4, pushConstantBytes: 32 * 4)
}

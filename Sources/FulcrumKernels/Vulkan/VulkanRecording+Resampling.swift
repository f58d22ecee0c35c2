extension VulkanKernel {
    /// `Shaders/remap.comp`: a gather through one index table per axis (Pad, nearest Resize).
    static let remap = VulkanKernel(name: "remap", spirv: SPIRV.remap, bindings: 3, pushConstantBytes: 27 * 4)
    /// `Shaders/bilinear.comp`: bilinear resize of planes through row and column tables.
    static let bilinear = VulkanKernel(name: "bilinear", spirv: SPIRV.bilinear, bindings: 3, pushConstantBytes: 5 * 4)
    /// `Shaders/convtranspose.comp`: 2-D transposed convolution, gathered per output.
    static let convTranspose = VulkanKernel(name: "convtranspose", spirv: SPIRV.convtranspose, bindings: 4, pushConstantBytes: 17 * 4)
}

extension VulkanRecording {
    /// Records `out[o] = input[Σₐ maps[a][oₐ] · strideₐ]` over the output of shape
    /// `maps.map(\.count)`, or `constant` where any axis's table holds -1: `input` is contiguous of
    /// `inputShape`, `out` contiguous of the output shape, each table entry -1 or an index along
    /// its axis (checked). Pad (constant, reflect, edge; negative pads crop) and nearest Resize
    /// are such tables. At most 8 axes (`unsupported` beyond). The tables are uploaded here into a
    /// buffer the recording keeps (one int per output index along each axis).
    public func remap(_ input: VulkanBuffer, inputShape: [Int], maps: [[Int]], constant: Float = 0, to out: VulkanBuffer) throws {
        let rank = inputShape.count
        guard rank >= 1, maps.count == rank else {
            throw VulkanError(.invalidArgument, "remap: \(maps.count) index tables for an input of rank \(rank)")
        }
        guard rank <= 8 else { throw VulkanError(.unsupported, "remap over \(rank) axes (the kernel handles 8)") }
        let inputCount = try Self.product(inputShape, "remap")
        let outputShape = maps.map(\.count)
        let total = try Self.product(outputShape, "remap")
        guard total > 0 else { return }
        for (axis, map) in maps.enumerated() where !map.allSatisfy({ $0 >= -1 && $0 < inputShape[axis] }) {
            throw VulkanError(.invalidArgument, "remap: the table of axis \(axis) indexes outside its \(inputShape[axis]) elements")
        }
        guard input.count >= inputCount, out.count >= total else {
            throw VulkanError(.invalidArgument, "remap reads \(inputCount) and writes \(total) elements; buffers have \(input.count) and \(out.count)")
        }
        guard input !== out else { throw VulkanError(.invalidArgument, "remap: out must be another buffer than input") }
        let entries = outputShape.reduce(0, +)
        try Self.checkRange([inputCount, total, entries])
        var table: [Int32] = []
        table.reserveCapacity(entries)
        var offsets: [Int] = []
        for map in maps {
            offsets.append(table.count)
            table += map.map { Int32($0) }
        }
        let tables = try VulkanBuffer(device: device, count: table.count)
        try table.withUnsafeBytes { try tables.upload(bytes: $0) }
        func padded(_ values: [Int]) -> [UInt32] { values.map { UInt32($0) } + Array(repeating: 0, count: 8 - values.count) }
        let words = [UInt32(rank), UInt32(total), constant.bitPattern] + padded(outputShape)
            + padded(CopyLayout.contiguousStrides(inputShape)) + padded(offsets)
        try dispatch(.remap, buffers: [input, tables, out], push: words, groups: (Self.elementGroups(total), 1))
    }

    /// Records a bilinear resize of `planes` FP32 planes of `height × width` into
    /// `rows.count × columns.count`: per output row `(r0, r1, fy)` and per output column
    /// `(c0, c1, fx)` (indices inside the plane, checked), `y = (a·(1−fx) + b·fx)·(1−fy) +
    /// (c·(1−fx) + d·fx)·fy` as the CPU's Resize computes it. The tables are uploaded here.
    public func resizeBilinear(
        _ input: VulkanBuffer, planes: Int, height: Int, width: Int, rows: [(Int, Int, Float)], columns: [(Int, Int, Float)],
        to out: VulkanBuffer
    ) throws {
        let inputCount = try Self.product([planes, height, width], "resizeBilinear")
        let total = try Self.product([planes, rows.count, columns.count], "resizeBilinear")
        guard total > 0 else { return }
        guard rows.allSatisfy({ (0..<height).contains($0.0) && (0..<height).contains($0.1) }),
              columns.allSatisfy({ (0..<width).contains($0.0) && (0..<width).contains($0.1) }) else {
            throw VulkanError(.invalidArgument, "resizeBilinear: a table indexes outside the \(height)×\(width) plane")
        }
        guard input.count >= inputCount, out.count >= total else {
            throw VulkanError(.invalidArgument, "resizeBilinear reads \(inputCount) and writes \(total) elements; buffers have \(input.count) and \(out.count)")
        }
        guard input !== out else { throw VulkanError(.invalidArgument, "resizeBilinear: out must be another buffer than input") }
        try Self.checkRange([inputCount, total, 3 * (rows.count + columns.count)])
        let table = (rows + columns).flatMap { [UInt32($0.0), UInt32($0.1), $0.2.bitPattern] }
        let tables = try VulkanBuffer(device: device, count: table.count)
        try table.withUnsafeBytes { try tables.upload(bytes: $0) }
        let words: [UInt32] = [UInt32(height), UInt32(width), UInt32(rows.count), UInt32(columns.count), UInt32(total)]
        try dispatch(.bilinear, buffers: [input, tables, out], push: words, groups: (Self.elementGroups(total), 1))
    }

    /// Records a 2-D transposed convolution of `batch` NCHW FP32 images, the CPU plan's
    /// ConvTranspose: `shape.channels` input channels of `window.height × window.width`,
    /// `shape.outputChannels` output channels of `window.outputHeight × window.outputWidth`
    /// (output_padding already in that size), `weights` `[channels, outputChannels / groups, kH,
    /// kW]`, `bias` `outputChannels` or nil; `window.pads.top/left` are the leading pads. One
    /// invocation per output, gathering the taps that land on it.
    public func convTranspose(
        _ shape: Convolution2D, batch: Int, x: VulkanBuffer, weights: VulkanBuffer, bias: VulkanBuffer?, y: VulkanBuffer
    ) throws {
        let window = shape.window
        let (c, m, groups) = (shape.channels, shape.outputChannels, shape.groups)
        let values = [
            batch, window.height, window.width, window.kernel.h, window.kernel.w, window.stride.h, window.stride.w,
            window.dilation.h, window.dilation.w, window.pads.top, window.pads.left, window.outputHeight, window.outputWidth,
        ]
        guard values.allSatisfy({ $0 >= 0 }), groups >= 1, c >= 1, m >= 1, c % groups == 0, m % groups == 0,
              window.stride.h >= 1, window.stride.w >= 1, window.dilation.h >= 1, window.dilation.w >= 1 else {
            throw VulkanError(.invalidArgument, "convTranspose: sizes out of range in \(shape), batch \(batch)")
        }
        let inputCount = try Self.product([batch, c, window.height, window.width], "convTranspose")
        let weightCount = try Self.product([c, m / groups, window.kernel.h, window.kernel.w], "convTranspose")
        let outputCount = try Self.product([batch, m, window.outputHeight, window.outputWidth], "convTranspose")
        guard outputCount > 0 else { return }
        guard x.count >= inputCount, weights.count >= weightCount, y.count >= outputCount else {
            throw VulkanError(
                .invalidArgument,
                "convTranspose reads \(inputCount) inputs and \(weightCount) weights and writes \(outputCount) outputs; buffers have \(x.count), \(weights.count) and \(y.count)")
        }
        if let bias, bias.count < m { throw VulkanError(.invalidArgument, "convTranspose: bias has \(bias.count) elements, needs \(m)") }
        guard x !== y else { throw VulkanError(.invalidArgument, "convTranspose: y must be another buffer than x") }
        try Self.checkRange([inputCount, weightCount, outputCount])
        let reach = [
            window.outputHeight + window.pads.top, window.outputWidth + window.pads.left,
            (window.kernel.h - 1) * window.dilation.h, (window.kernel.w - 1) * window.dilation.w,
        ]
        guard (values + reach).allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw VulkanError(.unsupported, "convTranspose: window positions beyond 32-bit indexing in \(shape)")
        }
        let words: [UInt32] = [
            UInt32(c), UInt32(window.height), UInt32(window.width), UInt32(m), UInt32(window.outputHeight),
            UInt32(window.outputWidth), UInt32(groups), UInt32(window.kernel.h), UInt32(window.kernel.w),
            UInt32(window.stride.h), UInt32(window.stride.w), UInt32(window.dilation.h), UInt32(window.dilation.w),
            UInt32(window.pads.top), UInt32(window.pads.left), bias == nil ? 0 : 1, UInt32(outputCount),
        ]
        try dispatch(.convTranspose, buffers: [x, weights, bias ?? weights, y], push: words, groups: (Self.elementGroups(outputCount), 1))
    }
}

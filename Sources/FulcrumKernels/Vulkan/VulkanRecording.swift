import CVulkan

/// One command buffer of kernel dispatches on device buffers, recorded once and submitted as
/// often as needed (an execution plan's batch replays the same recording).
///
/// Add dispatches in order (each waits for the previous one's writes), call `end()`, then
/// `submit()` (blocks until the device finishes). It owns its command pool and descriptor pools
/// and keeps the buffers it uses alive. Not thread-safe: one thread records; submissions of
/// different recordings are serialised by the device.
public final class VulkanRecording {
    /// The device it runs on.
    public let device: VulkanDevice
    private let pool: VkCommandPool
    private let commandBuffer: VkCommandBuffer
    private var descriptorPools: [VkDescriptorPool] = []
    private var setsLeftInPool = 0
    private var retained: [VulkanBuffer] = []
    private var dispatched = false
    private var ended = false

    private static let setsPerPool = 32

    /// Starts recording.
    public init(device: VulkanDevice) throws {
        self.device = device
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.queueFamilyIndex = device.queueFamily
        var pool: VkCommandPool?
        try VulkanError.check(fulcrum_vkCreateCommandPool(device.handle, &poolInfo, nil, &pool), "vkCreateCommandPool")
        var allocate = VkCommandBufferAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocate.commandPool = pool
        allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocate.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        let result = fulcrum_vkAllocateCommandBuffers(device.handle, &allocate, &buffer)
        guard result == VK_SUCCESS, let buffer, let pool else {
            fulcrum_vkDestroyCommandPool(device.handle, pool, nil)
            try VulkanError.check(result, "vkAllocateCommandBuffers")
            throw VulkanError(.callFailed, "vkAllocateCommandBuffers returned no buffer")
        }
        self.pool = pool
        self.commandBuffer = buffer
        var begin = VkCommandBufferBeginInfo()
        begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        try VulkanError.check(fulcrum_vkBeginCommandBuffer(buffer, &begin), "vkBeginCommandBuffer")
    }

    deinit {
        for descriptorPool in descriptorPools { fulcrum_vkDestroyDescriptorPool(device.handle, descriptorPool, nil) }
        fulcrum_vkDestroyCommandPool(device.handle, pool, nil)
    }

    /// Finishes recording: makes the last writes visible to the host and to copies.
    public func end() throws {
        guard !ended else { return }
        barrier(
            from: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
            to: VK_PIPELINE_STAGE_HOST_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
            access: VK_ACCESS_HOST_READ_BIT.rawValue | VK_ACCESS_TRANSFER_READ_BIT.rawValue)
        try VulkanError.check(fulcrum_vkEndCommandBuffer(commandBuffer), "vkEndCommandBuffer")
        ended = true
    }

    /// Runs the recorded commands and waits for them (call `end()` first). Repeatable.
    public func submit() throws {
        guard ended else { throw VulkanError(.invalidArgument, "submit() before end()") }
        try device.submitAndWait(commandBuffer)
    }

    // MARK: Commands

    func copy(from source: VulkanBuffer, to destination: VulkanBuffer, bytes: Int) {
        retained += [source, destination]
        waitForPrevious()
        var region = VkBufferCopy(srcOffset: 0, dstOffset: 0, size: UInt64(bytes))
        fulcrum_vkCmdCopyBuffer(commandBuffer, source.handle, destination.handle, 1, &region)
        dispatched = true
    }

    /// Records `vkCmdFillBuffer` of the first `bytes` bytes (a multiple of 4) with `word`, after
    /// earlier commands (`fill(_:word:count:)` in VulkanRecording+Data.swift is the public call).
    func recordFill(_ buffer: VulkanBuffer, word: UInt32, bytes: Int) throws {
        guard !ended else { throw VulkanError(.invalidArgument, "recording already ended") }
        retained.append(buffer)
        waitForPrevious()
        fulcrum_vkCmdFillBuffer(commandBuffer, buffer.handle, 0, UInt64(bytes), word)
        dispatched = true
    }

    /// Records `C = act(alpha · op(A) · op(B) + beta · C + bias)`, the same contract as
    /// `CPUBackend.sgemm` (row-major, leading dimensions in elements) plus an optional `bias` of
    /// `n` elements added to every row and an `activation` (`.none` … `.leakyRelu`).
    ///
    /// With `batch > 1` it records `batch` independent products in one dispatch (ONNX MatMul on
    /// 3-D/4-D tensors): product `i` reads A at element `i · strideA`, B at `i · strideB` and
    /// writes C at `i · strideC`. A stride of 0 shares one matrix among all batches (a broadcast
    /// weight); `strideC` must not be 0 then, and the batches' C regions must not overlap. The
    /// bias and activation apply to every batch. Every batch's extent is checked against the
    /// buffers before anything is recorded; at most 65535 batches per call.
    ///
    /// `variant` picks the kernel (`SGEMMVariant`; `.automatic` takes `tile128` for large m and
    /// n, see `SGEMMVariant.prefersTile128`). Costs one dispatch (`splitk`: two when it splits K,
    /// plus a workspace buffer); the buffers are retained until the recording is released.
    public func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: VulkanBuffer, lda: Int, b: VulkanBuffer, ldb: Int, beta: Float = 0,
        c: VulkanBuffer, ldc: Int, bias: VulkanBuffer? = nil, activation: Activation = .none,
        batch: Int = 1, strideA: Int = 0, strideB: Int = 0, strideC: Int = 0, variant: SGEMMVariant = .automatic
    ) throws {
        guard m >= 0, n >= 0, k >= 0 else { throw VulkanError(.invalidArgument, "sgemm with negative sizes \(m)×\(n)×\(k)") }
        guard batch >= 0, strideA >= 0, strideB >= 0, strideC >= 0 else {
            throw VulkanError(.invalidArgument, "sgemm with a negative batch (\(batch)) or batch stride (\(strideA), \(strideB), \(strideC))")
        }
        guard m > 0, n > 0, batch > 0 else { return }
        guard batch == 1 || strideC > 0 else {
            throw VulkanError(.invalidArgument, "sgemm: \(batch) batches with strideC 0 would all write the same C")
        }
        let (rowsA, colsA) = transposeA ? (k, m) : (m, k)
        let (rowsB, colsB) = transposeB ? (n, k) : (k, n)
        try Self.checkMatrix("A", a, rows: rowsA, cols: colsA, ld: lda, batch: batch, stride: strideA)
        try Self.checkMatrix("B", b, rows: rowsB, cols: colsB, ld: ldb, batch: batch, stride: strideB)
        try Self.checkMatrix("C", c, rows: m, cols: n, ld: ldc, batch: batch, stride: strideC)
        if let bias, bias.count < n {
            throw VulkanError(.invalidArgument, "sgemm bias has \(bias.count) elements, needs \(n)")
        }
        let last = batch - 1
        try Self.checkRange([
            m, n, k, lda, ldb, ldc, strideA, strideB, strideC, last * strideA + rowsA * max(lda, 1),
            last * strideB + rowsB * max(ldb, 1), last * strideC + m * max(ldc, 1),
        ])
        let (code, activationAlpha) = try VulkanKernels.code(of: activation)
        // vec4 access needs every matrix start and row start on a 16-byte boundary.
        func aligned(_ ld: Int, _ stride: Int) -> Bool { ld % 4 == 0 && stride % 4 == 0 }
        let vectorFlags: UInt32 = (aligned(lda, strideA) ? 1 : 0) | (aligned(ldb, strideB) ? 2 : 0) | (aligned(ldc, strideC) ? 4 : 0)
        let words: [UInt32] = [
            UInt32(m), UInt32(n), UInt32(k), UInt32(lda), UInt32(ldb), UInt32(ldc),
            transposeA ? 1 : 0, transposeB ? 1 : 0, bias == nil ? 0 : 1, code,
            alpha.bitPattern, beta.bitPattern, activationAlpha.bitPattern,
            UInt32(strideA), UInt32(strideB), UInt32(strideC), vectorFlags,
        ]
        switch variant.resolved(m: m, n: n, batch: batch) {
        case .tile128:
            try dispatch(.matmul128, buffers: [a, b, bias ?? a, c], push: words, groups: ((n + 127) / 128, (m + 127) / 128), groupsZ: batch)
        case .splitk:
            try splitKSGEMM(words: words, m: m, n: n, k: k, a: a, b: b, bias: bias, c: c, batch: batch)
        default:
            try dispatch(.matmul, buffers: [a, b, bias ?? a, c], push: words, groups: ((n + 63) / 64, (m + 63) / 64), groupsZ: batch)
        }
    }

    /// `SGEMMVariant.splitk`: one `matmulsplitk` dispatch over `SGEMMVariant.splitK` k ranges,
    /// then, when there is more than one, a `matmulreduce` dispatch that adds the partial sums
    /// from a workspace of splits · batch · m · n floats (allocated here, retained with the
    /// recording) and applies alpha, beta, bias and the activation once.
    private func splitKSGEMM(
        words: [UInt32], m: Int, n: Int, k: Int, a: VulkanBuffer, b: VulkanBuffer, bias: VulkanBuffer?, c: VulkanBuffer, batch: Int
    ) throws {
        let (splits, chunk) = SGEMMVariant.splitK(m: m, n: n, k: k, batch: batch)
        let groups = ((n + 63) / 64, (m + 63) / 64)
        let push = words + [UInt32(chunk), UInt32(splits), UInt32(batch)]
        guard splits > 1 else {
            try dispatch(.matmulSplitK, buffers: [a, b, bias ?? a, c, c], push: push, groups: groups, groupsZ: batch)
            return
        }
        try Self.checkRange([splits * batch * m * n, splits * batch])
        let workspace = try VulkanBuffer(device: device, count: splits * batch * m * n)
        try dispatch(.matmulSplitK, buffers: [a, b, bias ?? a, c, workspace], push: push, groups: groups, groupsZ: splits * batch)
        // words: m, n, k, lda, ldb, ldc, transA, transB, hasBias, activation, alpha, beta, activationAlpha, strides…
        let reduce: [UInt32] = [words[0], words[1], words[5], words[15], UInt32(splits), UInt32(batch)] + Array(words[8...12])
        try dispatch(.matmulReduce, buffers: [workspace, bias ?? c, c], push: reduce, groups: ((m * n + 255) / 256, 1), groupsZ: batch)
    }

    /// Records `out = a ∘ b` with broadcasting as planned by `layout` (at most 8 merged loops),
    /// the same contract as `CPUBackend.binary` for `elementType` `.float32` or `.int32` (one word
    /// per element). INT32 add, sub and mul wrap like `&+`, `&-`, `&*`; div truncates toward zero,
    /// and a division by zero gives 0 (INT32_MIN / -1 gives INT32_MIN), as on the CPU. Other
    /// element types throw `unsupported`.
    public func binary(
        _ op: BinaryOperator, _ a: VulkanBuffer, _ b: VulkanBuffer, _ out: VulkanBuffer, layout: BroadcastLayout,
        elementType: VulkanElementType = .float32
    ) throws {
        guard elementType == .float32 || elementType == .int32 else {
            throw VulkanError(.unsupported, "binary \(op) on \(elementType) (the Vulkan kernel handles float32 and int32)")
        }
        let total = layout.elementCount
        guard total > 0 else { return }
        let rank = layout.sizes.count
        guard rank <= 8 else {
            throw VulkanError(.unsupported, "broadcast with \(rank) merged dimensions (the Vulkan kernel handles 8)")
        }
        func reach(_ strides: [Int]) -> Int { zip(layout.sizes, strides).reduce(1) { $0 + ($1.0 - 1) * $1.1 } }
        guard a.count >= reach(layout.stridesA), b.count >= reach(layout.stridesB), out.count >= total else {
            throw VulkanError(.invalidArgument, "binary \(op): buffers smaller than the broadcast layout needs")
        }
        try Self.checkRange([total] + layout.sizes + layout.stridesA + layout.stridesB)
        func padded(_ values: [Int]) -> [UInt32] { values.map { UInt32($0) } + Array(repeating: 0, count: 8 - values.count) }
        let opCode: UInt32 = switch op {
        case .add: 0
        case .sub: 1
        case .mul: 2
        case .div: 3
        }
        let words = [UInt32(total), opCode, UInt32(rank), elementType.code]
            + padded(layout.sizes) + padded(layout.stridesA) + padded(layout.stridesB)
        try dispatch(.binary, buffers: [a, b, out], push: words, groups: (Self.elementGroups(total), 1))
    }

    /// Records `out[i] = op(input[i])` for `count` elements (`out` may be `input`).
    public func unary(_ op: UnaryOperator, _ input: VulkanBuffer, _ out: VulkanBuffer, count: Int) throws {
        try elementwise(VulkanKernels.code(of: op), alpha: 0, input, out, count: count)
    }

    /// Records `out[i] = input[i] < 0 ? alpha · input[i] : input[i]`.
    public func leakyRelu(_ input: VulkanBuffer, _ out: VulkanBuffer, count: Int, alpha: Float) throws {
        try elementwise(VulkanKernels.UnaryCode.leakyRelu, alpha: alpha, input, out, count: count)
    }

    private func elementwise(_ code: UInt32, alpha: Float, _ input: VulkanBuffer, _ out: VulkanBuffer, count: Int) throws {
        guard count > 0 else { return }
        guard input.count >= count, out.count >= count else {
            throw VulkanError(.invalidArgument, "elementwise over \(count) elements with buffers of \(input.count) and \(out.count)")
        }
        try Self.checkRange([count])
        try dispatch(.unary, buffers: [input, out], push: [UInt32(count), code, alpha.bitPattern], groups: (Self.elementGroups(count), 1))
    }

    // MARK: Plumbing

    /// Records one dispatch of `kernel` over `groups.0 × groups.1 × groupsZ` workgroups (each at
    /// most 65535, the limit every Vulkan device guarantees) after a barrier on earlier commands.
    func dispatch(_ kernel: VulkanKernel, buffers: [VulkanBuffer], push: [UInt32], groups: (Int, Int), groupsZ: Int = 1) throws {
        guard !ended else { throw VulkanError(.invalidArgument, "recording already ended") }
        guard groups.0 <= 65535, groups.1 <= 65535, groupsZ <= 65535 else {
            throw VulkanError(.unsupported, "\(kernel.name): \(groups.0)×\(groups.1)×\(groupsZ) workgroups exceed the dispatch limit")
        }
        precondition(push.count * 4 == kernel.pushConstantBytes && buffers.count == kernel.bindings)
        let pipeline = try device.pipeline(kernel)
        let set = try allocateSet(pipeline.setLayout, kernel.bindings)
        var infos = buffers.map { VkDescriptorBufferInfo(buffer: $0.handle, offset: 0, range: UInt64.max) }
        infos.withUnsafeMutableBufferPointer { infoBuffer in
            var writes = (0..<buffers.count).map { i in
                var write = VkWriteDescriptorSet()
                write.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                write.dstSet = set
                write.dstBinding = UInt32(i)
                write.descriptorCount = 1
                write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                write.pBufferInfo = UnsafePointer(infoBuffer.baseAddress! + i)
                return write
            }
            fulcrum_vkUpdateDescriptorSets(device.handle, UInt32(writes.count), &writes, 0, nil)
        }
        retained += buffers
        waitForPrevious()
        fulcrum_vkCmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.pipeline)
        var setOptional: VkDescriptorSet? = set
        fulcrum_vkCmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0, 1, &setOptional, 0, nil)
        push.withUnsafeBytes { bytes in
            fulcrum_vkCmdPushConstants(
                commandBuffer, pipeline.layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0, UInt32(bytes.count), bytes.baseAddress)
        }
        fulcrum_vkCmdDispatch(commandBuffer, UInt32(groups.0), UInt32(groups.1), UInt32(groupsZ))
        dispatched = true
    }

    /// A barrier so the next command sees every earlier write (compute or copy).
    private func waitForPrevious() {
        guard dispatched else { return }
        let stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue
        barrier(
            from: stages, to: stages,
            access: VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
    }

    private func barrier(from source: UInt32, to destination: UInt32, access: UInt32) {
        var memoryBarrier = VkMemoryBarrier()
        memoryBarrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        memoryBarrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
        memoryBarrier.dstAccessMask = access
        fulcrum_vkCmdPipelineBarrier(commandBuffer, source, destination, 0, 1, &memoryBarrier, 0, nil, 0, nil)
    }

    private func allocateSet(_ layout: VkDescriptorSetLayout, _ bindings: Int) throws -> VkDescriptorSet {
        if setsLeftInPool == 0 {
            var size = VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: UInt32(Self.setsPerPool * 4))
            var info = VkDescriptorPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
            info.maxSets = UInt32(Self.setsPerPool)
            info.poolSizeCount = 1
            var pool: VkDescriptorPool?
            let result = withUnsafePointer(to: &size) { sizePointer in
                info.pPoolSizes = sizePointer
                return fulcrum_vkCreateDescriptorPool(device.handle, &info, nil, &pool)
            }
            try VulkanError.check(result, "vkCreateDescriptorPool")
            guard let pool else { throw VulkanError(.callFailed, "vkCreateDescriptorPool returned no pool") }
            descriptorPools.append(pool)
            setsLeftInPool = Self.setsPerPool
        }
        var layoutOptional: VkDescriptorSetLayout? = layout
        var set: VkDescriptorSet?
        let result = withUnsafePointer(to: &layoutOptional) { layoutPointer in
            var info = VkDescriptorSetAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            info.descriptorPool = descriptorPools.last
            info.descriptorSetCount = 1
            info.pSetLayouts = layoutPointer
            return fulcrum_vkAllocateDescriptorSets(device.handle, &info, &set)
        }
        try VulkanError.check(result, "vkAllocateDescriptorSets")
        setsLeftInPool -= 1
        guard let set else { throw VulkanError(.callFailed, "vkAllocateDescriptorSets returned no set") }
        return set
    }

    /// Throws `invalidArgument` unless `buffer` holds `batch` matrices of `rows × cols` with
    /// leading dimension `ld`, `stride` elements apart (0: one matrix shared by all).
    static func checkMatrix(_ name: String, _ buffer: VulkanBuffer, rows: Int, cols: Int, ld: Int, batch: Int = 1, stride: Int = 0) throws {
        guard ld >= cols else { throw VulkanError(.invalidArgument, "sgemm: leading dimension of \(name) (\(ld)) < \(cols) columns") }
        guard rows > 0, batch > 0 else { return }
        let (last, overflow) = (batch - 1).multipliedReportingOverflow(by: stride)
        let needed = overflow ? Int.max : last + (rows - 1) * ld + cols
        guard buffer.count >= needed else {
            let what = batch > 1 ? "\(batch) batches of \(name) with stride \(stride) need" : "\(name) needs"
            throw VulkanError(.invalidArgument, "sgemm: \(what) \(needed) elements, buffer has \(buffer.count)")
        }
    }

    static func checkRange(_ values: [Int]) throws {
        guard values.allSatisfy({ $0 >= 0 && $0 <= Int(UInt32.max) }) else {
            throw VulkanError(.unsupported, "sizes beyond 32-bit indexing")
        }
    }

    static func elementGroups(_ count: Int) -> Int { min((count + 255) / 256, 65535) }
}

import CVulkan

/// A storage buffer of 4-byte words on a Vulkan device (FP32 and INT32 elements take one word,
/// INT64 two; `VulkanElementType` says how the runtime lays tensors out).
///
/// On unified-memory devices (lavapipe, integrated GPUs) the memory is device-local and
/// host-visible and stays mapped: uploads and downloads are `memcpy`s. Elsewhere it is
/// device-local only, and `upload`/`download` go through a temporary host-visible staging buffer
/// and a copy command (weights: once at load; per batch only inputs and outputs).
public final class VulkanBuffer: @unchecked Sendable {
    /// The device the buffer lives on.
    public let device: VulkanDevice
    /// Number of 4-byte words (FP32 elements).
    public let count: Int
    let handle: VkBuffer
    let memory: VkDeviceMemory
    /// The mapped memory when the buffer is host-visible.
    let mapped: UnsafeMutableRawPointer?

    /// Allocates a buffer of `count` FP32 elements (contents undefined).
    public convenience init(device: VulkanDevice, count: Int) throws {
        try self.init(device: device, count: count, hostVisible: device.directMapping, staging: false)
    }

    init(device: VulkanDevice, count: Int, hostVisible: Bool, staging: Bool) throws {
        guard count >= 0 else { throw VulkanError(.invalidArgument, "negative buffer size \(count)") }
        self.device = device
        self.count = count
        let bytes = UInt64(max(count, 1) * MemoryLayout<Float>.stride)
        var info = VkBufferCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        info.size = bytes
        info.usage = (staging ? 0 : VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue)
            | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
        info.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try VulkanError.check(fulcrum_vkCreateBuffer(device.handle, &info, nil, &buffer), "vkCreateBuffer(\(bytes) bytes)")
        guard let buffer else { throw VulkanError(.callFailed, "vkCreateBuffer returned no buffer") }

        var requirements = VkMemoryRequirements()
        fulcrum_vkGetBufferMemoryRequirements(device.handle, buffer, &requirements)
        let hostFlags = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue
        let type: UInt32?
        if staging {
            type = device.memoryType(bits: requirements.memoryTypeBits, required: hostFlags)
        } else if hostVisible {
            type = device.memoryType(bits: requirements.memoryTypeBits, required: hostFlags | local)
                ?? device.memoryType(bits: requirements.memoryTypeBits, required: hostFlags)
        } else {
            type = device.memoryType(bits: requirements.memoryTypeBits, required: local)
        }
        guard let type else {
            fulcrum_vkDestroyBuffer(device.handle, buffer, nil)
            throw VulkanError(.outOfMemory, "\(device.info.name) has no suitable memory type for a buffer")
        }
        var allocate = VkMemoryAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        allocate.allocationSize = requirements.size
        allocate.memoryTypeIndex = type
        var memory: VkDeviceMemory?
        let allocateResult = fulcrum_vkAllocateMemory(device.handle, &allocate, nil, &memory)
        guard allocateResult == VK_SUCCESS, let memory else {
            fulcrum_vkDestroyBuffer(device.handle, buffer, nil)
            try VulkanError.check(allocateResult, "vkAllocateMemory(\(requirements.size) bytes)")
            throw VulkanError(.outOfMemory, "vkAllocateMemory returned no memory")
        }
        fulcrum_vkBindBufferMemory(device.handle, buffer, memory, 0)
        var mapped: UnsafeMutableRawPointer?
        if staging || hostVisible {
            let mapResult = fulcrum_vkMapMemory(device.handle, memory, 0, UInt64.max, 0, &mapped)
            if mapResult != VK_SUCCESS {
                fulcrum_vkFreeMemory(device.handle, memory, nil)
                fulcrum_vkDestroyBuffer(device.handle, buffer, nil)
                try VulkanError.check(mapResult, "vkMapMemory")
            }
        }
        self.handle = buffer
        self.memory = memory
        self.mapped = mapped
    }

    deinit {
        if mapped != nil { fulcrum_vkUnmapMemory(device.handle, memory) }
        fulcrum_vkDestroyBuffer(device.handle, handle, nil)
        fulcrum_vkFreeMemory(device.handle, memory, nil)
    }

    /// A host-visible buffer of `count` words for copies to and from device-local buffers (a
    /// recording's per-batch input and output transfers on devices without unified memory).
    public static func staging(device: VulkanDevice, count: Int) throws -> VulkanBuffer {
        try VulkanBuffer(device: device, count: count, hostVisible: true, staging: true)
    }

    /// The buffer's memory as the host sees it: set on unified-memory devices and for staging
    /// buffers (persistently mapped, coherent), nil for device-local memory.
    public var hostPointer: UnsafeMutableRawPointer? { mapped }

    /// Copies `values` (at most `count`) to the start of the buffer. Waits for the copy.
    public func upload(_ values: [Float]) throws {
        try values.withUnsafeBytes { try upload(bytes: $0) }
    }

    /// Copies `bytes` (a multiple of 4, at most `count` words) to the start of the buffer, through
    /// a temporary staging buffer when the memory is not mapped. Waits for the copy.
    public func upload(bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count % 4 == 0, bytes.count <= count * 4 else {
            throw VulkanError(.invalidArgument, "upload of \(bytes.count) bytes into a buffer of \(count) words")
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if let mapped {
            mapped.copyMemory(from: base, byteCount: bytes.count)
            return
        }
        let staging = try VulkanBuffer(device: device, count: bytes.count / 4, hostVisible: true, staging: true)
        staging.mapped!.copyMemory(from: base, byteCount: bytes.count)
        let recording = try VulkanRecording(device: device)
        recording.copy(from: staging, to: self, bytes: bytes.count)
        try recording.end()
        try recording.submit()
    }

    /// The first `count` (default: all) elements. Waits for the copy.
    public func download(count wanted: Int? = nil) throws -> [Float] {
        let n = wanted ?? count
        guard n >= 0, n <= count else { throw VulkanError(.invalidArgument, "download of \(n) floats from a buffer of \(count)") }
        guard n > 0 else { return [] }
        let bytes = n * MemoryLayout<Float>.stride
        var source = mapped
        var staging: VulkanBuffer?
        if source == nil {
            let buffer = try VulkanBuffer(device: device, count: n, hostVisible: true, staging: true)
            let recording = try VulkanRecording(device: device)
            recording.copy(from: self, to: buffer, bytes: bytes)
            try recording.end()
            try recording.submit()
            staging = buffer
            source = buffer.mapped
        }
        let result = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: source!, byteCount: bytes)
            initialized = n
        }
        withExtendedLifetime(staging) {}
        return result
    }
}

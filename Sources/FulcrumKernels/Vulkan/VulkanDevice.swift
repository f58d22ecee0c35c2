import CVulkan
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One Vulkan device opened for compute: its instance, a compute queue, the kernels' pipelines
/// and a pipeline cache.
///
/// Thread-safe: queue submissions are serialised by a lock, pipelines are created once and
/// shared. Buffers and recordings keep their device alive. Creating one costs milliseconds to
/// tens of milliseconds (driver start); create it once per process and share it.
public final class VulkanDevice: @unchecked Sendable {
    /// Which physical device to open.
    public enum Selection: Sendable, Equatable {
        /// The first discrete GPU, else integrated, virtual, then CPU (lavapipe) device.
        case automatic
        /// The device at this position in `VulkanDevice.availableDevices()`.
        case index(Int)
        /// The first device whose name contains this text (case-insensitive).
        case name(String)
    }

    /// How buffers get their memory.
    public enum MemoryStrategy: Sendable, Equatable {
        /// Host-visible device-local memory on unified-memory devices, staging copies otherwise.
        case automatic
        /// Always device-local memory filled and read through staging copies (tests use this to
        /// exercise the discrete-GPU path on lavapipe).
        case staging
    }

    /// How to open a device.
    public struct Options: Sendable {
        /// Which device.
        public var selection: Selection
        /// Enable the Khronos validation layer (when installed). `nil` reads the environment
        /// variable `FULCRUM_VULKAN_VALIDATION` (`1` enables it).
        public var validation: Bool?
        /// Buffer memory placement.
        public var memory: MemoryStrategy
        /// Bytes of a pipeline cache saved by `pipelineCacheData()`, to skip shader compilation.
        public var pipelineCacheData: [UInt8]

        /// Options; the defaults pick the best device with no validation unless the environment asks.
        public init(
            selection: Selection = .automatic, validation: Bool? = nil, memory: MemoryStrategy = .automatic,
            pipelineCacheData: [UInt8] = []
        ) {
            self.selection = selection
            self.validation = validation
            self.memory = memory
            self.pipelineCacheData = pipelineCacheData
        }
    }

    /// The opened device.
    public let info: VulkanDeviceInfo
    /// Whether the Khronos validation layer is active on this device's instance.
    public var validationEnabled: Bool { instance.validationEnabled }
    /// Messages from the validation layer (empty without it).
    public var validationLog: VulkanValidationLog { instance.log }

    let instance: VulkanInstance
    let physicalDevice: VkPhysicalDevice
    let handle: VkDevice
    let queueFamily: UInt32
    let memoryProperties: VkPhysicalDeviceMemoryProperties
    /// Whether buffers are mapped directly (no staging).
    let directMapping: Bool
    private let queue: VkQueue
    /// Serialises `vkQueueSubmit` (queues are externally synchronised).
    private let queueLock = Mutex(())
    private let pipelineCache: VkPipelineCache
    private let pipelines = Mutex<[String: VulkanPipeline]>([:])

    /// Every Vulkan device the loader offers, in enumeration order. Throws `noLoader` when no
    /// driver is installed.
    public static func availableDevices() throws -> [VulkanDeviceInfo] {
        let instance = try VulkanInstance(validation: false)
        return try physicalDevices(instance).enumerated().map { describe($1, index: $0) }
    }

    /// Opens a device. Throws `noLoader`, `noDevice` or `deviceNotFound` (naming what exists)
    /// rather than crashing.
    public init(options: Options = Options()) throws {
        let validation = options.validation ?? (Self.environment("FULCRUM_VULKAN_VALIDATION") == "1")
        let instance = try VulkanInstance(validation: validation)
        let devices = try Self.physicalDevices(instance)
        let infos = devices.enumerated().map { Self.describe($1, index: $0) }
        let computeFamilies = devices.map { Self.computeQueueFamily($0) }
        let usable = infos.indices.filter { computeFamilies[$0] != nil }
        guard !usable.isEmpty else {
            throw VulkanError(.noDevice, "no Vulkan device with a compute queue (found \(infos.count) devices)")
        }
        let chosen: Int
        switch options.selection {
        case .automatic:
            let rank = ["discrete": 0, "integrated": 1, "virtual": 2, "cpu": 3]
            chosen = usable.min { (rank[infos[$0].kind] ?? 4, $0) < (rank[infos[$1].kind] ?? 4, $1) }!
        case .index(let index):
            guard usable.contains(index) else {
                throw VulkanError(.deviceNotFound, "no usable Vulkan device #\(index); devices: \(Self.list(infos))")
            }
            chosen = index
        case .name(let text):
            guard let index = usable.first(where: { infos[$0].name.lowercased().contains(text.lowercased()) }) else {
                throw VulkanError(.deviceNotFound, "no Vulkan device named like '\(text)'; devices: \(Self.list(infos))")
            }
            chosen = index
        }
        let physical = devices[chosen]
        let family = computeFamilies[chosen]!

        var device: VkDevice?
        var priority: Float = 1
        let createResult = withUnsafePointer(to: &priority) { priorityPointer in
            var queueInfo = VkDeviceQueueCreateInfo()
            queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
            queueInfo.queueFamilyIndex = family
            queueInfo.queueCount = 1
            queueInfo.pQueuePriorities = priorityPointer
            return withUnsafePointer(to: &queueInfo) { queuePointer in
                var info = VkDeviceCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                info.queueCreateInfoCount = 1
                info.pQueueCreateInfos = queuePointer
                return fulcrum_vkCreateDevice(physical, &info, nil, &device)
            }
        }
        try VulkanError.check(createResult, "vkCreateDevice")
        guard let device else { throw VulkanError(.callFailed, "vkCreateDevice returned no device") }
        var queue: VkQueue?
        fulcrum_vkGetDeviceQueue(device, family, 0, &queue)

        var cache: VkPipelineCache?
        let cacheResult = options.pipelineCacheData.withUnsafeBytes { bytes in
            var info = VkPipelineCacheCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
            info.initialDataSize = bytes.count
            info.pInitialData = bytes.count > 0 ? bytes.baseAddress : nil
            return fulcrum_vkCreatePipelineCache(device, &info, nil, &cache)
        }
        guard cacheResult == VK_SUCCESS, let cache, let queue else {
            fulcrum_vkDestroyDevice(device, nil)
            try VulkanError.check(cacheResult, "vkCreatePipelineCache")
            throw VulkanError(.callFailed, "vkGetDeviceQueue returned no queue")
        }

        var memory = VkPhysicalDeviceMemoryProperties()
        fulcrum_vkGetPhysicalDeviceMemoryProperties(physical, &memory)

        self.instance = instance
        self.physicalDevice = physical
        self.handle = device
        self.queueFamily = family
        self.queue = queue
        self.pipelineCache = cache
        self.memoryProperties = memory
        self.info = infos[chosen]
        self.directMapping = options.memory == .automatic && infos[chosen].unifiedMemory
    }

    deinit {
        fulcrum_vkDeviceWaitIdle(handle)
        pipelines.withLock { all in
            for pipeline in all.values { pipeline.destroy(handle) }
        }
        fulcrum_vkDestroyPipelineCache(handle, pipelineCache, nil)
        fulcrum_vkDestroyDevice(handle, nil)
    }

    /// The pipeline cache's contents, to pass as `Options.pipelineCacheData` next time.
    public func pipelineCacheData() throws -> [UInt8] {
        var size = 0
        try VulkanError.check(fulcrum_vkGetPipelineCacheData(handle, pipelineCache, &size, nil), "vkGetPipelineCacheData")
        var bytes = [UInt8](repeating: 0, count: size)
        try VulkanError.check(fulcrum_vkGetPipelineCacheData(handle, pipelineCache, &size, &bytes), "vkGetPipelineCacheData")
        return Array(bytes.prefix(size))
    }

    /// The compute pipeline of `kernel`, created on first use and kept for the device's life.
    func pipeline(_ kernel: VulkanKernel) throws -> VulkanPipeline {
        try pipelines.withLock { all in
            if let existing = all[kernel.name] { return existing }
            let made = try VulkanPipeline(device: handle, cache: pipelineCache, kernel: kernel)
            all[kernel.name] = made
            return made
        }
    }

    /// How long a submission's caller polls its fence before blocking on it: 2 ms on a GPU, none
    /// on a CPU device (lavapipe), whose work would compete with the polling thread.
    var spinNanoseconds: UInt64 { info.kind == "cpu" ? 0 : 2_000_000 }

    /// Submits `commandBuffer` and waits for it to finish (polling for `spinNanoseconds`, then
    /// blocking). Serialised with other submissions.
    func submitAndWait(_ commandBuffer: VkCommandBuffer) throws {
        var fence: VkFence?
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        try VulkanError.check(fulcrum_vkCreateFence(handle, &fenceInfo, nil, &fence), "vkCreateFence")
        defer { fulcrum_vkDestroyFence(handle, fence, nil) }
        var buffer: VkCommandBuffer? = commandBuffer
        let submitResult = withUnsafePointer(to: &buffer) { bufferPointer in
            var submit = VkSubmitInfo()
            submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            submit.commandBufferCount = 1
            submit.pCommandBuffers = bufferPointer
            return queueLock.withLock { _ in fulcrum_vkQueueSubmit(queue, 1, &submit, fence) }
        }
        try VulkanError.check(submitResult, "vkQueueSubmit")
        // Poll first, then block: a blocking fence wait can sleep far longer than a short batch
        // runs (a serving batch is often well under a millisecond on a GPU), so spend up to
        // `spinNanoseconds` of this thread asking, the way CUDA's spin-wait scheduling does.
        let spinUntil = DispatchTime.now().uptimeNanoseconds + spinNanoseconds
        while true {
            let status = fulcrum_vkGetFenceStatus(handle, fence)
            if status == VK_SUCCESS { return }
            guard status == VK_NOT_READY else { try VulkanError.check(status, "vkGetFenceStatus"); return }
            if DispatchTime.now().uptimeNanoseconds >= spinUntil { break }
        }
        try VulkanError.check(fulcrum_vkWaitForFences(handle, 1, &fence, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
    }

    /// The index of a memory type allowed by `typeBits` with all of `required` flags.
    func memoryType(bits typeBits: UInt32, required: UInt32) -> UInt32? {
        var properties = memoryProperties
        return withUnsafeBytes(of: &properties.memoryTypes) { raw in
            let types = raw.bindMemory(to: VkMemoryType.self)
            for i in 0..<Int(memoryProperties.memoryTypeCount)
            where typeBits & (1 << UInt32(i)) != 0 && types[i].propertyFlags & required == required {
                return UInt32(i)
            }
            return nil
        }
    }

    private static func physicalDevices(_ instance: VulkanInstance) throws -> [VkPhysicalDevice] {
        var count: UInt32 = 0
        try VulkanError.check(fulcrum_vkEnumeratePhysicalDevices(instance.handle, &count, nil), "vkEnumeratePhysicalDevices")
        guard count > 0 else {
            throw VulkanError(.noDevice, "the Vulkan loader found no device (is a driver installed? VK_DRIVER_FILES set wrongly?)")
        }
        var devices = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        try VulkanError.check(fulcrum_vkEnumeratePhysicalDevices(instance.handle, &count, &devices), "vkEnumeratePhysicalDevices")
        return devices.prefix(Int(count)).compactMap { $0 }
    }

    private static func computeQueueFamily(_ device: VkPhysicalDevice) -> UInt32? {
        var count: UInt32 = 0
        fulcrum_vkGetPhysicalDeviceQueueFamilyProperties(device, &count, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(count))
        fulcrum_vkGetPhysicalDeviceQueueFamilyProperties(device, &count, &families)
        let compute = VK_QUEUE_COMPUTE_BIT.rawValue
        let graphics = VK_QUEUE_GRAPHICS_BIT.rawValue
        // A compute-only family (async compute) first, else any family with compute.
        if let i = families.indices.first(where: { families[$0].queueFlags & compute != 0 && families[$0].queueFlags & graphics == 0 }) {
            return UInt32(i)
        }
        return families.indices.first { families[$0].queueFlags & compute != 0 }.map { UInt32($0) }
    }

    private static func describe(_ device: VkPhysicalDevice, index: Int) -> VulkanDeviceInfo {
        var properties = VkPhysicalDeviceProperties()
        fulcrum_vkGetPhysicalDeviceProperties(device, &properties)
        var memory = VkPhysicalDeviceMemoryProperties()
        fulcrum_vkGetPhysicalDeviceMemoryProperties(device, &memory)
        let heaps = withUnsafeBytes(of: memory.memoryHeaps) { Array($0.bindMemory(to: VkMemoryHeap.self).prefix(Int(memory.memoryHeapCount))) }
        let types = withUnsafeBytes(of: memory.memoryTypes) { Array($0.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount))) }
        let deviceLocal = VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue
        let largest = heaps.filter { $0.flags & deviceLocal != 0 }.map(\.size).max() ?? 0
        let unifiedFlags = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue
            | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let unified = types.contains { type in
            type.propertyFlags & unifiedFlags == unifiedFlags && heaps[Int(type.heapIndex)].size == largest
        }
        let kind: String
        switch properties.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: kind = "discrete"
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: kind = "integrated"
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: kind = "virtual"
        case VK_PHYSICAL_DEVICE_TYPE_CPU: kind = "cpu"
        default: kind = "other"
        }
        var driverInfo = ""
        if properties.apiVersion >= (1 << 22) | (2 << 12) {
            var driver = VkPhysicalDeviceDriverProperties()
            driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES
            withUnsafeMutablePointer(to: &driver) { driverPointer in
                var properties2 = VkPhysicalDeviceProperties2()
                properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
                properties2.pNext = UnsafeMutableRawPointer(driverPointer)
                fulcrum_vkGetPhysicalDeviceProperties2(device, &properties2)
            }
            driverInfo = cString(fromTuple: driver.driverName) + ": " + cString(fromTuple: driver.driverInfo)
        }
        return VulkanDeviceInfo(
            index: index,
            name: cString(fromTuple: properties.deviceName),
            vendorID: properties.vendorID,
            vendor: VulkanDeviceInfo.vendorName(properties.vendorID),
            deviceID: properties.deviceID,
            kind: kind,
            driverVersion: VulkanDeviceInfo.driverVersionString(properties.driverVersion, vendorID: properties.vendorID),
            driverInfo: driverInfo,
            apiVersion: VulkanDeviceInfo.versionString(properties.apiVersion),
            deviceLocalMemoryBytes: largest,
            unifiedMemory: unified,
            maxWorkgroupInvocations: properties.limits.maxComputeWorkGroupInvocations,
            maxSharedMemoryBytes: properties.limits.maxComputeSharedMemorySize)
    }

    private static func list(_ infos: [VulkanDeviceInfo]) -> String {
        infos.isEmpty ? "none" : infos.map { "#\($0.index) \($0.name)" }.joined(separator: ", ")
    }

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

/// What a Vulkan physical device is, for logs, `fulcrum status` and the balancer.
public struct VulkanDeviceInfo: Sendable, Equatable, CustomStringConvertible {
    /// Position in the loader's enumeration order (what `--device N` selects).
    public var index: Int
    /// The driver's device name, e.g. `"NVIDIA H100 80GB HBM3"` or `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    public var name: String
    /// PCI vendor ID (or Khronos vendor ID for devices without one, e.g. Mesa's 0x10005).
    public var vendorID: UInt32
    /// A readable vendor name (`"NVIDIA"`, `"AMD"`, `"Intel"`, `"Apple"`, `"Mesa"`, ...), or the hex ID.
    public var vendor: String
    /// PCI device ID.
    public var deviceID: UInt32
    /// `"discrete"`, `"integrated"`, `"virtual"`, `"cpu"` or `"other"`.
    public var kind: String
    /// The driver version in the vendor's convention (NVIDIA's 10.8.8.6 bits, otherwise Vulkan's).
    public var driverVersion: String
    /// Driver name and details from `VkPhysicalDeviceDriverProperties` when the device reports
    /// them (Vulkan 1.2+), e.g. `"llvmpipe: Mesa 22.3.6 (LLVM 15.0.6)"`; empty otherwise.
    public var driverInfo: String
    /// The Vulkan version the device supports, e.g. `"1.3.230"`.
    public var apiVersion: String
    /// Bytes in the largest device-local memory heap.
    public var deviceLocalMemoryBytes: UInt64
    /// Whether some memory type is both device-local and host-visible across the whole heap
    /// (CPU devices, integrated GPUs): buffers are then mapped directly, with no staging copies.
    public var unifiedMemory: Bool
    /// The most invocations one workgroup may have.
    public var maxWorkgroupInvocations: UInt32
    /// Bytes of workgroup shared memory.
    public var maxSharedMemoryBytes: UInt32

    /// e.g. `#0 llvmpipe (LLVM 15.0.6, 256 bits) (Mesa cpu, driver 0.0.1, Vulkan 1.3.230, 15.5 GiB)`.
    public var description: String {
        let gib = Double(deviceLocalMemoryBytes) / Double(1 << 30)
        let memory = (gib * 10).rounded() / 10
        return "#\(index) \(name) (\(vendor) \(kind), driver \(driverVersion), Vulkan \(apiVersion), \(memory) GiB)"
    }

    static func vendorName(_ id: UInt32) -> String {
        switch id {
        case 0x10DE: "NVIDIA"
        case 0x1002, 0x1022: "AMD"
        case 0x8086: "Intel"
        case 0x106B: "Apple"
        case 0x13B5: "ARM"
        case 0x5143: "Qualcomm"
        case 0x1010: "Imagination"
        case 0x10005: "Mesa"
        default: "0x" + String(id, radix: 16)
        }
    }

    static func versionString(_ v: UInt32) -> String {
        "\(v >> 22 & 0x7F).\(v >> 12 & 0x3FF).\(v & 0xFFF)"
    }

    static func driverVersionString(_ v: UInt32, vendorID: UInt32) -> String {
        if vendorID == 0x10DE {
            return "\(v >> 22 & 0x3FF).\(v >> 14 & 0xFF).\(v >> 6 & 0xFF).\(v & 0x3F)"
        }
        return versionString(v)
    }
}

import CVulkan
import Synchronization

/// Messages the Khronos validation layer (or the loader) reported through `VK_EXT_debug_utils`.
/// Thread-safe; tests assert it stays empty.
public final class VulkanValidationLog: Sendable {
    private let entries = Mutex<[String]>([])

    init() {}

    /// Every warning and error reported so far, oldest first.
    public var messages: [String] { entries.withLock { $0 } }

    /// Forgets the messages reported so far.
    public func clear() { entries.withLock { $0.removeAll() } }

    func append(_ message: String) { entries.withLock { $0.append(message) } }
}

/// A `VkInstance`, with the validation layer and a debug messenger when asked for. Owned by
/// `VulkanDevice`; destroyed when the last device using it goes.
final class VulkanInstance: @unchecked Sendable {
    /// The layer `FULCRUM_VULKAN_VALIDATION=1` enables.
    static let validationLayer = "VK_LAYER_KHRONOS_validation"
    /// Vulkan 1.1: what the shaders target (MoltenVK and every current desktop driver have it).
    static let apiVersion: UInt32 = (1 << 22) | (1 << 12)

    let handle: VkInstance
    /// Whether the validation layer is active.
    let validationEnabled: Bool
    let log = VulkanValidationLog()
    private var messenger: VkDebugUtilsMessengerEXT?
    private var destroyMessenger: PFN_vkDestroyDebugUtilsMessengerEXT?
    private var logReference: Unmanaged<VulkanValidationLog>?

    /// Creates an instance; `validation` asks for the Khronos validation layer, which is used
    /// only when installed.
    init(validation: Bool) throws {
        guard fulcrum_vulkan_open() != 0 else {
            let reason = fulcrum_vulkan_open_error().map { String(cString: $0) } ?? "libvulkan.so.1: cannot open"
            throw VulkanError(
                .noLoader,
                "the Vulkan loader could not be loaded (\(reason)); install it (apt install libvulkan1) with a GPU driver "
                    + "that supports Vulkan, or Mesa's lavapipe (apt install mesa-vulkan-drivers) for a CPU device")
        }
        let layers = Self.availableLayers()
        let useValidation = validation && layers.contains(Self.validationLayer)
        let debugUtils = useValidation
            && (Self.availableExtensions(layer: nil).contains("VK_EXT_debug_utils")
                || Self.availableExtensions(layer: Self.validationLayer).contains("VK_EXT_debug_utils"))
        let layerNames = useValidation ? [Self.validationLayer] : []
        let extensionNames = debugUtils ? ["VK_EXT_debug_utils"] : []

        var instance: VkInstance?
        let result: VkResult = withCStrings(["fulcrum"] + layerNames + extensionNames) { all in
            var app = VkApplicationInfo()
            app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
            app.pApplicationName = all[0]
            app.pEngineName = all[0]
            app.apiVersion = Self.apiVersion
            let layerPointers = Array(all[1..<(1 + layerNames.count)])
            let extensionPointers = Array(all[(1 + layerNames.count)...])
            return withUnsafePointer(to: &app) { appPointer in
                layerPointers.withUnsafeBufferPointer { layerBuffer in
                    extensionPointers.withUnsafeBufferPointer { extensionBuffer in
                        var info = VkInstanceCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                        info.pApplicationInfo = appPointer
                        info.enabledLayerCount = UInt32(layerBuffer.count)
                        info.ppEnabledLayerNames = layerBuffer.baseAddress
                        info.enabledExtensionCount = UInt32(extensionBuffer.count)
                        info.ppEnabledExtensionNames = extensionBuffer.baseAddress
                        return fulcrum_vkCreateInstance(&info, nil, &instance)
                    }
                }
            }
        }
        guard result == VK_SUCCESS, let instance else {
            if result == VK_ERROR_INCOMPATIBLE_DRIVER || result == VK_ERROR_INITIALIZATION_FAILED {
                throw VulkanError(
                    .noLoader,
                    "no Vulkan driver found (vkCreateInstance: \(VulkanError.name(of: result))); install a GPU driver "
                        + "with Vulkan support, or Mesa's lavapipe (apt install mesa-vulkan-drivers) for a CPU device",
                    result: result.rawValue)
            }
            try VulkanError.check(result, "vkCreateInstance")
            throw VulkanError(.noLoader, "vkCreateInstance returned no instance")
        }
        self.handle = instance
        self.validationEnabled = useValidation
        if debugUtils {
            installMessenger()
        }
    }

    deinit {
        if let messenger, let destroyMessenger {
            destroyMessenger(handle, messenger, nil)
        }
        fulcrum_vkDestroyInstance(handle, nil)
        logReference?.release()
    }

    private func installMessenger() {
        guard let create = fulcrum_vkGetInstanceProcAddr(handle, "vkCreateDebugUtilsMessengerEXT"),
            let destroy = fulcrum_vkGetInstanceProcAddr(handle, "vkDestroyDebugUtilsMessengerEXT")
        else { return }
        let createFunction = unsafeBitCast(create, to: PFN_vkCreateDebugUtilsMessengerEXT.self)
        destroyMessenger = unsafeBitCast(destroy, to: PFN_vkDestroyDebugUtilsMessengerEXT.self)
        let reference = Unmanaged.passRetained(log)
        logReference = reference

        var info = VkDebugUtilsMessengerCreateInfoEXT()
        info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
        info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
        info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
        info.pUserData = reference.toOpaque()
        info.pfnUserCallback = { severity, _, data, user in
            guard let user else { return VkBool32(VK_FALSE) }
            let log = Unmanaged<VulkanValidationLog>.fromOpaque(user).takeUnretainedValue()
            let text = data?.pointee.pMessage.map { String(cString: $0) } ?? "(no message)"
            let level = severity == VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning"
            log.append("\(level): \(text)")
            return VkBool32(VK_FALSE)
        }
        var messenger: VkDebugUtilsMessengerEXT?
        if createFunction(handle, &info, nil, &messenger) == VK_SUCCESS {
            self.messenger = messenger
        }
    }

    /// Instance layers the loader can enable.
    static func availableLayers() -> Set<String> {
        var count: UInt32 = 0
        guard fulcrum_vkEnumerateInstanceLayerProperties(&count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var properties = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        guard fulcrum_vkEnumerateInstanceLayerProperties(&count, &properties) == VK_SUCCESS else { return [] }
        return Set(properties.prefix(Int(count)).map { cString(fromTuple: $0.layerName) })
    }

    /// Instance extensions of the loader and drivers (`layer == nil`) or of one layer.
    static func availableExtensions(layer: String?) -> Set<String> {
        var count: UInt32 = 0
        guard fulcrum_vkEnumerateInstanceExtensionProperties(layer, &count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var properties = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
        guard fulcrum_vkEnumerateInstanceExtensionProperties(layer, &count, &properties) == VK_SUCCESS else { return [] }
        return Set(properties.prefix(Int(count)).map { cString(fromTuple: $0.extensionName) })
    }
}

/// A Swift string from a fixed-size C `char[N]` member (imported as a tuple).
func cString<T>(fromTuple tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Calls `body` with NUL-terminated copies of `strings` that live for the call.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
    let copies: [UnsafeMutablePointer<CChar>] = strings.map { string in
        let bytes = Array(string.utf8CString)
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        pointer.initialize(from: bytes, count: bytes.count)
        return pointer
    }
    defer { copies.forEach { $0.deallocate() } }
    return try body(copies.map { UnsafePointer($0) })
}

import CVulkan

/// An error from the Vulkan backend: what went wrong, in words a user can act on.
///
/// Creating a device never crashes the process: no loader, no device, an unknown device index or
/// name, and failing Vulkan calls all come back as a `VulkanError`.
public struct VulkanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable category for the error; extensible (new codes are added as static members).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"noDevice"`.
        public let rawValue: String
        /// Creates a code from its name.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        /// The name.
        public var description: String { rawValue }

        /// The Vulkan loader is missing or has no driver (ICD) to offer.
        public static let noLoader = Code("noLoader")
        /// The loader works but offers no device with a compute queue.
        public static let noDevice = Code("noDevice")
        /// The requested device index or name matches no device.
        public static let deviceNotFound = Code("deviceNotFound")
        /// A Vulkan call failed (the `VkResult` is in `result`).
        public static let callFailed = Code("callFailed")
        /// The device has no memory type or capacity for a request.
        public static let outOfMemory = Code("outOfMemory")
        /// A caller passed sizes, strides or buffers that do not fit the request.
        public static let invalidArgument = Code("invalidArgument")
        /// The backend does not implement this operation or variant.
        public static let unsupported = Code("unsupported")
        /// The device stopped working (`VK_ERROR_DEVICE_LOST`: a driver reset, a hung kernel, a
        /// removed card). Nothing more can run on it; the process must open the device again.
        public static let deviceLost = Code("deviceLost")
    }

    /// The category.
    public var code: Code
    /// What went wrong and, where possible, what to do about it.
    public var message: String
    /// The `VkResult` of the failing call, when a Vulkan call failed.
    public var result: Int32?

    /// Creates an error.
    public init(_ code: Code, _ message: String, result: Int32? = nil) {
        self.code = code
        self.message = message
        self.result = result
    }

    /// e.g. `vulkan: callFailed: vkCreateDevice failed: VK_ERROR_DEVICE_LOST (-4)`.
    public var description: String { "vulkan: \(code): \(message)" }

    /// Throws `callFailed` (`outOfMemory`, `deviceLost` where the result says so) naming `call` when `result` is not `VK_SUCCESS`.
    static func check(_ result: VkResult, _ call: @autoclosure () -> String) throws {
        guard result != VK_SUCCESS else { return }
        let code: Code = switch result {
        case VK_ERROR_OUT_OF_DEVICE_MEMORY, VK_ERROR_OUT_OF_HOST_MEMORY: .outOfMemory
        case VK_ERROR_DEVICE_LOST: .deviceLost
        default: .callFailed
        }
        throw VulkanError(code, "\(call()) failed: \(name(of: result)) (\(result.rawValue))", result: result.rawValue)
    }

    /// The symbolic name of a `VkResult`.
    static func name(of result: VkResult) -> String {
        switch result {
        case VK_SUCCESS: "VK_SUCCESS"
        case VK_NOT_READY: "VK_NOT_READY"
        case VK_TIMEOUT: "VK_TIMEOUT"
        case VK_INCOMPLETE: "VK_INCOMPLETE"
        case VK_ERROR_OUT_OF_HOST_MEMORY: "VK_ERROR_OUT_OF_HOST_MEMORY"
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: "VK_ERROR_OUT_OF_DEVICE_MEMORY"
        case VK_ERROR_INITIALIZATION_FAILED: "VK_ERROR_INITIALIZATION_FAILED"
        case VK_ERROR_DEVICE_LOST: "VK_ERROR_DEVICE_LOST"
        case VK_ERROR_MEMORY_MAP_FAILED: "VK_ERROR_MEMORY_MAP_FAILED"
        case VK_ERROR_LAYER_NOT_PRESENT: "VK_ERROR_LAYER_NOT_PRESENT"
        case VK_ERROR_EXTENSION_NOT_PRESENT: "VK_ERROR_EXTENSION_NOT_PRESENT"
        case VK_ERROR_FEATURE_NOT_PRESENT: "VK_ERROR_FEATURE_NOT_PRESENT"
        case VK_ERROR_INCOMPATIBLE_DRIVER: "VK_ERROR_INCOMPATIBLE_DRIVER"
        case VK_ERROR_TOO_MANY_OBJECTS: "VK_ERROR_TOO_MANY_OBJECTS"
        case VK_ERROR_OUT_OF_POOL_MEMORY: "VK_ERROR_OUT_OF_POOL_MEMORY"
        default: "VkResult"
        }
    }
}

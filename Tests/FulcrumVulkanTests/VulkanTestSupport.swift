import Foundation
import FulcrumKernels
import Testing

/// The device every Vulkan test shares, opened once with the Khronos validation layer on.
///
/// When `VK_DRIVER_FILES` is unset and Mesa's lavapipe is installed (scripts/bootstrap installs
/// mesa-vulkan-drivers), the tests force lavapipe so they run the same everywhere, GPU or not.
/// With no Vulkan device at all the tests are skipped with the reason, not failed.
enum TestDevice {
    static let opened: Result<VulkanDevice, VulkanError> = {
        useLavapipeIfUnset()
        return Result { try VulkanDevice(options: .init(validation: true)) }.mapError { $0 as! VulkanError }
    }()

    /// Whether a device could be opened (the tests' `.enabled(if:)` condition).
    static var available: Bool { (try? opened.get()) != nil }

    /// The shared device; only called by enabled tests.
    static var device: VulkanDevice { try! opened.get() }

    /// A backend on the shared device.
    static var backend: VulkanBackend { VulkanBackend(device: device) }

    /// Why the tests are skipped.
    static var skipReason: Comment {
        switch opened {
        case .success: "Vulkan device available"
        case .failure(let error): "no Vulkan device: \(error.message)"
        }
    }

    /// Whether the Khronos validation layer is installed (then the tests must run with it).
    static var validationLayerInstalled: Bool {
        ["/usr/share/vulkan/explicit_layer.d", "/etc/vulkan/explicit_layer.d", "/usr/local/share/vulkan/explicit_layer.d"]
            .contains { FileManager.default.fileExists(atPath: $0 + "/VkLayer_khronos_validation.json") }
    }

    static func useLavapipeIfUnset() {
        guard getenv("VK_DRIVER_FILES") == nil, getenv("VK_ICD_FILENAMES") == nil else { return }
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "aarch64"
        #else
        let arch = "unknown"
        #endif
        let path = "/usr/share/vulkan/icd.d/lvp_icd.\(arch).json"
        if FileManager.default.fileExists(atPath: path) {
            setenv("VK_DRIVER_FILES", path, 1)
        }
    }
}

/// A reproducible random source (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomFloats(_ count: Int, in range: ClosedRange<Float> = -1...1, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Float.random(in: range, using: &generator) }
}

/// ‖actual − expected‖₂ / ‖expected‖₂ (absolute when the expectation is all zeros).
func relativeL2(_ actual: [Float], _ expected: [Float]) -> Double {
    precondition(actual.count == expected.count)
    var diff = 0.0
    var norm = 0.0
    for (a, e) in zip(actual, expected) {
        diff += Double(a - e) * Double(a - e)
        norm += Double(e) * Double(e)
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}

/// Fails the test when the validation layer reported anything.
func expectNoValidationMessages(_ device: VulkanDevice, sourceLocation: SourceLocation = #_sourceLocation) {
    let messages = device.validationLog.messages
    #expect(messages.isEmpty, "validation layer: \(messages.prefix(3).joined(separator: " | "))", sourceLocation: sourceLocation)
}

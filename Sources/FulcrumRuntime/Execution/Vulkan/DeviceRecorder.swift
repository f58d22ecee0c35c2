import FulcrumKernels
import FulcrumSchema

/// What an operator records its per-batch work with on a Vulkan device: the recording of the
/// bound plan, the status word kernels flag data errors in (a Gather index out of range), and
/// scratch buffers owned by the bound plan.
final class DeviceRecorder {
    let device: VulkanDevice
    let recording: VulkanRecording
    /// One word, zeroed at the start of every batch; nonzero afterwards means an index was out
    /// of range.
    let status: VulkanBuffer
    private var scratch: [VulkanBuffer] = []
    private var shared: VulkanBuffer?

    init(device: VulkanDevice, recording: VulkanRecording, status: VulkanBuffer) {
        self.device = device
        self.recording = recording
        self.status = status
    }

    /// A buffer of `words` words that lives as long as the bound plan (contents undefined).
    func scratchBuffer(words: Int) throws(RuntimeError) -> VulkanBuffer {
        let buffer = try Self.mapping { try VulkanBuffer(device: device, count: max(words, 1)) }
        scratch.append(buffer)
        return buffer
    }

    /// A buffer of at least `words` words shared by every kernel that asks for one while this
    /// plan is recorded (a convolution's im2col matrix): dispatches run one after another with a
    /// barrier between them, so one kernel's scratch is dead before the next one writes it. A
    /// larger request replaces it with a new buffer (the old one stays with what recorded it).
    func sharedScratch(words: Int) throws(RuntimeError) -> VulkanBuffer {
        if let shared, shared.count >= words { return shared }
        let buffer = try scratchBuffer(words: words)
        shared = buffer
        return buffer
    }

    /// Runs `body` (Vulkan calls), turning a `VulkanError` into a `RuntimeError`.
    func record(_ body: (VulkanRecording) throws -> Void) throws(RuntimeError) {
        try Self.mapping { try body(recording) }
    }

    /// `body`'s result, with a `VulkanError` turned into the `RuntimeError` a caller can act on.
    static func mapping<T>(_ body: () throws -> T) throws(RuntimeError) -> T {
        do {
            return try body()
        } catch let error as VulkanError {
            throw runtimeError(error)
        } catch {
            throw RuntimeError(code: .internalError, message: "vulkan: \(error)")
        }
    }

    static func runtimeError(_ error: VulkanError) -> RuntimeError {
        switch error.code {
        case .unsupported: RuntimeError(code: .unsupportedOperator, message: "the vulkan backend: \(error.message)")
        case .invalidArgument: RuntimeError(code: .internalError, message: "the vulkan backend refused a kernel: \(error.message)")
        case .deviceLost, .outOfMemory, .callFailed: RuntimeError(code: .deviceFailure, message: error.description)
        default: RuntimeError(code: .deviceFailure, message: error.description)
        }
    }
}

/// An operator that can record its per-batch work on a Vulkan device.
///
/// `record` runs once per bound shape (never per batch): it checks what the device kernels
/// need, computes layouts, and adds dispatches to the recording. Inputs that are static carry
/// their host contents (`DeviceValue.host`) for shape-like parameters. Errors name what the
/// backend lacks; the plan adds the node.
protocol DeviceOperator: Operator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError)
}

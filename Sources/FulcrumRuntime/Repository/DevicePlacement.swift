import FulcrumKernels
import FulcrumSchema
import Synchronization

/// Where a repository's models run: the worker's default backend (`--backend`, `--device`)
/// and, per model, the first `instance_group`'s kind — `KIND_CPU` always on the CPU, `KIND_GPU`
/// on the Vulkan device `gpus[0]` (else the default device), `KIND_AUTO`/`KIND_MODEL` or no
/// group on the default backend.
///
/// Vulkan devices are opened once, when first needed, and shared by every model placed on
/// them. Thread-safe.
public final class DevicePlacement: Sendable {
    /// The backend models run on unless their configuration says otherwise.
    public enum Backend: Sendable, Equatable {
        /// The CPU backend.
        case cpu
        /// The Vulkan device with this index (`VulkanDevice.availableDevices()` order).
        case vulkan(device: Int)
    }

    /// The default backend.
    public let backend: Backend
    private let options: VulkanDevice.Options
    private let opened = Mutex<[Int: VulkanDevice]>([:])

    /// A placement on `backend`; `options` opens Vulkan devices (their `selection` is replaced
    /// by the index asked for).
    public init(backend: Backend = .cpu, options: VulkanDevice.Options = VulkanDevice.Options()) {
        self.backend = backend
        self.options = options
    }

    /// Models on the CPU only.
    public static let cpu = DevicePlacement()

    /// Opens the default backend's device now (a worker does so before it listens, so a missing
    /// or broken device stops it at start). Returns nil for the CPU backend.
    public func openDefaultDevice() throws(RuntimeError) -> VulkanDevice? {
        guard case .vulkan(let index) = backend else { return nil }
        return try device(index)
    }

    /// The Vulkan devices opened so far, by index.
    public var openedDevices: [Int: VulkanDevice] { opened.withLock { $0 } }

    /// The target for a model with `configuration` (nil: no config.pbtxt).
    public func target(for configuration: ModelConfiguration?) throws(RuntimeError) -> ExecutionTarget {
        let group = configuration?.instanceGroups.first
        switch group?.kind {
        case .cpu?:
            return .cpu
        case .gpu?:
            let fallback: Int
            if case .vulkan(let index) = backend { fallback = index } else { fallback = 0 }
            return .vulkan(try device(group?.gpus.first ?? fallback))
        default:
            guard case .vulkan(let index) = backend else { return .cpu }
            return .vulkan(try device(index))
        }
    }

    private func device(_ index: Int) throws(RuntimeError) -> VulkanDevice {
        let result: Result<VulkanDevice, VulkanError> = opened.withLock { devices in
            if let existing = devices[index] { return .success(existing) }
            var options = self.options
            options.selection = .index(index)
            do {
                let device = try VulkanDevice(options: options)
                devices[index] = device
                return .success(device)
            } catch let error as VulkanError {
                return .failure(error)
            } catch {
                return .failure(VulkanError(.callFailed, "\(error)"))
            }
        }
        switch result {
        case .success(let device): return device
        case .failure(let error):
            throw RuntimeError(code: .deviceFailure, message: "cannot open Vulkan device \(index): \(error.message)")
        }
    }
}

import FulcrumKernels

/// Where a model's per-batch kernels run.
///
/// Planning (constant folding, shape inference, bind-time evaluation of shape subgraphs) always
/// happens on the host; the target decides who runs the per-batch nodes: the CPU backend, or a
/// Vulkan device with every per-batch node recorded into one command buffer per batch shape.
public enum ExecutionTarget: Sendable {
    /// `CPUBackend`: OpenBLAS and the runtime's SIMD kernels.
    case cpu
    /// The Vulkan backend on an opened device (shared by every model placed on it).
    case vulkan(VulkanDevice)

    /// `"cpu"` or `"vulkan"`, for logs, errors and metrics.
    public var backendName: String {
        switch self {
        case .cpu: "cpu"
        case .vulkan: "vulkan"
        }
    }
}

import FulcrumKernels
import FulcrumSchema

/// The weights of a plan placed on a Vulkan device: every initializer a per-batch node reads,
/// uploaded once when the model loads and shared (read-only) by every instance and bound shape.
///
/// Building it is also where a model is refused for the device: each per-batch node must be a
/// view or have a Vulkan lowering (`DeviceOperator`), else `.unsupportedOperator` names the node
/// and operator. (Data-type limits — INT64 arithmetic, say — are found when a shape is bound.)
final class DeviceConstants: Sendable {
    /// Device buffers by value id.
    let buffers: [Int: VulkanBuffer]
    /// Bytes uploaded.
    let byteCount: Int

    init(plan: ExecutionPlan, device: VulkanDevice) throws(RuntimeError) {
        var read: Set<Int> = []
        for position in plan.perBatchNodes() {
            let node = plan.nodes[position]
            guard node.op.viewInput != nil || node.op is any DeviceOperator else {
                throw RuntimeError(
                    code: .unsupportedOperator,
                    message: "\(node.label) runs per batch, and the vulkan backend has no kernel for \(node.opType); supported on vulkan: \(VulkanBackend.supportedOperators.sorted().joined(separator: ", "))")
            }
            read.formUnion(node.inputs.filter { $0 >= 0 })
        }
        var buffers: [Int: VulkanBuffer] = [:]
        var bytes = 0
        for id in read {
            guard let constant = plan.constants[id] else { continue }
            let type = plan.valueTypes[id]
            guard let shape = type.shape, type.dataType.deviceElementType != nil else { continue }
            let count = shape.reduce(1, *)
            buffers[id] = try DeviceRecorder.mapping {
                try DeviceLayout.upload(constant.pointer, type.dataType, count: count, device: device)
            }
            bytes += (type.dataType.deviceWords(count) ?? 0) * 4
        }
        self.buffers = buffers
        self.byteCount = bytes
    }
}

import FulcrumKernels
import FulcrumSchema

/// The per-batch work of a `BoundPlan` on a Vulkan device: one device buffer per value root
/// (views share it), weights from the plan's `DeviceConstants` (uploaded once at load), and
/// one command buffer holding, in order, the zeroing of the status word, the inputs' copies up
/// from staging (devices without unified memory), every per-batch node's dispatches, and the
/// outputs' copies down. Recorded once when the plan is bound; `run()` replays it per batch.
///
/// Owned by one `ModelInstance` through its `BoundPlan` (not thread-safe). Submissions of
/// different instances are serialised by the device's queue; `run()` blocks its caller (the
/// model's executor) while the worker's batcher keeps filling the next batch.
final class DeviceProgram {
    /// A graph input or output crossing between host memory and the device.
    private struct Transfer {
        var host: UnsafeMutableRawPointer
        var dataType: DataType
        var count: Int
        /// Where the host side reads or writes: the device buffer itself when mapped, else the
        /// staging buffer the recording copies through.
        var mapped: UnsafeMutableRawPointer
    }

    private let recording: VulkanRecording
    private let status: VulkanBuffer
    /// The status word as the host reads it after a batch (the buffer, or its staging copy).
    private var statusWord: UnsafeMutableRawPointer?
    private var inputs: [Transfer] = []
    private var outputs: [Transfer] = []
    private var buffers: [Int: VulkanBuffer] = [:]
    private var keep: [VulkanBuffer] = []
    /// Per-batch nodes recorded (the plan's kernel count on this device).
    private(set) var nodeCount = 0
    /// Device bytes this binding allocated (intermediates, inputs, outputs; not the weights).
    private(set) var deviceBytes = 0

    /// Allocates the buffers and records the plan. `nodes` are the per-batch node positions,
    /// `types` every value's concrete type, `host` the host memory of graph inputs, graph
    /// outputs and static values, `isStatic` which values are known before any batch, `root`
    /// the value whose memory each view uses, `results` the graph outputs to bring down with the
    /// host memory they go to.
    init(
        plan: ExecutionPlan, device: VulkanDevice, nodes: [Int], types: [ValueType?], host: [BoundValue?],
        isStatic: [Bool], root: [Int], results: [(value: Int, host: BoundValue)]
    ) throws(RuntimeError) {
        (recording, status) = try DeviceRecorder.mapping {
            (try VulkanRecording(device: device), try VulkanBuffer(device: device, count: 1))
        }
        let recorder = DeviceRecorder(device: device, recording: recording, status: status)
        try recorder.record { try $0.fill(status) }

        // Graph inputs: mapped device memory, or a staging buffer copied up at the start.
        for input in plan.inputs {
            let id = input.value
            guard let value = host[id] else { continue }
            let words = try Self.words(value.dataType, value.elementCount)
            let buffer = try allocate(device, words)
            buffers[id] = buffer
            let mapped = try hostSide(of: buffer, words: words, upward: true, recorder)
            inputs.append(Transfer(host: value.pointer, dataType: value.dataType, count: value.elementCount, mapped: mapped))
        }

        func deviceValue(_ id: Int) throws(RuntimeError) -> DeviceValue {
            let type = types[id]!
            let base = root[id]
            if let buffer = buffers[base] {
                return DeviceValue(dataType: type.dataType, shape: type.shape!, buffer: buffer, host: isStatic[id] ? host[id] : nil)
            }
            guard isStatic[base], let known = host[base] else {
                throw RuntimeError(code: .internalError, message: "value '\(plan.valueNames[id])' has no device memory")
            }
            // A weight (uploaded at load) or a value computed while binding (uploaded now).
            let buffer: VulkanBuffer
            if let uploaded = plan.deviceConstants?.buffers[base] {
                buffer = uploaded
            } else {
                buffer = try DeviceRecorder.mapping {
                    try DeviceLayout.upload(known.pointer, known.dataType, count: known.elementCount, device: device)
                }
            }
            buffers[base] = buffer
            return DeviceValue(dataType: type.dataType, shape: type.shape!, buffer: buffer, host: host[id])
        }

        for position in nodes {
            let node = plan.nodes[position]
            do throws(RuntimeError) {
                guard let op = node.op as? any DeviceOperator else {
                    throw RuntimeError(code: .unsupportedOperator, message: "the vulkan backend has no kernel for \(node.opType)")
                }
                let ins = try node.inputs.map { id throws(RuntimeError) in id >= 0 ? try deviceValue(id) : nil }
                let last = node.outputs.lastIndex { $0 >= 0 } ?? -1
                let outputTypes = try op.inferTypes(node.inputs.map { $0 >= 0 ? types[$0] : nil })
                var outs: [DeviceValue] = []
                for (index, id) in node.outputs.prefix(last + 1).enumerated() {
                    let type = id >= 0 ? types[id]! : outputTypes[index]
                    let shape = type.shape ?? []
                    let words = try Self.words(type.dataType, shape.reduce(1, *))
                    let buffer: VulkanBuffer
                    if id >= 0, let existing = buffers[root[id]] {
                        buffer = existing
                    } else {
                        buffer = try allocate(device, words)
                        if id >= 0 { buffers[root[id]] = buffer }
                    }
                    outs.append(DeviceValue(dataType: type.dataType, shape: shape, buffer: buffer))
                }
                try op.record(inputs: ins, outputs: outs, on: recorder)
                nodeCount += 1
            } catch {
                throw RuntimeError(code: error.code, message: "\(node.label) on the vulkan backend: \(error.message)")
            }
        }

        // Graph outputs computed on the device come down at the end.
        for (id, value) in results {
            guard let buffer = buffers[root[id]] else {
                throw RuntimeError(code: .internalError, message: "graph output '\(plan.valueNames[id])' has no device memory")
            }
            let words = try Self.words(value.dataType, value.elementCount)
            let mapped = try hostSide(of: buffer, words: words, upward: false, recorder)
            outputs.append(Transfer(host: value.pointer, dataType: value.dataType, count: value.elementCount, mapped: mapped))
        }
        statusWord = try hostSide(of: status, words: 1, upward: false, recorder)
        try recorder.record { try $0.end() }
    }

    /// The memory the host reads or writes for `buffer`: the buffer itself when mapped (unified
    /// memory), else a staging buffer the recording copies up from (`upward`) or down into at
    /// this point of the recording.
    private func hostSide(
        of buffer: VulkanBuffer, words: Int, upward: Bool, _ recorder: DeviceRecorder
    ) throws(RuntimeError) -> UnsafeMutableRawPointer {
        if let mapped = buffer.hostPointer { return mapped }
        let staging = try DeviceRecorder.mapping { try VulkanBuffer.staging(device: recorder.device, count: max(words, 1)) }
        keep.append(staging)
        try recorder.record {
            if upward {
                try $0.transfer(from: staging, to: buffer, words: words)
            } else {
                try $0.transfer(from: buffer, to: staging, words: words)
            }
        }
        guard let mapped = staging.hostPointer else {
            throw RuntimeError(code: .deviceFailure, message: "a staging buffer of \(words) words is not host-visible")
        }
        return mapped
    }

    private func allocate(_ device: VulkanDevice, _ words: Int) throws(RuntimeError) -> VulkanBuffer {
        let buffer = try DeviceRecorder.mapping { try VulkanBuffer(device: device, count: max(words, 1)) }
        keep.append(buffer)
        deviceBytes += max(words, 1) * 4
        return buffer
    }

    private static func words(_ dataType: DataType, _ count: Int) throws(RuntimeError) -> Int {
        guard let words = dataType.deviceWords(count) else {
            throw RuntimeError(code: .unsupportedOperator, message: "the vulkan backend does not hold \(dataType.rawValue) tensors")
        }
        return words
    }

    /// Copies the inputs up, runs the recording, checks the status word and copies the outputs
    /// down into their host memory. Throws `.invalidInput` for an index out of range and
    /// `.deviceFailure` when the device fails.
    func run() throws(RuntimeError) {
        for input in inputs { DeviceLayout.pack(input.host, input.dataType, count: input.count, into: input.mapped) }
        try DeviceRecorder.mapping { try recording.submit() }
        if let statusWord, statusWord.load(as: UInt32.self) != 0 {
            throw RuntimeError(code: .invalidInput, message: "a Gather index is out of range for its axis")
        }
        for output in outputs { DeviceLayout.unpack(output.mapped, output.dataType, count: output.count, into: output.host) }
    }
}

import FulcrumKernels
import FulcrumSchema

/// An `ExecutionPlan` bound to concrete input shapes: every value has its shape and memory, and
/// every node its kernel closure over that memory, so running a batch is a loop of calls.
///
/// Binding does, in order: shape inference with concrete shapes; evaluation of every node whose
/// result follows from shapes and constants alone (shape subgraphs: `Shape → Gather → Concat →
/// Reshape`), once, here; aliasing of view nodes (Reshape, Flatten, Squeeze, Unsqueeze,
/// Identity) onto their input's memory; and memory planning: every per-batch intermediate gets
/// an offset in one arena so that values whose lifetimes (producer to last reader) do not
/// overlap share bytes (greedy by size, first fit). Graph inputs get their own buffers (a
/// request is copied in), graph outputs live to the end.
///
/// Owned by one `ModelInstance` (not thread-safe: buffers are reused by every run). Binding
/// allocates; `run()` does not.
final class BoundPlan {
    let plan: ExecutionPlan
    /// The graph-input shapes this binding was made for (in `plan.inputs` order).
    let inputShapes: [[Int]]
    /// Every value bound to memory (constants point at the shared initializer buffers).
    private(set) var values: [BoundValue?]
    private var buffers: [TensorBuffer] = []
    private var kernels: [Kernel] = []
    /// The recorded per-batch work when the plan runs on a Vulkan device (then `kernels` is empty).
    private var program: DeviceProgram?
    /// Bytes of the shared arena holding every per-batch intermediate and output.
    private(set) var arenaBytes = 0
    /// What those values would need with one buffer each.
    private(set) var unsharedBytes = 0
    /// Nodes run per batch (the rest ran once while binding).
    var kernelCount: Int { program?.nodeCount ?? kernels.count }

    /// Infers every shape from `inputShapes`, plans memory and makes kernels. Throws
    /// `.invalidInput` when the shapes do not fit the model (naming the node that refuses them).
    init(plan: ExecutionPlan, inputShapes: [[Int]]) throws(RuntimeError) {
        self.plan = plan
        self.inputShapes = inputShapes
        let count = plan.valueNames.count
        values = Array(repeating: nil, count: count)
        var types = [ValueType?](repeating: nil, count: count)
        var isStatic = [Bool](repeating: false, count: count)
        for (id, buffer) in plan.constants {
            let type = plan.valueTypes[id]
            values[id] = BoundValue(dataType: type.dataType, shape: type.shape ?? [], pointer: buffer.pointer)
            types[id] = type
            isStatic[id] = true
        }
        for (input, shape) in zip(plan.inputs, inputShapes) {
            if let declared = input.declared.shape {
                guard declared.count == shape.count,
                    zip(declared, shape).allSatisfy({ $0 < 0 || $0 == $1 })
                else {
                    throw RuntimeError(
                        code: .invalidInput,
                        message: "input '\(input.name)' has shape \(shape); the model expects \(declared) (-1 = any)")
                }
            }
            values[input.value] = try allocate(input.declared.dataType, shape)
            types[input.value] = ValueType(dataType: input.declared.dataType, shape: shape)
        }

        // Pass 1: shapes, bind-time evaluation, views; collect the per-batch nodes.
        var root = Array(0..<count)  // the value whose memory a view uses
        var dynamicNodes: [Int] = []
        for (position, node) in plan.nodes.enumerated() {
            do throws(RuntimeError) {
                let inputTypes = node.inputs.map { $0 >= 0 ? types[$0] : nil }
                let outputTypes = try node.op.inferTypes(inputTypes)
                for (index, id) in node.outputs.enumerated() where id >= 0 {
                    let type = outputTypes[index]
                    guard type.isConcrete else {
                        throw RuntimeError(code: .internalError, message: "output \(index) has no concrete shape (\(type))")
                    }
                    types[id] = type
                }
                let present = node.inputs.filter { $0 >= 0 }
                if node.op.readsOnlyShapes || present.allSatisfy({ isStatic[$0] }) {
                    let inputs = node.inputs.map { id -> BoundValue? in
                        guard id >= 0 else { return nil }
                        if let value = values[id] { return value }
                        let type = types[id]!
                        return BoundValue(dataType: type.dataType, shape: type.shape!, pointer: StaticEvaluation.placeholder.pointer)
                    }
                    let results = try StaticEvaluation.evaluate(node.op, inputs: inputs, types: outputTypes, backend: plan.backend)
                    for (index, id) in node.outputs.enumerated() where id >= 0 {
                        buffers.append(results[index].buffer)
                        values[id] = results[index].value
                        types[id] = results[index].type
                        isStatic[id] = true
                    }
                    continue
                }
                if let view = node.op.viewInput, node.outputs.count == 1, node.outputs[0] >= 0, node.inputs[view] >= 0 {
                    root[node.outputs[0]] = root[node.inputs[view]]
                    continue
                }
                dynamicNodes.append(position)
            } catch {
                let code: RuntimeError.Code = error.code == .invalidModel ? .invalidInput : error.code
                throw RuntimeError(
                    code: code,
                    message: "the inputs' shapes \(inputShapes) do not fit the model at \(node.label): \(error.message)")
            }
        }

        if case .vulkan(let device) = plan.target {
            try bindDevice(device, dynamicNodes: dynamicNodes, types: types, isStatic: isStatic, root: root)
            return
        }

        // Lifetimes of the arena's values, in per-batch node positions.
        let end = plan.nodes.count
        var lastUse = [Int](repeating: -1, count: count)
        for position in dynamicNodes {
            for id in plan.nodes[position].inputs where id >= 0 {
                lastUse[root[id]] = max(lastUse[root[id]], position)
            }
        }
        for output in plan.outputs { lastUse[root[output.value]] = end }
        var intervals: [MemoryPlanner.Interval] = []
        for position in dynamicNodes {
            for id in plan.nodes[position].outputs where id >= 0 && root[id] == id {
                let type = types[id]!
                let bytes = try Self.byteCount(type.dataType, type.shape!)
                intervals.append(.init(value: id, bytes: bytes, first: position, last: max(lastUse[id], position)))
            }
        }
        let layout = MemoryPlanner.plan(intervals)
        guard layout.totalBytes <= Self.maximumTensorBytes else {
            throw RuntimeError(
                code: .invalidInput,
                message: "the inputs' shapes \(inputShapes) need \(layout.totalBytes >> 20) MiB of intermediate tensors, more than \(Self.maximumTensorBytes >> 30) GiB")
        }
        arenaBytes = layout.totalBytes
        unsharedBytes = intervals.reduce(0) { $0 + $1.bytes }
        let arena = TensorBuffer(byteCount: layout.totalBytes)
        buffers.append(arena)
        for (id, offset) in layout.offsets {
            let type = types[id]!
            values[id] = BoundValue(dataType: type.dataType, shape: type.shape!, pointer: arena.pointer + offset)
        }
        // Views take their root's memory (roots precede their views in node order).
        for id in 0..<count where root[id] != id && values[id] == nil {
            guard let base = values[root[id]], let type = types[id] else { continue }
            values[id] = BoundValue(dataType: type.dataType, shape: type.shape!, pointer: base.pointer)
        }

        // Pass 2: kernels of the per-batch nodes.
        for position in dynamicNodes {
            let node = plan.nodes[position]
            do throws(RuntimeError) {
                let inputs = node.inputs.map { $0 >= 0 ? values[$0] : nil }
                var outputs: [BoundValue] = []
                for id in node.outputs {
                    if id >= 0, let value = values[id] {
                        outputs.append(value)
                    } else {
                        // An omitted optional output still needs memory to be written to.
                        let types = try node.op.inferTypes(node.inputs.map { $0 >= 0 ? types[$0] : nil })
                        let type = types[outputs.count]
                        outputs.append(try allocate(type.dataType, type.shape ?? []))
                    }
                }
                kernels.append(try node.op.makeKernel(inputs: inputs, outputs: outputs, backend: plan.backend))
            } catch {
                let code: RuntimeError.Code = error.code == .invalidModel ? .invalidInput : error.code
                throw RuntimeError(
                    code: code,
                    message: "the inputs' shapes \(inputShapes) do not fit the model at \(node.label): \(error.message)")
            }
        }
    }

    /// The Vulkan path of binding: host memory for the graph outputs, then a `DeviceProgram`
    /// holding every per-batch node's buffers and the recorded command buffer.
    private func bindDevice(
        _ device: VulkanDevice, dynamicNodes: [Int], types: [ValueType?], isStatic: [Bool], root: [Int]
    ) throws(RuntimeError) {
        var results: [(value: Int, host: BoundValue)] = []
        for output in plan.outputs where values[output.value] == nil {
            let id = output.value
            guard let type = types[id], let shape = type.shape else { continue }
            if let base = values[root[id]] {
                // A view of a graph input or of a static value: the same bytes under another shape.
                values[id] = BoundValue(dataType: type.dataType, shape: shape, pointer: base.pointer)
                continue
            }
            let value = try allocate(type.dataType, shape)
            values[id] = value
            results.append((id, value))
        }
        do throws(RuntimeError) {
            program = try DeviceProgram(
                plan: plan, device: device, nodes: dynamicNodes, types: types, host: values, isStatic: isStatic, root: root,
                results: results)
        } catch {
            let code: RuntimeError.Code = error.code == .invalidModel ? .invalidInput : error.code
            throw RuntimeError(code: code, message: "the inputs' shapes \(inputShapes) on the vulkan backend: \(error.message)")
        }
        arenaBytes = program?.deviceBytes ?? 0
        unsharedBytes = arenaBytes
    }

    /// The largest single buffer a binding may allocate (8 GiB): a bound on what a request's
    /// shapes can make the worker allocate.
    static let maximumTensorBytes = 8 << 30

    /// The bytes a tensor needs, refusing more than `maximumTensorBytes` (`.invalidInput`).
    static func byteCount(_ dataType: DataType, _ shape: [Int]) throws(RuntimeError) -> Int {
        var bytes = dataType.byteSize ?? 0
        for dim in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
            guard dim >= 0, !overflow, product <= Self.maximumTensorBytes else {
                throw RuntimeError(
                    code: .invalidInput,
                    message: "a \(dataType.rawValue) tensor of shape \(shape) would need more than \(Self.maximumTensorBytes >> 30) GiB")
            }
            bytes = product
        }
        return bytes
    }

    private func allocate(_ dataType: DataType, _ shape: [Int]) throws(RuntimeError) -> BoundValue {
        let buffer = TensorBuffer(byteCount: try Self.byteCount(dataType, shape))
        buffers.append(buffer)
        return BoundValue(dataType: dataType, shape: shape, pointer: buffer.pointer)
    }

    /// The memory of graph input `index` (in `plan.inputs` order), to copy a request into.
    func inputPointer(_ index: Int) -> UnsafeMutableRawPointer {
        values[plan.inputs[index].value]!.pointer
    }

    /// Runs every per-batch node once, in order.
    func run() throws(RuntimeError) {
        if let program { return try program.run() }
        for kernel in kernels { try kernel() }
    }

    /// Graph output `index` after `run()`, as a tensor (copies its bytes out).
    func output(_ index: Int) -> Tensor {
        let value = values[plan.outputs[index].value]!
        let bytes = [UInt8](UnsafeRawBufferPointer(start: value.pointer, count: value.byteCount))
        return Tensor(dataType: value.dataType, shape: value.shape, data: bytes)
    }
}

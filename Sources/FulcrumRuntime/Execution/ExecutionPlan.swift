import FulcrumKernels
import FulcrumSchema
import ONNXFormat

/// A model's graph made ready to run: nodes in topological order, each with its `Operator`,
/// values numbered, initializers decoded into shared constant buffers, and types inferred as
/// far as the model's static shapes allow.
///
/// Built once per model version at load and shared (read-only) by all its instances; binding it
/// to concrete input shapes (`BoundPlan`) sizes the buffers and fixes each kernel.
struct ExecutionPlan: Sendable {
    /// A graph input or output.
    struct GraphTensor: Sendable {
        var name: String
        var value: Int
        /// As declared in the graph (dims: -1 for `dim_param` or unset).
        var declared: ValueType
    }

    /// A planned node.
    struct Node: Sendable {
        var name: String
        var opType: String
        var op: any Operator
        /// Value ids; -1 for an omitted optional input.
        var inputs: [Int]
        /// Value ids; -1 for an omitted optional output.
        var outputs: [Int]

        /// Prefix for errors: `node 'fc1' (Gemm)`.
        var label: String { "node '\(name)' (\(opType))" }
    }

    var valueNames: [String] = []
    /// Types inferred at load (may hold -1 dims).
    var valueTypes: [ValueType] = []
    var constants: [Int: TensorBuffer] = [:]
    var inputs: [GraphTensor] = []
    var outputs: [GraphTensor] = []
    var nodes: [Node] = []
    /// The default domain's opset (0: the model imports none).
    var opset: Int = 0
    /// The `ai.onnx.ml` opset (0: the model imports none).
    var mlOpset: Int = 0
    /// Nodes evaluated once at load because all their inputs were constants.
    var foldedNodeCount = 0
    /// Patterns fused into one node (e.g. `MatMul + Add + Relu`), for logs and tests.
    var fusions: [String] = []
    /// Host kernels: constant folding, bind-time evaluation, and every per-batch node on `.cpu`.
    let backend = CPUBackend()
    /// Where the per-batch nodes run.
    var target: ExecutionTarget = .cpu
    /// On a Vulkan target, the weights per-batch nodes read, uploaded once at load.
    var deviceConstants: DeviceConstants?

    /// Builds the plan from a decoded model. `modelDirectory` resolves external data. On a
    /// Vulkan `target` every per-batch node must have a device kernel (else `.unsupportedOperator`
    /// naming the node), and the weights go up to the device here, once.
    init(model: Onnx_ModelProto, modelDirectory: String, target: ExecutionTarget = .cpu) throws(RuntimeError) {
        self.target = target
        func invalid(_ text: String) -> RuntimeError { RuntimeError(code: .invalidModel, message: text) }
        guard model.irVersion >= 3 else {
            throw invalid("ir_version \(model.irVersion) is not supported (need 3 or later; is this an ONNX file?)")
        }
        // The default domain's opset; a model of `ai.onnx.ml` operators alone (an XGBoost export)
        // may import none, and then may use no default-domain operator.
        if let opsetEntry = model.opsetImport.first(where: { $0.domain.isEmpty || $0.domain == "ai.onnx" }) {
            guard let opset = Int(exactly: opsetEntry.version), OperatorRegistry.supportedOpsets.contains(opset) else {
                throw RuntimeError(
                    code: .unsupportedOperator,
                    message: "opset \(opsetEntry.version) is not supported (supported: \(OperatorRegistry.supportedOpsets.lowerBound)...\(OperatorRegistry.supportedOpsets.upperBound)); re-export the model with a supported opset")
            }
            self.opset = opset
        }
        if let mlEntry = model.opsetImport.first(where: { $0.domain == OperatorRegistry.mlDomain }) {
            guard let opset = Int(exactly: mlEntry.version), OperatorRegistry.supportedMLOpsets.contains(opset) else {
                throw RuntimeError(
                    code: .unsupportedOperator,
                    message: "opset \(mlEntry.version) of domain \(OperatorRegistry.mlDomain) is not supported (supported: \(OperatorRegistry.supportedMLOpsets.lowerBound)...\(OperatorRegistry.supportedMLOpsets.upperBound))")
            }
            mlOpset = opset
        }
        guard model.hasGraph else { throw invalid("the model has no graph") }
        let graph = model.graph

        var ids: [String: Int] = [:]
        func define(_ name: String, _ type: ValueType?) -> Int {
            let id = valueNames.count
            valueNames.append(name)
            valueTypes.append(type ?? ValueType(dataType: .fp32, shape: nil))
            ids[name] = id
            return id
        }

        // Initializers (constants). A graph input with the same name is overridable in ONNX;
        // Fulcrum treats it as the constant and does not expose it as an input.
        for initializer in graph.initializer {
            guard !initializer.name.isEmpty else { throw invalid("an initializer has no name") }
            guard ids[initializer.name] == nil else { throw invalid("initializer '\(initializer.name)' is defined twice") }
            let (type, bytes) = try initializer.decoded(modelDirectory: modelDirectory)
            let buffer = TensorBuffer(bytes: bytes)
            var known = type
            if type.elementCount != nil {
                known.learn(BoundValue(dataType: type.dataType, shape: type.shape ?? [], pointer: buffer.pointer))
            }
            let id = define(initializer.name, known)
            constants[id] = buffer
        }
        for input in graph.input where ids[input.name] == nil {
            guard let type = try Self.declaredType(input, role: "input") else { continue }
            inputs.append(GraphTensor(name: input.name, value: define(input.name, type), declared: type))
        }

        // Node outputs, with a single producer each.
        var producer: [Int: Int] = [:]
        var pending: [(node: Onnx_NodeProto, outputs: [Int])] = []
        for (index, node) in graph.node.enumerated() {
            guard node.output.contains(where: { !$0.isEmpty }) else {
                throw invalid("node '\(node.name)' (\(node.opType)) has no outputs")
            }
            var outs: [Int] = []
            for output in node.output {
                if output.isEmpty {
                    outs.append(-1)
                    continue
                }
                guard ids[output] == nil else {
                    throw invalid("node '\(node.name)' (\(node.opType)) writes '\(output)', which is already defined by another node, an input or an initializer")
                }
                let id = define(output, nil)
                producer[id] = index
                outs.append(id)
            }
            pending.append((node, outs))
        }
        var nodeInputs: [[Int]] = []
        for (node, _) in pending {
            var ins: [Int] = []
            for input in node.input {
                if input.isEmpty {
                    ins.append(-1)
                    continue
                }
                guard let id = ids[input] else {
                    throw invalid("node '\(node.name)' (\(node.opType)) reads '\(input)', which no node, graph input or initializer produces")
                }
                ins.append(id)
            }
            nodeInputs.append(ins)
        }

        // Topological order (Kahn), stable with respect to the file's order.
        var dependents: [[Int]] = Array(repeating: [], count: pending.count)
        var remaining = [Int](repeating: 0, count: pending.count)
        for (index, ins) in nodeInputs.enumerated() {
            for id in Set(ins) where id >= 0 {
                if let p = producer[id] {
                    dependents[p].append(index)
                    remaining[index] += 1
                }
            }
        }
        var ready = (0..<pending.count).filter { remaining[$0] == 0 }.reversed() as [Int]
        var order: [Int] = []
        while let next = ready.popLast() {
            order.append(next)
            for dependent in dependents[next] {
                remaining[dependent] -= 1
                if remaining[dependent] == 0 { ready.insert(dependent, at: 0) }
            }
        }
        guard order.count == pending.count else {
            let stuck = (0..<pending.count).filter { remaining[$0] > 0 }.prefix(5)
                .map { "'\(pending[$0].node.name)' (\(pending[$0].node.opType))" }
            throw invalid("the graph has a cycle through nodes \(stuck.joined(separator: ", "))")
        }

        // Operators, type inference and constant folding, in order.
        for index in order {
            let (node, outs) = pending[index]
            let label = "node '\(node.name)' (\(node.opType))"
            let opset = node.domain == OperatorRegistry.mlDomain ? mlOpset : self.opset
            let op: any Operator
            do throws(RuntimeError) {
                op = try OperatorRegistry.make(node: node, opset: opset, backend: backend)
            } catch {
                throw error.code == .unsupportedOperator ? error : RuntimeError(code: error.code, message: "\(label): \(error.message)")
            }
            let ins = nodeInputs[index]
            let inputTypes = ins.map { $0 >= 0 ? valueTypes[$0] : nil }
            let types: [ValueType]
            do throws(RuntimeError) {
                types = try op.inferTypes(inputTypes)
            } catch {
                throw RuntimeError(code: error.code, message: "\(label), opset \(opset): \(error.message)")
            }
            guard types.count >= outs.filter({ $0 >= 0 }).count else {
                throw invalid("\(label) has \(outs.count) outputs, the operator produces \(types.count)")
            }
            for (position, id) in outs.enumerated() where id >= 0 {
                guard position < types.count else {
                    throw invalid("\(label) has \(outs.count) outputs, the operator produces \(types.count)")
                }
                valueTypes[id] = types[position]
            }
            // Constant folding: every input known (or only shapes read, and known).
            let present = ins.filter { $0 >= 0 }
            let foldable = op.readsOnlyShapes
                ? present.allSatisfy { valueTypes[$0].isConcrete }
                : present.allSatisfy { constants[$0] != nil }
            if foldable, types.prefix(outs.count).allSatisfy(\.isConcrete) {
                let bound = ins.map { id -> BoundValue? in
                    guard id >= 0 else { return nil }
                    let type = valueTypes[id]
                    return BoundValue(
                        dataType: type.dataType, shape: type.shape ?? [],
                        pointer: constants[id]?.pointer ?? StaticEvaluation.placeholder.pointer)
                }
                do throws(RuntimeError) {
                    let results = try StaticEvaluation.evaluate(op, inputs: bound, types: Array(types.prefix(max(outs.count, 1))), backend: backend)
                    for (position, id) in outs.enumerated() where id >= 0 {
                        constants[id] = results[position].buffer
                        valueTypes[id] = results[position].type
                    }
                } catch {
                    throw RuntimeError(code: error.code, message: "\(label), opset \(opset), folding constants: \(error.message)")
                }
                foldedNodeCount += 1
                continue
            }
            nodes.append(Node(name: node.name, opType: node.opType, op: op, inputs: ins, outputs: outs))
        }

        // Graph outputs.
        for output in graph.output {
            guard let id = ids[output.name] else {
                throw invalid("graph output '\(output.name)' is not produced by any node, input or initializer")
            }
            let declared = try Self.declaredType(output, role: "output", required: false) ?? valueTypes[id]
            guard declared.dataType == valueTypes[id].dataType else {
                throw invalid("graph output '\(output.name)' is declared \(declared.dataType.rawValue) but computed as \(valueTypes[id].dataType.rawValue)")
            }
            // Prefer the declared shape where inference could not tell, except a first dimension
            // that varies with the batch: when every input's first dimension is variable and
            // inference leaves the output's open, a fixed size declared there is wrong (onnxmltools
            // declares LightGBM's label output [1]; onnxruntime only warns).
            var type = valueTypes[id]
            let batchedInputs = !inputs.isEmpty && inputs.allSatisfy { ($0.declared.shape?.first ?? 0) < 0 }
            if let declaredShape = declared.shape {
                if let inferred = type.shape, inferred.count == declaredShape.count {
                    type.shape = zip(inferred, declaredShape).enumerated().map { index, dims in
                        dims.0 >= 0 || (index == 0 && batchedInputs) ? dims.0 : dims.1
                    }
                } else if type.shape == nil {
                    type.shape = declaredShape
                }
            }
            outputs.append(GraphTensor(name: output.name, value: id, declared: type))
        }
        guard !outputs.isEmpty else { throw invalid("the graph has no outputs") }

        // The fused attention kernel is the CPU's; on a device the unfused MatMul/Softmax run.
        fuse(attention: target.backendName == "cpu")
        // Drop constants nothing reads any more (folded away or fused).
        var used = Set(outputs.map(\.value))
        for node in nodes { used.formUnion(node.inputs) }
        for id in Array(constants.keys) where !used.contains(id) { constants[id] = nil }
        packWeights()
        if case .vulkan(let device) = target {
            deviceConstants = try DeviceConstants(plan: self, device: device)
        }
    }

    /// Positions of the nodes that run per batch whatever the input shapes: those reading a
    /// graph input's contents directly or through other nodes (the rest — shape subgraphs and
    /// nodes over constants — are evaluated once when a plan is bound).
    func perBatchNodes() -> [Int] {
        var isStatic = [Bool](repeating: false, count: valueNames.count)
        for id in constants.keys { isStatic[id] = true }
        var result: [Int] = []
        for (position, node) in nodes.enumerated() {
            if node.op.readsOnlyShapes || node.inputs.allSatisfy({ $0 < 0 || isStatic[$0] }) {
                for id in node.outputs where id >= 0 { isStatic[id] = true }
            } else {
                result.append(position)
            }
        }
        return result
    }

    /// The type a graph input or output declares (dims: -1 for `dim_param` or unset).
    private static func declaredType(_ info: Onnx_ValueInfoProto, role: String, required: Bool = true) throws(RuntimeError) -> ValueType? {
        guard info.hasType, case .tensorType(let tensor)? = info.type.value else {
            if !required { return nil }
            throw RuntimeError(code: .invalidModel, message: "graph \(role) '\(info.name)' has no tensor type")
        }
        guard let dataType = DataType(onnxElementType: tensor.elemType) else {
            throw RuntimeError(
                code: .invalidModel,
                message: "graph \(role) '\(info.name)' has element type \(DataType.onnxName(tensor.elemType)), which Fulcrum does not support")
        }
        guard tensor.hasShape else { return ValueType(dataType: dataType, shape: nil) }
        let shape = tensor.shape.dim.map { dim -> Int in
            if case .dimValue(let v)? = dim.value, v >= 0, let d = Int(exactly: v) { return d }
            return -1
        }
        return ValueType(dataType: dataType, shape: shape)
    }
}

import FulcrumSchema

extension ModelConfiguration {
    /// Platforms and backends Fulcrum serves.
    static let onnxPlatform = "onnxruntime_onnx"
    static let onnxBackend = "onnxruntime"
    /// Triton's `default-max-batch-size`, used when a model has no config.pbtxt and every input
    /// and output has a variable first dimension.
    static let autoCompleteMaxBatchSize = 4

    /// Checks `platform` / `backend` name an ONNX model (or are empty) and fills both in.
    /// Throws `.invalidConfiguration` naming the file otherwise.
    func withONNXPlatform(file: String) throws(RuntimeError) -> ModelConfiguration {
        if !platform.isEmpty && platform != Self.onnxPlatform {
            throw RuntimeError(
                code: .invalidConfiguration,
                message: "\(file): platform '\(platform)' is not supported; Fulcrum serves ONNX models (platform: \"\(Self.onnxPlatform)\" or backend: \"\(Self.onnxBackend)\")")
        }
        if !backend.isEmpty && backend != Self.onnxBackend {
            throw RuntimeError(
                code: .invalidConfiguration,
                message: "\(file): backend '\(backend)' is not supported; Fulcrum serves ONNX models (backend: \"\(Self.onnxBackend)\")")
        }
        var config = self
        config.platform = Self.onnxPlatform
        config.backend = Self.onnxBackend
        return config
    }

    /// A configuration for a model without config.pbtxt, completed from its graph as Triton
    /// does: batching (max_batch_size 4, dynamic batching on) when every graph input and output
    /// has a variable first dimension, otherwise none.
    static func autoCompleted(name: String, plan: ExecutionPlan) -> ModelConfiguration {
        var config = ModelConfiguration(name: name, platform: onnxPlatform, backend: onnxBackend)
        let tensors = plan.inputs.map(\.declared) + plan.outputs.map(\.declared)
        let batchable = tensors.allSatisfy { ($0.shape?.first ?? 0) < 0 && !($0.shape?.isEmpty ?? true) }
        if batchable {
            config.maxBatchSize = autoCompleteMaxBatchSize
            config.dynamicBatching = DynamicBatching()
        }
        return config
    }

    /// Fills omitted inputs/outputs from the graph and checks the given ones against it (names,
    /// data types, dims, batch dimension). Throws `.invalidConfiguration` naming the tensor.
    func completed(with plan: ExecutionPlan, file: String) throws(RuntimeError) -> ModelConfiguration {
        var config = self
        let batched = maxBatchSize > 0
        func fail(_ text: String) -> RuntimeError {
            RuntimeError(code: .invalidConfiguration, message: "\(file): \(text)")
        }
        func fromGraph(_ tensor: ExecutionPlan.GraphTensor, role: String) throws(RuntimeError) -> TensorConfiguration {
            guard var shape = tensor.declared.shape else {
                throw fail("the model's \(role) '\(tensor.name)' has no shape; list it in config.pbtxt with its dims")
            }
            if batched {
                guard let first = shape.first, first < 0 else {
                    throw fail("max_batch_size is \(maxBatchSize), but the model's \(role) '\(tensor.name)' has shape \(shape) without a variable first (batch) dimension")
                }
                shape.removeFirst()
            }
            return TensorConfiguration(name: tensor.name, dataType: tensor.declared.dataType, dims: shape)
        }
        func check(_ configured: TensorConfiguration, against tensor: ExecutionPlan.GraphTensor, role: String) throws(RuntimeError) {
            let label = "\(role) '\(configured.name)'"
            guard configured.dataType == tensor.declared.dataType else {
                throw fail("\(label) has data_type \(configured.dataType.configName) in the configuration, but the model's is \(tensor.declared.dataType.configName)")
            }
            guard var shape = tensor.declared.shape else { return }  // the model does not say
            if batched {
                guard let first = shape.first, first < 0 else {
                    throw fail("max_batch_size is \(maxBatchSize), but the model's \(role) '\(configured.name)' has shape \(shape) without a variable first (batch) dimension; set max_batch_size: 0 and give the full shape in dims")
                }
                shape.removeFirst()
            }
            let dims = configured.reshape ?? configured.dims
            let field = configured.reshape == nil ? "dims" : "reshape"
            let batchNote = batched ? " (without the batch dimension, since max_batch_size > 0)" : ""
            guard dims.count == shape.count else {
                throw fail("\(label) has \(field) \(dims) in the configuration, but the model's shape is \(shape)\(batchNote)")
            }
            for (index, (c, m)) in zip(dims, shape).enumerated() where c >= 0 && m >= 0 && c != m {
                throw fail("\(label) has \(field) \(dims) in the configuration, but the model's shape is \(shape)\(batchNote): \(field)[\(index)] is \(c), the model's is \(m)")
            }
        }

        if inputs.isEmpty {
            var completed: [TensorConfiguration] = []
            for input in plan.inputs { completed.append(try fromGraph(input, role: "input")) }
            config.inputs = completed
        } else {
            let names = plan.inputs.map { "'\($0.name)'" }.joined(separator: ", ")
            for input in inputs {
                guard let tensor = plan.inputs.first(where: { $0.name == input.name }) else {
                    throw fail("input '\(input.name)' is not an input of the model; its inputs are \(names)")
                }
                try check(input, against: tensor, role: "input")
            }
            for tensor in plan.inputs where !inputs.contains(where: { $0.name == tensor.name }) {
                throw fail("the model's input '\(tensor.name)' is missing from the configuration (configured: \(inputs.map { "'\($0.name)'" }.joined(separator: ", ")))")
            }
        }
        if outputs.isEmpty {
            var completed: [TensorConfiguration] = []
            for output in plan.outputs { completed.append(try fromGraph(output, role: "output")) }
            config.outputs = completed
        } else {
            let names = plan.outputs.map { "'\($0.name)'" }.joined(separator: ", ")
            for output in outputs {
                guard let tensor = plan.outputs.first(where: { $0.name == output.name }) else {
                    throw fail("output '\(output.name)' is not an output of the model; its outputs are \(names)")
                }
                try check(output, against: tensor, role: "output")
            }
        }
        return config
    }
}

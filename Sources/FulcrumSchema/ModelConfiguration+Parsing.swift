extension ModelConfiguration {
    /// Triton `ModelConfig` fields Fulcrum recognises but does not implement; naming them gives a
    /// clearer error than "unknown field".
    private static let unsupportedFields: Set<String> = [
        "sequence_batching", "optimization", "model_warmup",
        "model_operations", "model_transaction_policy", "model_repository_agents", "cc_model_filenames",
        "metric_tags", "batch_input", "batch_output", "runtime",
    ]

    /// Parses config.pbtxt (protobuf text format). Errors name the file, line and field, e.g.
    /// "models/simple/config.pbtxt:7: unknown field 'max_batch' in ModelConfig" or
    /// "...:12: field 'data_type': 'TYPE_FLOAT' is not a data type (TYPE_FP32, TYPE_INT32, ...)".
    ///
    /// Only syntax and field types are checked here; whether the configuration fits the model
    /// file is checked when the model loads. Throws `.invalidConfiguration`.
    public static func parse(text: String, file: String) throws(RuntimeError) -> ModelConfiguration {
        var parser = try TextFormatParser(text: text, file: file)
        let root = try parser.parse()
        var config = ModelConfiguration()
        var parameterLines: [String: Int] = [:]
        let reader = TextMessageReader(
            root, typeName: "ModelConfig", file: file,
            repeated: ["input", "output", "instance_group", "parameters"])
        try reader.forEach { field throws(RuntimeError) in
            switch field.name {
            case "name": config.name = try reader.string(field)
            case "platform": config.platform = try reader.string(field)
            case "backend": config.backend = try reader.string(field)
            case "max_batch_size":
                let value = try reader.integer(field, as: Int32.self)
                guard value >= 0 else {
                    throw reader.error(field, "field 'max_batch_size': must be 0 (no batching) or positive, got \(value)")
                }
                config.maxBatchSize = Int(value)
            case "input": config.inputs.append(try parseTensor(reader.message(field), isInput: true, file: file))
            case "output": config.outputs.append(try parseTensor(reader.message(field), isInput: false, file: file))
            case "version_policy": config.versionPolicy = try parseVersionPolicy(reader.message(field), file: file)
            case "instance_group": config.instanceGroups.append(try parseInstanceGroup(reader.message(field), file: file))
            case "default_model_filename": config.defaultModelFilename = try reader.string(field)
            case "dynamic_batching": config.dynamicBatching = try parseDynamicBatching(reader.message(field), file: file)
            case "parameters":
                let (key, value) = try parseParameter(reader.message(field), file: file, line: field.line)
                config.parameters[key] = value
                parameterLines[key] = field.line
            case "ensemble_scheduling": config.ensembleSteps = try parseEnsemble(reader.message(field), file: file)
            case "response_cache":
                let sub = TextMessageReader(try reader.message(field), typeName: "ModelResponseCache", file: file)
                try sub.forEach { f throws(RuntimeError) in
                    guard f.name == "enable" else { throw sub.unknown(f) }
                    config.responseCacheEnabled = try sub.bool(f)
                }
            default:
                throw reader.unknown(field, unsupported: unsupportedFields)
            }
        }
        try checkPipeline(config, file: file)
        config.fulcrum = try FulcrumSettings(parameters: config.parameters) { key, message in
            RuntimeError(code: .invalidConfiguration, message: "\(file):\(parameterLines[key] ?? 0): \(message)")
        }
        if let conflict = config.fulcrum.conflict(maxBatchSize: config.maxBatchSize, dynamicBatching: config.dynamicBatching != nil) {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file): \(conflict)")
        }
        return config
    }

    private static let dataTypeNames: [(String, DataType?)] = {
        var names: [(String, DataType?)] = [("TYPE_INVALID", nil)]
        let order: [DataType] = [.bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64, .fp16, .fp32, .fp64, .bytes, .bf16]
        names += order.map { ($0.configName, $0) }
        return names
    }()

    private static func parseDataType(_ field: TextMessage.Field, _ reader: TextMessageReader) throws(RuntimeError) -> DataType {
        guard case .scalar(let s) = field.value else {
            throw reader.error(field, "field 'data_type': expected a data type such as TYPE_FP32")
        }
        if let type = DataType(configName: s.text) { return type }
        if s.kind == .number, let n = Int(s.text), dataTypeNames.indices.contains(n), let type = dataTypeNames[n].1 {
            return type
        }
        throw reader.error(field, "field 'data_type': '\(s.text)' is not a data type (TYPE_FP32, TYPE_INT32, TYPE_INT64, TYPE_BOOL, TYPE_STRING, ...)")
    }

    private static func parseTensor(_ message: TextMessage, isInput: Bool, file: String) throws(RuntimeError) -> TensorConfiguration {
        let typeName = isInput ? "ModelInput" : "ModelOutput"
        let reader = TextMessageReader(message, typeName: typeName, file: file, repeated: ["dims"])
        var name: String?
        var dataType: DataType?
        var tensor = TensorConfiguration(name: "", dataType: .fp32, dims: [])
        var hasDims = false
        try reader.forEach { field throws(RuntimeError) in
            switch (field.name, isInput) {
            case ("name", _): name = try reader.string(field)
            case ("data_type", _): dataType = try parseDataType(field, reader)
            case ("dims", _):
                hasDims = true
                let dim = try reader.integer(field, as: Int64.self)
                guard dim >= -1 else {
                    throw reader.error(field, "field 'dims': \(dim) is not a dimension (use -1 for a variable dimension)")
                }
                tensor.dims.append(Int(dim))
            case ("reshape", _):
                let sub = TextMessageReader(try reader.message(field), typeName: "ModelTensorReshape", file: file, repeated: ["shape"])
                var shape: [Int] = []
                try sub.forEach { f throws(RuntimeError) in
                    guard f.name == "shape" else { throw sub.unknown(f) }
                    let dim = try sub.integer(f, as: Int64.self)
                    guard dim >= -1 else { throw sub.error(f, "field 'shape': \(dim) is not a dimension") }
                    shape.append(Int(dim))
                }
                tensor.reshape = shape
            case ("optional", true): tensor.optional = try reader.bool(field)
            case ("format", true):
                tensor.format = try reader.enumeration(field, [("FORMAT_NONE", "FORMAT_NONE"), ("FORMAT_NHWC", "FORMAT_NHWC"), ("FORMAT_NCHW", "FORMAT_NCHW")])
            case ("label_filename", false): tensor.labelFilename = try reader.string(field)
            default:
                throw reader.unknown(field, unsupported: ["is_shape_tensor", "allow_ragged_batch", "is_non_linear_format_io"])
            }
        }
        let line = message.line
        guard let name, !name.isEmpty else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): \(typeName) has no 'name'")
        }
        guard let dataType else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): \(typeName) '\(name)' has no 'data_type'")
        }
        guard hasDims else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): \(typeName) '\(name)' has no 'dims' (write dims: [ ... ], -1 for variable dimensions)")
        }
        tensor.name = name
        tensor.dataType = dataType
        return tensor
    }

    private static func parseVersionPolicy(_ message: TextMessage, file: String) throws(RuntimeError) -> VersionPolicy {
        let reader = TextMessageReader(message, typeName: "ModelVersionPolicy", file: file)
        var policy: VersionPolicy = .latest(1)
        var chosen: String?
        try reader.forEach { field throws(RuntimeError) in
            if let chosen, chosen != field.name {
                throw reader.error(field, "field '\(field.name)' in ModelVersionPolicy: only one of latest, all, specific may be given (already have '\(chosen)')")
            }
            chosen = field.name
            switch field.name {
            case "latest":
                let sub = TextMessageReader(try reader.message(field), typeName: "ModelVersionPolicy.Latest", file: file)
                var count = 1
                try sub.forEach { f throws(RuntimeError) in
                    guard f.name == "num_versions" else { throw sub.unknown(f) }
                    count = Int(try sub.integer(f, as: UInt32.self))
                    guard count > 0 else { throw sub.error(f, "field 'num_versions': must be at least 1") }
                }
                policy = .latest(count)
            case "all":
                let sub = TextMessageReader(try reader.message(field), typeName: "ModelVersionPolicy.All", file: file)
                try sub.forEach { f throws(RuntimeError) in throw sub.unknown(f) }
                policy = .all
            case "specific":
                let sub = TextMessageReader(try reader.message(field), typeName: "ModelVersionPolicy.Specific", file: file, repeated: ["versions"])
                var versions: [Int64] = []
                try sub.forEach { f throws(RuntimeError) in
                    guard f.name == "versions" else { throw sub.unknown(f) }
                    versions.append(try sub.integer(f, as: Int64.self))
                }
                policy = .specific(versions)
            default:
                throw reader.unknown(field)
            }
        }
        return policy
    }

    private static func parseInstanceGroup(_ message: TextMessage, file: String) throws(RuntimeError) -> InstanceGroup {
        let reader = TextMessageReader(message, typeName: "ModelInstanceGroup", file: file, repeated: ["gpus"])
        var group = InstanceGroup()
        try reader.forEach { field throws(RuntimeError) in
            switch field.name {
            case "name": group.name = try reader.string(field)
            case "count":
                let count = try reader.integer(field, as: Int32.self)
                guard count >= 1 else { throw reader.error(field, "field 'count': must be at least 1, got \(count)") }
                group.count = Int(count)
            case "kind":
                group.kind = try reader.enumeration(field, [("KIND_AUTO", .auto), ("KIND_GPU", .gpu), ("KIND_CPU", .cpu), ("KIND_MODEL", .model)])
            case "gpus": group.gpus.append(Int(try reader.integer(field, as: Int32.self)))
            default:
                throw reader.unknown(field, unsupported: ["rate_limiter", "profile", "passive", "host_policy", "secondary_devices"])
            }
        }
        return group
    }

    private static func parseQueuePolicy(_ message: TextMessage, file: String) throws(RuntimeError) -> QueuePolicy {
        let reader = TextMessageReader(message, typeName: "ModelQueuePolicy", file: file)
        var policy = QueuePolicy()
        try reader.forEach { field throws(RuntimeError) in
            switch field.name {
            case "timeout_action": policy.timeoutAction = try reader.enumeration(field, [("REJECT", .reject), ("DELAY", .delay)])
            case "default_timeout_microseconds": policy.defaultTimeoutMicroseconds = try reader.integer(field)
            case "allow_timeout_override": policy.allowTimeoutOverride = try reader.bool(field)
            case "max_queue_size": policy.maxQueueSize = try reader.integer(field)
            default: throw reader.unknown(field)
            }
        }
        return policy
    }

    private static func parseDynamicBatching(_ message: TextMessage, file: String) throws(RuntimeError) -> DynamicBatching {
        let reader = TextMessageReader(
            message, typeName: "ModelDynamicBatching", file: file,
            repeated: ["preferred_batch_size", "priority_queue_policy"])
        var batching = DynamicBatching()
        try reader.forEach { field throws(RuntimeError) in
            switch field.name {
            case "preferred_batch_size":
                let size = try reader.integer(field, as: Int32.self)
                guard size >= 1 else { throw reader.error(field, "field 'preferred_batch_size': must be at least 1, got \(size)") }
                batching.preferredBatchSizes.append(Int(size))
            case "max_queue_delay_microseconds": batching.maxQueueDelayMicroseconds = try reader.integer(field)
            case "preserve_ordering": batching.preserveOrdering = try reader.bool(field)
            case "priority_levels": batching.priorityLevels = try reader.integer(field)
            case "default_priority_level": batching.defaultPriorityLevel = try reader.integer(field)
            case "default_queue_policy": batching.defaultQueuePolicy = try parseQueuePolicy(reader.message(field), file: file)
            case "priority_queue_policy":
                let entry = TextMessageReader(try reader.message(field), typeName: "ModelDynamicBatching.PriorityQueuePolicyEntry", file: file)
                var key: UInt64?
                var value = QueuePolicy()
                try entry.forEach { f throws(RuntimeError) in
                    switch f.name {
                    case "key": key = try entry.integer(f)
                    case "value": value = try parseQueuePolicy(entry.message(f), file: file)
                    default: throw entry.unknown(f)
                    }
                }
                guard let key else { throw reader.error(field, "field 'priority_queue_policy': entry has no 'key' (the priority level)") }
                batching.priorityQueuePolicy[key] = value
            default:
                throw reader.unknown(field, unsupported: ["default_queue_policy_override", "priority_queue_policy_override"])
            }
        }
        return batching
    }

    private static func parseParameter(_ message: TextMessage, file: String, line: Int) throws(RuntimeError) -> (String, String) {
        let reader = TextMessageReader(message, typeName: "ModelConfig.ParametersEntry", file: file)
        var key: String?
        var value = ""
        try reader.forEach { field throws(RuntimeError) in
            switch field.name {
            case "key": key = try reader.string(field)
            case "value":
                let sub = TextMessageReader(try reader.message(field), typeName: "ModelParameter", file: file)
                try sub.forEach { f throws(RuntimeError) in
                    guard f.name == "string_value" else { throw sub.unknown(f) }
                    value = try sub.string(f)
                }
            default: throw reader.unknown(field)
            }
        }
        guard let key else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): field 'parameters': entry has no 'key'")
        }
        return (key, value)
    }

    /// `ensemble_scheduling { step [ { model_name, model_version, input_map, output_map } ] }`.
    private static func parseEnsemble(_ message: TextMessage, file: String) throws(RuntimeError) -> [EnsembleStep] {
        let reader = TextMessageReader(message, typeName: "ModelEnsembling", file: file, repeated: ["step"])
        var steps: [EnsembleStep] = []
        try reader.forEach { field throws(RuntimeError) in
            guard field.name == "step" else { throw reader.unknown(field) }
            steps.append(try parseStep(reader.message(field), file: file, line: field.line))
        }
        guard !steps.isEmpty else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(message.line): ensemble_scheduling has no step")
        }
        return steps
    }

    private static func parseStep(_ message: TextMessage, file: String, line: Int) throws(RuntimeError) -> EnsembleStep {
        let reader = TextMessageReader(message, typeName: "ModelEnsembling.Step", file: file, repeated: ["input_map", "output_map"])
        // model_version left out is 0, as protobuf decodes it; 0 and -1 both mean the newest.
        var step = EnsembleStep(modelName: "", modelVersion: 0, inputMap: [:], outputMap: [:], line: line)
        try reader.forEach { field throws(RuntimeError) in
            switch field.name {
            case "model_name": step.modelName = try reader.string(field)
            case "model_version":
                step.modelVersion = try reader.integer(field, as: Int64.self)
                guard step.modelVersion >= -1 else {
                    throw reader.error(field, "field 'model_version': \(step.modelVersion) is not a version (-1 = the newest)")
                }
            case "input_map", "output_map":
                let entry = TextMessageReader(try reader.message(field), typeName: "ModelEnsembling.Step.\(field.name)", file: file)
                var key = ""
                var value = ""
                try entry.forEach { f throws(RuntimeError) in
                    switch f.name {
                    case "key": key = try entry.string(f)
                    case "value": value = try entry.string(f)
                    default: throw entry.unknown(f)
                    }
                }
                guard !key.isEmpty, !value.isEmpty else {
                    throw reader.error(field, "field '\(field.name)': an entry needs a non-empty 'key' (the step model's tensor) and 'value' (the pipeline's tensor)")
                }
                if field.name == "input_map" {
                    guard step.inputMap.updateValue(value, forKey: key) == nil else {
                        throw reader.error(field, "field 'input_map': input '\(key)' is mapped twice")
                    }
                } else {
                    guard step.outputMap.updateValue(value, forKey: key) == nil else {
                        throw reader.error(field, "field 'output_map': output '\(key)' is mapped twice")
                    }
                }
            case "model_namespace":
                throw reader.error(field, "field 'model_namespace' in ModelEnsembling.Step is not supported by Fulcrum (one namespace per repository)")
            default: throw reader.unknown(field)
            }
        }
        guard !step.modelName.isEmpty else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): an ensemble step has no 'model_name'")
        }
        guard !step.outputMap.isEmpty else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): step '\(step.modelName)' has no output_map: a step whose outputs go nowhere does nothing")
        }
        return step
    }

    /// A pipeline's own fields fit together: the platform and `ensemble_scheduling` go together,
    /// it declares its inputs and outputs, and nothing about execution on a worker applies to it.
    private static func checkPipeline(_ config: ModelConfiguration, file: String) throws(RuntimeError) {
        func fail(_ text: String) -> RuntimeError {
            RuntimeError(code: .invalidConfiguration, message: "\(file): \(text)")
        }
        switch (config.platform == ensemblePlatform, config.ensembleSteps != nil) {
        case (false, false): return
        case (true, false): throw fail("platform \"ensemble\" needs ensemble_scheduling { step [ ... ] }")
        case (false, true): throw fail("ensemble_scheduling is for platform \"ensemble\", not \"\(config.platform)\"")
        case (true, true): break
        }
        if config.dynamicBatching != nil {
            throw fail("a pipeline cannot have dynamic_batching (its steps' models batch on the workers)")
        }
        if !config.instanceGroups.isEmpty {
            throw fail("a pipeline cannot have instance_group (it runs in the frontends)")
        }
        guard !config.inputs.isEmpty, !config.outputs.isEmpty else {
            throw fail("a pipeline must list its inputs and outputs")
        }
    }
}

import FulcrumProtocol
import FulcrumSchema
import GRPCCore

/// The one mapping between the runtime's `ModelConfiguration` and the wire's `ModelConfig`, used
/// by workers to answer ModelConfig and by frontends to read what workers sent.
extension ModelConfiguration {
    /// The configuration as the ModelConfig RPC carries it.
    public var wire: Inference_ModelConfig {
        var config = Inference_ModelConfig()
        config.name = name
        config.platform = platform
        config.backend = backend
        config.maxBatchSize = Int32(maxBatchSize)
        config.defaultModelFilename = defaultModelFilename
        switch versionPolicy {
        case .latest(let n):
            var latest = Inference_ModelVersionPolicy.Latest()
            latest.numVersions = UInt32(n)
            config.versionPolicy.latest = latest
        case .all:
            config.versionPolicy.all = .init()
        case .specific(let versions):
            var specific = Inference_ModelVersionPolicy.Specific()
            specific.versions = versions
            config.versionPolicy.specific = specific
        }
        config.input = inputs.map { tensor in
            var input = Inference_ModelInput()
            input.name = tensor.name
            input.dataType = tensor.dataType.wire
            input.dims = tensor.dims.map(Int64.init)
            input.optional = tensor.optional
            if let reshape = tensor.reshape { input.reshape.shape = reshape.map(Int64.init) }
            switch tensor.format {
            case "FORMAT_NHWC": input.format = .nhwc
            case "FORMAT_NCHW": input.format = .nchw
            default: input.format = .none
            }
            return input
        }
        config.output = outputs.map { tensor in
            var output = Inference_ModelOutput()
            output.name = tensor.name
            output.dataType = tensor.dataType.wire
            output.dims = tensor.dims.map(Int64.init)
            output.labelFilename = tensor.labelFilename ?? ""
            if let reshape = tensor.reshape { output.reshape.shape = reshape.map(Int64.init) }
            return output
        }
        config.instanceGroup = instanceGroups.map { group in
            var wire = Inference_ModelInstanceGroup()
            wire.name = group.name
            wire.count = Int32(group.count)
            wire.gpus = group.gpus.map(Int32.init)
            switch group.kind {
            case .auto: wire.kind = .auto
            case .gpu: wire.kind = .gpu
            case .cpu: wire.kind = .cpu
            case .model: wire.kind = .model
            }
            return wire
        }
        if let batching = dynamicBatching {
            var wire = Inference_ModelDynamicBatching()
            wire.preferredBatchSize = batching.preferredBatchSizes.map(Int32.init)
            wire.maxQueueDelayMicroseconds = batching.maxQueueDelayMicroseconds
            wire.preserveOrdering = batching.preserveOrdering
            wire.priorityLevels = batching.priorityLevels
            wire.defaultPriorityLevel = batching.defaultPriorityLevel
            if let policy = batching.defaultQueuePolicy { wire.defaultQueuePolicy = policy.wire }
            wire.priorityQueuePolicy = batching.priorityQueuePolicy.mapValues(\.wire)
            config.dynamicBatching = wire
        }
        config.parameters = parameters.mapValues { value in
            var parameter = Inference_ModelParameter()
            parameter.stringValue = value
            return parameter
        }
        if responseCacheEnabled { config.responseCache.enable = true }
        if let steps = ensembleSteps {
            var ensembling = Inference_ModelEnsembling()
            ensembling.step = steps.map { step in
                var wire = Inference_ModelEnsembling.Step()
                wire.modelName = step.modelName
                wire.modelVersion = step.modelVersion
                wire.inputMap = step.inputMap
                wire.outputMap = step.outputMap
                return wire
            }
            config.ensembleScheduling = ensembling
        }
        return config
    }

    /// Reads a configuration received over the wire (a frontend reading a worker's answer).
    public init(wire config: Inference_ModelConfig) throws(RPCError) {
        func tensor(_ name: String, _ type: Inference_DataType, _ dims: [Int64]) throws(RPCError) -> TensorConfiguration {
            guard let dataType = DataType(wire: type) else {
                throw RPCError(code: .internalError, message: "model '\(config.name)': tensor '\(name)' has no usable datatype")
            }
            return TensorConfiguration(
                name: name, dataType: dataType, dims: dims.map { Int($0) }, reshape: nil,
                optional: false, labelFilename: nil, format: nil
            )
        }
        var inputs: [TensorConfiguration] = []
        for input in config.input {
            var t = try tensor(input.name, input.dataType, input.dims)
            t.optional = input.optional
            if input.hasReshape { t.reshape = input.reshape.shape.map { Int($0) } }
            inputs.append(t)
        }
        var outputs: [TensorConfiguration] = []
        for output in config.output {
            var t = try tensor(output.name, output.dataType, output.dims)
            if !output.labelFilename.isEmpty { t.labelFilename = output.labelFilename }
            outputs.append(t)
        }
        let versionPolicy: VersionPolicy
        switch config.versionPolicy.policyChoice {
        case .latest(let latest): versionPolicy = .latest(Int(max(latest.numVersions, 1)))
        case .all: versionPolicy = .all
        case .specific(let specific): versionPolicy = .specific(specific.versions)
        case nil: versionPolicy = .latest(1)
        }
        var batching: DynamicBatching? = nil
        if case .dynamicBatching(let wire) = config.schedulingChoice {
            batching = DynamicBatching(
                preferredBatchSizes: wire.preferredBatchSize.map(Int.init),
                maxQueueDelayMicroseconds: wire.maxQueueDelayMicroseconds,
                preserveOrdering: wire.preserveOrdering,
                priorityLevels: wire.priorityLevels,
                defaultPriorityLevel: wire.defaultPriorityLevel,
                defaultQueuePolicy: wire.hasDefaultQueuePolicy ? QueuePolicy(wire: wire.defaultQueuePolicy) : nil,
                priorityQueuePolicy: wire.priorityQueuePolicy.mapValues(QueuePolicy.init(wire:))
            )
        }
        var steps: [EnsembleStep]? = nil
        if case .ensembleScheduling(let wire) = config.schedulingChoice {
            steps = wire.step.map {
                EnsembleStep(modelName: $0.modelName, modelVersion: $0.modelVersion, inputMap: $0.inputMap, outputMap: $0.outputMap)
            }
        }
        self.init(
            name: config.name,
            platform: config.platform,
            backend: config.backend,
            maxBatchSize: Int(config.maxBatchSize),
            inputs: inputs,
            outputs: outputs,
            versionPolicy: versionPolicy,
            instanceGroups: config.instanceGroup.map { group in
                let kind: InstanceGroup.Kind =
                    switch group.kind {
                    case .gpu: .gpu
                    case .cpu: .cpu
                    case .model: .model
                    default: .auto
                    }
                return InstanceGroup(name: group.name, count: Int(group.count), kind: kind, gpus: group.gpus.map(Int.init))
            },
            defaultModelFilename: config.defaultModelFilename,
            dynamicBatching: batching,
            parameters: config.parameters.mapValues(\.stringValue),
            responseCacheEnabled: config.hasResponseCache && config.responseCache.enable,
            ensembleSteps: steps
        )
    }
}

extension ModelConfiguration.QueuePolicy {
    var wire: Inference_ModelQueuePolicy {
        var policy = Inference_ModelQueuePolicy()
        policy.timeoutAction = timeoutAction == .delay ? .delay : .reject
        policy.defaultTimeoutMicroseconds = defaultTimeoutMicroseconds
        policy.allowTimeoutOverride = allowTimeoutOverride
        policy.maxQueueSize = maxQueueSize
        return policy
    }

    init(wire: Inference_ModelQueuePolicy) {
        self.init(
            timeoutAction: wire.timeoutAction == .delay ? .delay : .reject,
            defaultTimeoutMicroseconds: wire.defaultTimeoutMicroseconds,
            allowTimeoutOverride: wire.allowTimeoutOverride,
            maxQueueSize: wire.maxQueueSize
        )
    }
}

extension DataType {
    /// The ModelConfig enum value (TYPE_FP32, …; BYTES is TYPE_STRING).
    public var wire: Inference_DataType {
        switch self {
        case .bool: .typeBool
        case .uint8: .typeUint8
        case .uint16: .typeUint16
        case .uint32: .typeUint32
        case .uint64: .typeUint64
        case .int8: .typeInt8
        case .int16: .typeInt16
        case .int32: .typeInt32
        case .int64: .typeInt64
        case .fp16: .typeFp16
        case .fp32: .typeFp32
        case .fp64: .typeFp64
        case .bytes: .typeString
        case .bf16: .typeBf16
        }
    }

    /// The runtime type of a ModelConfig enum value; nil for TYPE_INVALID and unknown values.
    public init?(wire: Inference_DataType) {
        switch wire {
        case .typeBool: self = .bool
        case .typeUint8: self = .uint8
        case .typeUint16: self = .uint16
        case .typeUint32: self = .uint32
        case .typeUint64: self = .uint64
        case .typeInt8: self = .int8
        case .typeInt16: self = .int16
        case .typeInt32: self = .int32
        case .typeInt64: self = .int64
        case .typeFp16: self = .fp16
        case .typeFp32: self = .fp32
        case .typeFp64: self = .fp64
        case .typeString: self = .bytes
        case .typeBf16: self = .bf16
        default: return nil
        }
    }
}

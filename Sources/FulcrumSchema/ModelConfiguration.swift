/// A model's configuration: Triton's `ModelConfig` (config.pbtxt), the subset Fulcrum serves.
///
/// Read once when a model loads (`parse(text:file:)`), completed from the model file by
/// `ModelRepository` (platform, inputs and outputs when omitted), then immutable. Field
/// meanings follow Triton's model_config.proto (see proto/inference/model_config.proto).
public struct ModelConfiguration: Sendable, Equatable {
    /// One input (`ModelInput`) or output (`ModelOutput`) tensor.
    public struct TensorConfiguration: Sendable, Equatable {
        /// The tensor's name in the model and in requests.
        public var name: String
        /// The element type.
        public var dataType: DataType
        /// The shape without the batch dimension (when `maxBatchSize > 0`); -1 = variable.
        public var dims: [Int]
        /// `reshape { shape: [...] }`: the shape the model sees (inputs) or produces (outputs),
        /// again without the batch dimension; `nil` when absent.
        public var reshape: [Int]?
        /// Inputs only: the request may omit this input.
        public var optional: Bool
        /// Outputs only: a label file in the model folder.
        public var labelFilename: String?
        /// Inputs only: `FORMAT_NONE`, `FORMAT_NHWC` or `FORMAT_NCHW`; `nil` when absent.
        public var format: String?

        /// Creates a tensor configuration.
        public init(
            name: String, dataType: DataType, dims: [Int], reshape: [Int]? = nil,
            optional: Bool = false, labelFilename: String? = nil, format: String? = nil
        ) {
            self.name = name
            self.dataType = dataType
            self.dims = dims
            self.reshape = reshape
            self.optional = optional
            self.labelFilename = labelFilename
            self.format = format
        }
    }

    /// Which versions in the model folder to serve (`version_policy`).
    public enum VersionPolicy: Sendable, Equatable {
        /// The `n` numerically highest versions (`latest { num_versions: n }`); the default is 1.
        case latest(Int)
        /// Every version folder (`all {}`).
        case all
        /// Exactly these versions (`specific { versions: [...] }`).
        case specific([Int64])
    }

    /// One `instance_group`: how many execution instances to create and where.
    public struct InstanceGroup: Sendable, Equatable {
        /// Where instances run.
        public enum Kind: String, Sendable {
            /// Let the server choose (GPU if present, else CPU).
            case auto = "KIND_AUTO"
            /// On accelerators.
            case gpu = "KIND_GPU"
            /// On the CPU.
            case cpu = "KIND_CPU"
            /// Where the model itself decides.
            case model = "KIND_MODEL"
        }

        /// The group's name (may be empty).
        public var name: String
        /// Instances per device (Triton's default is 1).
        public var count: Int
        /// Where instances run.
        public var kind: Kind
        /// Device ids for `.gpu`.
        public var gpus: [Int]

        /// Creates an instance group.
        public init(name: String = "", count: Int = 1, kind: Kind = .auto, gpus: [Int] = []) {
            self.name = name
            self.count = count
            self.kind = kind
            self.gpus = gpus
        }
    }

    /// `ModelQueuePolicy`: what a queue does with requests that wait too long, and its bound.
    public struct QueuePolicy: Sendable, Equatable {
        /// What happens to a request whose timeout expires while queued.
        public enum TimeoutAction: String, Sendable {
            /// Fail it.
            case reject = "REJECT"
            /// Keep it, behind requests that have not timed out.
            case delay = "DELAY"
        }

        /// What happens on timeout.
        public var timeoutAction: TimeoutAction
        /// Queue timeout when the request sets none; 0 = none.
        public var defaultTimeoutMicroseconds: UInt64
        /// Whether a request may set its own timeout.
        public var allowTimeoutOverride: Bool
        /// Maximum queued requests; 0 = unbounded (Fulcrum still applies its own bound).
        public var maxQueueSize: UInt32

        /// Creates a queue policy (defaults as in Triton).
        public init(
            timeoutAction: TimeoutAction = .reject, defaultTimeoutMicroseconds: UInt64 = 0,
            allowTimeoutOverride: Bool = false, maxQueueSize: UInt32 = 0
        ) {
            self.timeoutAction = timeoutAction
            self.defaultTimeoutMicroseconds = defaultTimeoutMicroseconds
            self.allowTimeoutOverride = allowTimeoutOverride
            self.maxQueueSize = maxQueueSize
        }
    }

    /// `dynamic_batching`: how the batcher forms batches.
    public struct DynamicBatching: Sendable, Equatable {
        /// Batch sizes to prefer when forming a batch.
        public var preferredBatchSizes: [Int]
        /// The longest a request waits for a batch to fill.
        public var maxQueueDelayMicroseconds: UInt64
        /// Return responses in arrival order.
        public var preserveOrdering: Bool
        /// Number of priority levels (0 = priorities off).
        public var priorityLevels: UInt64
        /// Priority of requests that set none.
        public var defaultPriorityLevel: UInt64
        /// Queue policy for every level without its own.
        public var defaultQueuePolicy: QueuePolicy?
        /// Queue policy per priority level.
        public var priorityQueuePolicy: [UInt64: QueuePolicy]

        /// Creates a dynamic batching configuration (defaults as in Triton).
        public init(
            preferredBatchSizes: [Int] = [], maxQueueDelayMicroseconds: UInt64 = 0,
            preserveOrdering: Bool = false, priorityLevels: UInt64 = 0,
            defaultPriorityLevel: UInt64 = 0, defaultQueuePolicy: QueuePolicy? = nil,
            priorityQueuePolicy: [UInt64: QueuePolicy] = [:]
        ) {
            self.preferredBatchSizes = preferredBatchSizes
            self.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
            self.preserveOrdering = preserveOrdering
            self.priorityLevels = priorityLevels
            self.defaultPriorityLevel = defaultPriorityLevel
            self.defaultQueuePolicy = defaultQueuePolicy
            self.priorityQueuePolicy = priorityQueuePolicy
        }
    }

    /// One step of a pipeline (`ensemble_scheduling { step [...] }`): a model (or another
    /// pipeline, or a processor) called with some of the pipeline's tensors, producing others.
    public struct EnsembleStep: Sendable, Equatable {
        /// The model the step calls.
        public var modelName: String
        /// The version it calls; -1 or 0 (left out) = the newest the pool serves.
        public var modelVersion: Int64
        /// The step model's input name → the pipeline tensor fed to it.
        public var inputMap: [String: String]
        /// The step model's output name → the pipeline tensor it becomes.
        public var outputMap: [String: String]
        /// The line of config.pbtxt the step starts on (for errors); 0 when not from a file.
        public var line: Int

        /// Creates a step.
        public init(modelName: String, modelVersion: Int64 = -1, inputMap: [String: String], outputMap: [String: String], line: Int = 0) {
            self.modelName = modelName
            self.modelVersion = modelVersion
            self.inputMap = inputMap
            self.outputMap = outputMap
            self.line = line
        }
    }

    /// The platform of a pipeline, as Triton names it.
    public static let ensemblePlatform = "ensemble"

    /// The model's name (the folder name when omitted).
    public var name: String
    /// `platform`, e.g. `onnxruntime_onnx`.
    public var platform: String
    /// `backend`, e.g. `onnxruntime`.
    public var backend: String
    /// The largest batch the model accepts; 0 = the model does not batch (no batch dimension).
    public var maxBatchSize: Int
    /// Input tensors.
    public var inputs: [TensorConfiguration]
    /// Output tensors.
    public var outputs: [TensorConfiguration]
    /// Which versions to serve.
    public var versionPolicy: VersionPolicy
    /// Execution instances.
    public var instanceGroups: [InstanceGroup]
    /// The model file inside each version folder; "" means `model.onnx`.
    public var defaultModelFilename: String
    /// Dynamic batching, when enabled.
    public var dynamicBatching: DynamicBatching?
    /// Free-form `parameters` (string values), as written.
    public var parameters: [String: String]
    /// The `fulcrum.*` parameters, checked and typed (`parse` fills it in).
    public var fulcrum: FulcrumSettings
    /// `response_cache { enable: true }`.
    public var responseCacheEnabled: Bool
    /// A pipeline's steps (`platform: "ensemble"` with `ensemble_scheduling`); nil for a model.
    /// Pipelines run in the frontends; workers skip them.
    public var ensembleSteps: [EnsembleStep]?

    /// Whether this is a pipeline, served by the frontends rather than the compute pool.
    public var isPipeline: Bool { platform == Self.ensemblePlatform || ensembleSteps != nil }

    /// The platform prefix of processors: logic the frontends run (`fulcrum_pooling`, ...).
    public static let processorPlatformPrefix = "fulcrum_"

    /// Whether the frontends serve this (a pipeline or a processor) and the workers skip it.
    public var isServedByFrontends: Bool { isPipeline || platform.hasPrefix(Self.processorPlatformPrefix) }

    /// Creates a configuration (defaults as in Triton).
    public init(
        name: String = "", platform: String = "", backend: String = "", maxBatchSize: Int = 0,
        inputs: [TensorConfiguration] = [], outputs: [TensorConfiguration] = [],
        versionPolicy: VersionPolicy = .latest(1), instanceGroups: [InstanceGroup] = [],
        defaultModelFilename: String = "", dynamicBatching: DynamicBatching? = nil,
        parameters: [String: String] = [:], fulcrum: FulcrumSettings = FulcrumSettings(), responseCacheEnabled: Bool = false,
        ensembleSteps: [EnsembleStep]? = nil
    ) {
        self.ensembleSteps = ensembleSteps
        self.name = name
        self.platform = platform
        self.backend = backend
        self.maxBatchSize = maxBatchSize
        self.inputs = inputs
        self.outputs = outputs
        self.versionPolicy = versionPolicy
        self.instanceGroups = instanceGroups
        self.defaultModelFilename = defaultModelFilename
        self.dynamicBatching = dynamicBatching
        self.parameters = parameters
        self.fulcrum = fulcrum
        self.responseCacheEnabled = responseCacheEnabled
    }
}

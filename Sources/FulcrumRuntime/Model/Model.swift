import FulcrumSchema

/// One loaded version of a model: its completed configuration and its execution plan.
///
/// Immutable and shared: the plan's constant buffers (weights) are loaded once and every
/// `ModelInstance` made from this model reads them. Create instances with `makeInstance()`,
/// one per concurrent execution stream (Triton's instance_group count).
public final class Model: Sendable {
    /// The model's name (its folder in the repository).
    public let name: String
    /// The version (its version folder).
    public let version: Int64
    /// The configuration, completed from the model file: platform `onnxruntime_onnx`, backend
    /// `onnxruntime`, and inputs/outputs filled from the graph when the config omitted them.
    public let configuration: ModelConfiguration
    /// Hex FNV-1a 64 digest of config.pbtxt (when present) followed by the model file's bytes.
    public let contentHash: String

    let plan: ExecutionPlan
    /// For each config input, its index in `plan.inputs`.
    let inputIndices: [Int]
    /// For each config output, its index in `plan.outputs`.
    let outputIndices: [Int]

    init(name: String, version: Int64, configuration: ModelConfiguration, contentHash: String, plan: ExecutionPlan) {
        self.name = name
        self.version = version
        self.configuration = configuration
        self.contentHash = contentHash
        self.plan = plan
        inputIndices = configuration.inputs.map { input in plan.inputs.firstIndex { $0.name == input.name } ?? -1 }
        outputIndices = configuration.outputs.map { output in plan.outputs.firstIndex { $0.name == output.name } ?? -1 }
    }

    /// Bytes of weights (initializers kept after planning) the model holds: on the device for a
    /// Vulkan model, in host memory otherwise.
    public var weightBytes: Int {
        plan.deviceConstants?.byteCount ?? plan.constants.values.reduce(0) { $0 + $1.byteCount }
    }

    /// Where the per-batch kernels run: `"cpu"` or `"vulkan"`.
    public var backendName: String { plan.target.backendName }

    /// The largest batch `execute` accepts; 0 means inputs carry no batch dimension.
    public var maxBatchSize: Int { configuration.maxBatchSize }

    /// Creates an execution context with its own scratch buffers. Cheap: buffers are allocated
    /// lazily on the first batch of each shape.
    public func makeInstance() throws(RuntimeError) -> ModelInstance {
        ModelInstance(model: self)
    }
}

import FulcrumSchema

/// What a client must send to a model and what it gets back: the part of a model's configuration
/// that requests are validated against. Built from a loaded model's configuration on a worker,
/// and from the configuration fetched from a worker on a frontend.
public struct ModelSignature: Sendable, Equatable {
    /// One input or output.
    public struct TensorSpec: Sendable, Equatable {
        public var name: String
        public var dataType: DataType
        /// Dimensions without the batch dimension; -1 is variable.
        public var dims: [Int]
        /// An optional input may be left out of a request.
        public var optional: Bool

        public init(name: String, dataType: DataType, dims: [Int], optional: Bool = false) {
            self.name = name
            self.dataType = dataType
            self.dims = dims
            self.optional = optional
        }

        /// The shape as metadata shows it: with a leading -1 when the model batches.
        public func metadataShape(batching: Bool) -> [Int] {
            batching ? [-1] + dims : dims
        }
    }

    public var name: String
    public var version: String
    public var platform: String
    /// 0 when the model does not batch; otherwise the first dimension of every tensor is the batch.
    public var maxBatchSize: Int
    public var inputs: [TensorSpec]
    public var outputs: [TensorSpec]

    public init(
        name: String, version: String, platform: String, maxBatchSize: Int,
        inputs: [TensorSpec], outputs: [TensorSpec]
    ) {
        self.name = name
        self.version = version
        self.platform = platform
        self.maxBatchSize = maxBatchSize
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The signature of a model version described by `configuration`.
    public init(configuration: ModelConfiguration, version: String) {
        self.init(
            name: configuration.name,
            version: version,
            platform: configuration.platform.isEmpty ? "onnxruntime_onnx" : configuration.platform,
            maxBatchSize: configuration.maxBatchSize,
            inputs: configuration.inputs.map {
                TensorSpec(name: $0.name, dataType: $0.dataType, dims: $0.dims, optional: $0.optional)
            },
            outputs: configuration.outputs.map {
                TensorSpec(name: $0.name, dataType: $0.dataType, dims: $0.dims)
            }
        )
    }
}

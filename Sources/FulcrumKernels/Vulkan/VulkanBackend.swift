/// The Vulkan compute backend: SPIR-V kernels (Shaders/*.comp) on any device with a Vulkan
/// driver — NVIDIA, AMD, Intel, Apple through MoltenVK, or Mesa's lavapipe on the CPU.
///
/// Kernels work on `VulkanBuffer`s. For several kernels in a row record them into one
/// `VulkanRecording` and submit it (once per batch); the convenience methods here record one
/// kernel, submit it and wait. The runtime records whole execution plans (docs/vulkan.md).
public struct VulkanBackend: Backend {
    /// ONNX operators the runtime can run per batch on a Vulkan device (FP32 math; INT32 for the
    /// four arithmetic operators; INT64/INT32/BOOL for data movement, Cast, comparisons and
    /// Where). Views (Reshape, Flatten, Squeeze, Unsqueeze, Identity) need no kernel; operators
    /// over constants and shapes (Shape, Constant, ConstantOfShape, ...) run on the host while
    /// a plan is built or bound.
    public static let supportedOperators: Set<String> = [
        "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Conv", "ConvTranspose", "Div",
        "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool",
        "Greater", "HardSigmoid", "HardSwish", "Identity", "LayerNormalization", "LeakyRelu", "Less", "Log",
        "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg", "Pad", "ReduceMax", "ReduceMean", "ReduceSum", "Relu",
        "Reshape", "Resize", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose",
        "Unsqueeze", "Where",
    ]

    /// The device the kernels run on (shared; thread-safe).
    public let device: VulkanDevice

    /// A backend on `device`.
    public init(device: VulkanDevice) { self.device = device }

    /// Opens a device with `options` (see `VulkanDevice.init(options:)` for the errors).
    public init(options: VulkanDevice.Options = VulkanDevice.Options()) throws {
        self.device = try VulkanDevice(options: options)
    }

    /// `"vulkan"`.
    public var name: String { "vulkan" }

    /// Whether `op` is in `supportedOperators`.
    public func supports(op: String) -> Bool { Self.supportedOperators.contains(op) }

    /// A buffer of `count` FP32 elements holding `values` (padded with undefined values).
    public func makeBuffer(_ values: [Float], count: Int? = nil) throws -> VulkanBuffer {
        let buffer = try VulkanBuffer(device: device, count: count ?? values.count)
        try buffer.upload(values)
        return buffer
    }

    /// Runs one `VulkanRecording.sgemm` (batched when `batch > 1`) and waits for it.
    public func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: VulkanBuffer, lda: Int, b: VulkanBuffer, ldb: Int, beta: Float = 0,
        c: VulkanBuffer, ldc: Int, bias: VulkanBuffer? = nil, activation: Activation = .none,
        batch: Int = 1, strideA: Int = 0, strideB: Int = 0, strideC: Int = 0, variant: SGEMMVariant = .automatic
    ) throws {
        try run {
            try $0.sgemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: bias, activation: activation,
                batch: batch, strideA: strideA, strideB: strideB, strideC: strideC, variant: variant)
        }
    }

    /// Runs one `VulkanRecording.binary` and waits for it.
    public func binary(_ op: BinaryOperator, _ a: VulkanBuffer, _ b: VulkanBuffer, _ out: VulkanBuffer, layout: BroadcastLayout) throws {
        try run { try $0.binary(op, a, b, out, layout: layout) }
    }

    /// Runs one `VulkanRecording.unary` and waits for it.
    public func unary(_ op: UnaryOperator, _ input: VulkanBuffer, _ out: VulkanBuffer, count: Int) throws {
        try run { try $0.unary(op, input, out, count: count) }
    }

    /// Runs one `VulkanRecording.leakyRelu` and waits for it.
    public func leakyRelu(_ input: VulkanBuffer, _ out: VulkanBuffer, count: Int, alpha: Float) throws {
        try run { try $0.leakyRelu(input, out, count: count, alpha: alpha) }
    }

    /// Records what `body` adds into one command buffer, submits it and waits.
    public func run(_ body: (VulkanRecording) throws -> Void) throws {
        let recording = try VulkanRecording(device: device)
        try body(recording)
        try recording.end()
        try recording.submit()
    }
}

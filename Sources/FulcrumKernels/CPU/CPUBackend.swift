/// The CPU backend: OpenBLAS `sgemm` for matrix products and vectorised Swift for elementwise
/// operators.
///
/// Kernels work on raw pointers the caller owns (the runtime's execution plan allocates every
/// buffer once per batch shape), never allocate on the hot path, and are safe to call from
/// several threads at once on different buffers. This is the reference every other backend is
/// tested against.
public struct CPUBackend: Backend {
    /// ONNX operators (default domain) this backend implements.
    public static let supportedOperators: Set<String> = [
        "Abs", "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape",
        "Conv", "ConvTranspose", "Div", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool",
        "GlobalMaxPool", "Greater", "HardSigmoid", "HardSwish", "Identity",
        "LayerNormalization", "LeakyRelu", "Less", "Log", "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg", "Pad", "Pow",
        "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax",
        "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "TopK", "Transpose", "Unsqueeze", "Where",
    ]

    /// Creates the CPU backend. It holds no state; copies are interchangeable.
    public init() {}

    /// `"cpu"`.
    public var name: String { "cpu" }

    /// Whether `op` is in `supportedOperators`.
    public func supports(op: String) -> Bool {
        Self.supportedOperators.contains(op)
    }
}

/// An activation applied in place after a matrix product (the epilogue of a fused
/// MatMul/Gemm + bias + activation node), while the product's output is still in cache.
public enum Activation: Sendable, Equatable, CustomStringConvertible {
    /// No activation.
    case none
    /// `max(x, 0)`.
    case relu
    /// `1 / (1 + e^-x)`.
    case sigmoid
    /// `tanh(x)`.
    case tanh
    /// Exact (erf) Gelu.
    case gelu
    /// Tanh-approximated Gelu.
    case geluTanh
    /// `x < 0 ? alpha · x : x`.
    case leakyRelu(alpha: Float)
    /// `x · min(max(x / 6 + 1/2, 0), 1)` (ONNX HardSwish).
    case hardSwish

    /// HardSwish's gate `min(max(alpha · x + beta, 0), 1)`: ONNX fixes alpha 1/6 and beta 1/2
    /// (the C kernels' FULCRUM_GEMM_ACTIVATION_HARDSWISH uses the same).
    public static let hardSwishGate: (alpha: Float, beta: Float) = (1 / 6, 0.5)

    /// e.g. `relu`, `leakyRelu(0.01)`.
    public var description: String {
        switch self {
        case .none: "none"
        case .relu: "relu"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .gelu: "gelu"
        case .geluTanh: "geluTanh"
        case .leakyRelu(let alpha): "leakyRelu(\(alpha))"
        case .hardSwish: "hardSwish"
        }
    }
}

extension CPUBackend {
    /// Applies `activation` to `count` FP32 elements in place.
    public func apply(_ activation: Activation, _ values: UnsafeMutablePointer<Float>, count: Int) {
        switch activation {
        case .none: break
        case .relu: unary(.relu, values, values, count: count)
        case .sigmoid: unary(.sigmoid, values, values, count: count)
        case .tanh: unary(.tanh, values, values, count: count)
        case .gelu: unary(.gelu, values, values, count: count)
        case .geluTanh: unary(.geluTanh, values, values, count: count)
        case .leakyRelu(let alpha): leakyRelu(values, values, count: count, alpha: alpha)
        case .hardSwish:
            hardSigmoid(values, values, count: count, alpha: Activation.hardSwishGate.alpha, beta: Activation.hardSwishGate.beta, swish: true)
        }
    }
}

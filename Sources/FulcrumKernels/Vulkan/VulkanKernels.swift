/// Codes shared with the shaders (`Shaders/Activation.glsl`).
enum VulkanKernels {
    enum UnaryCode {
        static let identity: UInt32 = 0
        static let relu: UInt32 = 1
        static let sigmoid: UInt32 = 2
        static let tanh: UInt32 = 3
        static let neg: UInt32 = 4
        static let abs: UInt32 = 5
        static let exp: UInt32 = 6
        static let log: UInt32 = 7
        static let sqrt: UInt32 = 8
        static let erf: UInt32 = 9
        static let gelu: UInt32 = 10
        static let geluTanh: UInt32 = 11
        static let leakyRelu: UInt32 = 12
    }

    static func code(of op: UnaryOperator) -> UInt32 {
        switch op {
        case .identity: UnaryCode.identity
        case .relu: UnaryCode.relu
        case .sigmoid: UnaryCode.sigmoid
        case .tanh: UnaryCode.tanh
        case .neg: UnaryCode.neg
        case .abs: UnaryCode.abs
        case .exp: UnaryCode.exp
        case .log: UnaryCode.log
        case .sqrt: UnaryCode.sqrt
        case .erf: UnaryCode.erf
        case .gelu: UnaryCode.gelu
        case .geluTanh: UnaryCode.geluTanh
        }
    }

    static func code(of activation: Activation) throws -> (UInt32, Float) {
        switch activation {
        case .none: (UnaryCode.identity, 0)
        case .relu: (UnaryCode.relu, 0)
        case .sigmoid: (UnaryCode.sigmoid, 0)
        case .tanh: (UnaryCode.tanh, 0)
        case .gelu: (UnaryCode.gelu, 0)
        case .geluTanh: (UnaryCode.geluTanh, 0)
        case .leakyRelu(let alpha): (UnaryCode.leakyRelu, alpha)
        case .hardSwish: throw VulkanError(.unsupported, "HardSwish is not an epilogue of this kernel (VulkanRecording.convolve records it after)")
        }
    }
}

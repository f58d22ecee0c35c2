import FulcrumKernels
import ONNXFormat

/// Maps an ONNX node to the `Operator` that runs it, for the model's opset.
///
/// The single place that knows which operators exist and which opset versions each accepts;
/// the later full operator set adds entries here. A node whose op no backend supports, or whose
/// opset falls outside what is implemented, is refused with `.unsupportedOperator`.
enum OperatorRegistry {
    /// Opsets Fulcrum accepts for the default domain.
    static let supportedOpsets = 7...21

    /// Builds the operator for `node` under `opset`, checking `backend.supports(op:)`.
    static func make(node: Onnx_NodeProto, opset: Int, backend: some Backend) throws(RuntimeError) -> any Operator {
        let op = node.opType
        guard node.domain.isEmpty || node.domain == "ai.onnx", backend.supports(op: op) else {
            let domain = node.domain.isEmpty ? "" : " in domain '\(node.domain)'"
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "operator '\(op)'\(domain) (node '\(node.name)', opset \(opset)) is not supported by the \(backend.name) backend; supported: \(CPUBackend.supportedOperators.sorted().joined(separator: ", "))")
        }
        let attributes = NodeAttributes(node)
        switch op {
        case "Add": return BinaryElementwiseOperator(kind: .add)
        case "Sub": return BinaryElementwiseOperator(kind: .sub)
        case "Mul": return BinaryElementwiseOperator(kind: .mul)
        case "Div": return BinaryElementwiseOperator(kind: .div)
        case "Relu": return UnaryElementwiseOperator(kind: .relu)
        case "Sigmoid": return UnaryElementwiseOperator(kind: .sigmoid)
        case "Tanh": return UnaryElementwiseOperator(kind: .tanh)
        case "Neg": return UnaryElementwiseOperator(kind: .neg)
        case "Abs": return UnaryElementwiseOperator(kind: .abs)
        case "Exp": return UnaryElementwiseOperator(kind: .exp)
        case "Log": return UnaryElementwiseOperator(kind: .log)
        case "Sqrt": return UnaryElementwiseOperator(kind: .sqrt)
        case "Identity": return IdentityOperator()
        case "Gemm": return try GemmOperator(attributes: attributes)
        case "MatMul": return MatMulOperator()
        case "Softmax": return try SoftmaxOperator(attributes: attributes, opset: opset, logarithm: false)
        default:
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "operator '\(op)' (node '\(node.name)', opset \(opset)) is not supported")
        }
    }
}

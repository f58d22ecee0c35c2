import FulcrumKernels
import FulcrumSchema
import ONNXFormat

/// Maps an ONNX node to the `Operator` that runs it, for the model's opset.
///
/// The single place that knows which operators exist and which opset versions each accepts;
/// docs/runtime.md lists them with their opset notes. A node whose op no backend supports, or whose
/// opset falls outside what is implemented, is refused with `.unsupportedOperator`.
enum OperatorRegistry {
    /// Opsets Fulcrum accepts for the default domain.
    static let supportedOpsets = 7...21

    /// The domain of the classic machine-learning operators (trees, linear models, scalers).
    static let mlDomain = "ai.onnx.ml"
    /// Opsets Fulcrum accepts for `ai.onnx.ml`.
    static let supportedMLOpsets = 1...5

    /// Builds the operator for `node` under `opset` (its domain's), checking `backend.supports(op:)`.
    static func make(node: Onnx_NodeProto, opset: Int, backend: some Backend) throws(RuntimeError) -> any Operator {
        let op = node.opType
        if node.domain == mlDomain { return try makeML(node: node, opset: opset) }
        guard opset > 0 else {
            throw RuntimeError(
                code: .invalidModel,
                message: "operator '\(op)' (node '\(node.name)') is in the default ONNX domain, and the model imports no opset for it")
        }
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
        case "Pow": return PowOperator()
        case "Relu": return UnaryElementwiseOperator(kind: .relu)
        case "Sigmoid": return UnaryElementwiseOperator(kind: .sigmoid)
        case "Tanh": return UnaryElementwiseOperator(kind: .tanh)
        case "Neg": return UnaryElementwiseOperator(kind: .neg)
        case "Abs": return UnaryElementwiseOperator(kind: .abs)
        case "Exp": return UnaryElementwiseOperator(kind: .exp)
        case "Log": return UnaryElementwiseOperator(kind: .log)
        case "Sqrt": return UnaryElementwiseOperator(kind: .sqrt)
        case "Erf": return UnaryElementwiseOperator(kind: .erf)
        case "Gelu":
            guard opset >= 20 else { throw versionTooOld(node, opset, since: 20) }
            switch try attributes.string("approximate", default: "none") {
            case "none": return UnaryElementwiseOperator(kind: .gelu)
            case "tanh": return UnaryElementwiseOperator(kind: .geluTanh)
            case let other:
                throw RuntimeError(code: .invalidModel, message: "node '\(node.name)' (Gelu): approximate must be \"none\" or \"tanh\", got \"\(other)\"")
            }
        case "LeakyRelu": return try LeakyReluOperator(attributes: attributes)
        case "Clip": return try ClipOperator(attributes: attributes, opset: opset)
        case "Identity": return ReshapingOperator(kind: .identity)
        case "Gemm": return try GemmOperator(attributes: attributes)
        case "MatMul": return MatMulOperator()
        case "Softmax": return try SoftmaxOperator(attributes: attributes, opset: opset, logarithm: false)
        case "LogSoftmax": return try SoftmaxOperator(attributes: attributes, opset: opset, logarithm: true)
        case "Concat": return try ConcatOperator(attributes: attributes)
        case "Split": return try SplitOperator(attributes: attributes, opset: opset, outputCount: node.output.count)
        case "Gather": return try GatherOperator(attributes: attributes)
        case "Flatten": return ReshapingOperator(kind: .flatten(axis: try attributes.int("axis", default: 1)))
        case "Reshape":
            let allowZero = try attributes.int("allowzero", default: 0) != 0
            return ReshapingOperator(kind: .reshape(allowZero: opset >= 14 && allowZero))
        case "Squeeze":
            return ReshapingOperator(kind: .squeeze(axes: opset < 13 ? try attributes.ints("axes") : nil), axesFromInput: opset >= 13)
        case "Unsqueeze":
            return ReshapingOperator(kind: .unsqueeze(axes: opset < 13 ? try attributes.ints("axes") : nil), axesFromInput: opset >= 13)
        case "Transpose": return try TransposeOperator(attributes: attributes)
        case "Expand": return ExpandOperator()
        case "Slice": return try SliceOperator(attributes: attributes, opset: opset)
        case "Shape": return try ShapeOperator(attributes: attributes, opset: opset)
        case "Cast": return try CastOperator(attributes: attributes)
        case "Constant": return try ConstantOperator(attributes: attributes)
        case "ConstantOfShape": return try ConstantOfShapeOperator(attributes: attributes)
        case "Where": return WhereOperator()
        case "Equal": return ComparisonOperator(kind: .equal)
        case "Less": return ComparisonOperator(kind: .less)
        case "Greater": return ComparisonOperator(kind: .greater)
        case "ReduceSum": return try ReduceOperator(kind: .sum, attributes: attributes, opset: opset)
        case "ReduceMean": return try ReduceOperator(kind: .mean, attributes: attributes, opset: opset)
        case "ReduceMax": return try ReduceOperator(kind: .max, attributes: attributes, opset: opset)
        case "LayerNormalization":
            guard opset >= 17 else { throw versionTooOld(node, opset, since: 17) }
            return try LayerNormalizationOperator(attributes: attributes)
        case "BatchNormalization": return try BatchNormalizationOperator(attributes: attributes, outputCount: node.output.filter { !$0.isEmpty }.count)
        case "ArgMax": return try ArgMaxOperator(attributes: attributes, opset: opset)
        case "Conv": return try ConvOperator(attributes: attributes)
        case "ConvTranspose": return try ConvTransposeOperator(attributes: attributes)
        case "Pad": return try PadOperator(attributes: attributes, opset: opset)
        case "Resize":
            guard opset >= 10 else { throw versionTooOld(node, opset, since: 10) }
            return try ResizeOperator(attributes: attributes, opset: opset)
        case "MaxPool": return try PoolOperator(kind: .max, attributes: attributes, outputCount: node.output.filter { !$0.isEmpty }.count)
        case "AveragePool": return try PoolOperator(kind: .average, attributes: attributes, outputCount: 1)
        case "GlobalMaxPool": return try PoolOperator(kind: .globalMax, attributes: attributes, outputCount: 1)
        case "GlobalAveragePool": return try PoolOperator(kind: .globalAverage, attributes: attributes, outputCount: 1)
        case "HardSigmoid": return try HardSigmoidOperator(attributes: attributes, swish: false)
        case "HardSwish":
            guard opset >= 14 else { throw versionTooOld(node, opset, since: 14) }
            return try HardSigmoidOperator(attributes: attributes, swish: true)
        case "TopK": return try TopKOperator(attributes: attributes, opset: opset)
        default:
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "operator '\(op)' (node '\(node.name)', opset \(opset)) is not supported")
        }
    }

    /// `ai.onnx.ml` operators: CPU kernels only (a Vulkan plan refuses them per node).
    private static func makeML(node: Onnx_NodeProto, opset: Int) throws(RuntimeError) -> any Operator {
        guard opset > 0 else {
            throw RuntimeError(code: .invalidModel, message: "operator '\(node.opType)' (node '\(node.name)') is in domain \(mlDomain), and the model imports no opset for it")
        }
        let attributes = NodeAttributes(node)
        // A refusal names the node, operator, domain and opset (the plan adds them only to
        // malformed-model errors).
        func named(_ make: () throws(RuntimeError) -> any Operator) throws(RuntimeError) -> any Operator {
            do throws(RuntimeError) { return try make() } catch {
                guard error.code == .unsupportedOperator else { throw error }
                throw RuntimeError(code: error.code, message: "node '\(node.name)' (\(node.opType), domain \(mlDomain), opset \(opset)): \(error.message)")
            }
        }
        switch node.opType {
        case "TreeEnsembleRegressor": return try named { () throws(RuntimeError) in try TreeEnsembleOperator(regressor: attributes) }
        case "TreeEnsembleClassifier": return try named { () throws(RuntimeError) in try TreeEnsembleOperator(classifier: attributes) }
        case "TreeEnsemble":
            guard opset >= 5 else { throw versionTooOld(node, opset, since: 5, domain: mlDomain) }
            return try named { () throws(RuntimeError) in try TreeEnsembleOperator(opset5: attributes) }
        case "LinearClassifier": return try named { () throws(RuntimeError) in try LinearClassifierOperator(attributes: attributes) }
        case "LinearRegressor": return try named { () throws(RuntimeError) in try LinearRegressorOperator(attributes: attributes) }
        case "Scaler": return try named { () throws(RuntimeError) in try ScalerOperator(attributes: attributes) }
        case "Normalizer": return try named { () throws(RuntimeError) in try NormalizerOperator(attributes: attributes) }
        case "ZipMap":
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "operator 'ZipMap' in domain \(mlDomain) (node '\(node.name)', opset \(opset)) turns probabilities into a sequence of maps, which the inference protocol cannot carry; export without it: skl2onnx `to_onnx(model, X, options={'zipmap': False})`, onnxmltools `convert_lightgbm(model, ..., zipmap=False)`")
        default:
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "operator '\(node.opType)' in domain \(mlDomain) (node '\(node.name)', opset \(opset)) is not supported; supported in \(mlDomain): \(mlOperators.joined(separator: ", "))")
        }
    }

    /// The `ai.onnx.ml` operators `makeML` builds.
    static let mlOperators = [
        "LinearClassifier", "LinearRegressor", "Normalizer", "Scaler", "TreeEnsemble", "TreeEnsembleClassifier", "TreeEnsembleRegressor",
    ]

    /// The refusal for an operator used before the opset that introduced it.
    private static func versionTooOld(_ node: Onnx_NodeProto, _ opset: Int, since: Int, domain: String = "the default domain") -> RuntimeError {
        RuntimeError(
            code: .unsupportedOperator,
            message: "operator '\(node.opType)' (node '\(node.name)', opset \(opset)) exists in \(domain) from opset \(since); re-export with opset \(since) or later")
    }
}

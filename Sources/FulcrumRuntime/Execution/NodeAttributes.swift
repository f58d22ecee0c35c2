import FulcrumKernels
import FulcrumSchema
import ONNXFormat

/// Typed access to a node's attributes with defaults, refusing an attribute of the wrong type.
struct NodeAttributes {
    private let attributes: [String: Onnx_AttributeProto]

    init(_ node: Onnx_NodeProto) {
        var map: [String: Onnx_AttributeProto] = [:]
        for attribute in node.attribute { map[attribute.name] = attribute }
        attributes = map
    }

    private func wrongType(_ name: String, _ expected: String) -> RuntimeError {
        RuntimeError(code: .invalidModel, message: "attribute '\(name)' must be \(expected)")
    }

    func int(_ name: String, default value: Int) throws(RuntimeError) -> Int {
        guard let attribute = attributes[name] else { return value }
        guard attribute.type == .int || attribute.type == .undefined else { throw wrongType(name, "an INT") }
        guard let result = Int(exactly: attribute.i) else { throw wrongType(name, "a representable INT") }
        return result
    }

    func float(_ name: String, default value: Float) throws(RuntimeError) -> Float {
        guard let attribute = attributes[name] else { return value }
        guard attribute.type == .float || attribute.type == .undefined else { throw wrongType(name, "a FLOAT") }
        return attribute.f
    }

    func ints(_ name: String) throws(RuntimeError) -> [Int]? {
        guard let attribute = attributes[name] else { return nil }
        guard attribute.type == .ints || attribute.type == .undefined else { throw wrongType(name, "INTS") }
        return attribute.ints.map { Int(truncatingIfNeeded: $0) }
    }

    /// Whether the node sets `name`.
    func has(_ name: String) -> Bool { attributes[name] != nil }

    /// The names of the attributes the node sets.
    var names: [String] { attributes.keys.sorted() }

    func strings(_ name: String) throws(RuntimeError) -> [String]? {
        guard let attribute = attributes[name] else { return nil }
        guard attribute.type == .strings || attribute.type == .undefined else { throw wrongType(name, "STRINGS") }
        return attribute.strings.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Refuses any attribute outside `known` (for operators that many exporters write, where
    /// an ignored attribute would silently change results).
    func refuseUnknown(known: [String]) throws(RuntimeError) {
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw RuntimeError(code: .unsupportedOperator, message: "attribute '\(unknown)' is not supported (supported: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// The `post_transform` of the classic machine-learning operators (default NONE).
    func scoreTransform() throws(RuntimeError) -> ScoreTransform {
        let name = try string("post_transform", default: "NONE")
        guard let transform = ScoreTransform(name: name) else {
            throw RuntimeError(code: .invalidModel, message: "post_transform '\(name)' is not NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO or PROBIT")
        }
        return transform
    }

    /// A FLOAT or DOUBLE tensor attribute's elements.
    func realTensor(_ name: String) throws(RuntimeError) -> [Double]? {
        guard let tensor = try tensor(name) else { return nil }
        switch tensor.type.dataType {
        case .fp64: return tensor.bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        case .fp32: return tensor.bytes.withUnsafeBytes { $0.bindMemory(to: Float.self).map(Double.init) }
        default: throw wrongType(name, "a FLOAT or DOUBLE tensor")
        }
    }

    /// A list of reals given either as FLOATS `name` or as a FLOAT/DOUBLE tensor `name_as_tensor`
    /// (the tree ensembles' two spellings); nil when neither is set, refused when both are.
    func reals(_ name: String) throws(RuntimeError) -> [Double]? {
        let floats = try floats(name)
        guard let tensor = try realTensor(name + "_as_tensor") else { return floats.map { $0.map(Double.init) } }
        guard floats == nil else { throw RuntimeError(code: .invalidModel, message: "attributes '\(name)' and '\(name)_as_tensor' are both set") }
        return tensor
    }

    func floats(_ name: String) throws(RuntimeError) -> [Float]? {
        guard let attribute = attributes[name] else { return nil }
        guard attribute.type == .floats || attribute.type == .undefined else { throw wrongType(name, "FLOATS") }
        return attribute.floats
    }

    func string(_ name: String, default value: String) throws(RuntimeError) -> String {
        guard let attribute = attributes[name] else { return value }
        guard attribute.type == .string || attribute.type == .undefined else { throw wrongType(name, "a STRING") }
        return String(decoding: attribute.s, as: UTF8.self)
    }

    /// A TENSOR attribute decoded to Fulcrum's layout.
    func tensor(_ name: String) throws(RuntimeError) -> (type: ValueType, bytes: [UInt8])? {
        guard let attribute = attributes[name] else { return nil }
        guard attribute.type == .tensor || attribute.type == .undefined, attribute.hasT else { throw wrongType(name, "a TENSOR") }
        do throws(RuntimeError) {
            return try attribute.t.decoded(modelDirectory: "")
        } catch {
            throw RuntimeError(code: error.code, message: "attribute '\(name)': \(error.message)")
        }
    }
}

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
}

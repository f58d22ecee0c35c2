import Foundation
import FulcrumRuntime
import FulcrumSchema
import ONNXFormat
import Testing

/// Tree ensembles from outside are hostile too: every id, index and length in the attributes is
/// checked at load, and what Fulcrum does not implement is refused by name. The working cases
/// are in the conformance suite (Fixtures/ops/tree_*).
@Suite("tree ensembles Fulcrum refuses")
struct TreeEnsembleRefusalTests {
    /// One tree: node 0 (x[0] <= 0.5) → leaf 1 (weight 1) or leaf 2 (weight 2).
    static func regressor(_ edit: (inout [String: Onnx_AttributeProto]) -> Void = { _ in }, op: String = "TreeEnsembleRegressor", opsetImports: [(String, Int)] = [("ai.onnx.ml", 3)]) throws -> Data {
        func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            a.type = .ints
            a.ints = values.map(Int64.init)
            return a
        }
        func floats(_ name: String, _ values: [Float]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            a.type = .floats
            a.floats = values
            return a
        }
        func strings(_ name: String, _ values: [String]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            a.type = .strings
            a.strings = values.map { Data($0.utf8) }
            return a
        }
        var attributes: [String: Onnx_AttributeProto] = [
            "nodes_treeids": ints("nodes_treeids", [0, 0, 0]),
            "nodes_nodeids": ints("nodes_nodeids", [0, 1, 2]),
            "nodes_featureids": ints("nodes_featureids", [0, 0, 0]),
            "nodes_modes": strings("nodes_modes", ["BRANCH_LEQ", "LEAF", "LEAF"]),
            "nodes_values": floats("nodes_values", [0.5, 0, 0]),
            "nodes_truenodeids": ints("nodes_truenodeids", [1, 0, 0]),
            "nodes_falsenodeids": ints("nodes_falsenodeids", [2, 0, 0]),
            "target_treeids": ints("target_treeids", [0, 0]),
            "target_nodeids": ints("target_nodeids", [1, 2]),
            "target_ids": ints("target_ids", [0, 0]),
            "target_weights": floats("target_weights", [1, 2]),
        ]
        if op == "TreeEnsembleClassifier" {
            attributes["class_treeids"] = ints("class_treeids", [0, 0])
            attributes["class_nodeids"] = ints("class_nodeids", [1, 2])
            attributes["class_ids"] = ints("class_ids", [0, 1])
            attributes["class_weights"] = floats("class_weights", [1, 1])
            attributes["classlabels_int64s"] = ints("classlabels_int64s", [0, 1])
            for name in ["target_treeids", "target_nodeids", "target_ids", "target_weights"] { attributes[name] = nil }
        }
        edit(&attributes)
        var node = Onnx_NodeProto()
        node.opType = op
        node.domain = "ai.onnx.ml"
        node.name = "forest"
        node.input = ["X"]
        node.output = op == "TreeEnsembleClassifier" ? ["label", "probabilities"] : ["Y"]
        node.attribute = attributes.values.sorted { $0.name < $1.name }
        var x = Onnx_ValueInfoProto()
        x.name = "X"
        var type = Onnx_TypeProto.Tensor()
        type.elemType = 1
        type.shape.dim = [2, 3].map { size in
            var dim = Onnx_TensorShapeProto.Dimension()
            dim.dimValue = Int64(size)
            return dim
        }
        x.type.tensorType = type
        var graph = Onnx_GraphProto()
        graph.name = "trees"
        graph.node = [node]
        graph.input = [x]
        graph.output = node.output.map { name in
            var value = Onnx_ValueInfoProto()
            value.name = name
            return value
        }
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.opsetImport = opsetImports.map { domain, version in
            var id = Onnx_OperatorSetIdProto()
            id.domain = domain
            id.version = Int64(version)
            return id
        }
        model.graph = graph
        return try model.serializedData()
    }

    func load(_ bytes: Data) throws -> Result<Model, RuntimeError> {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", bytes: bytes)
        return try repo.loadOne("m")
    }

    func refusal(_ bytes: Data) throws -> RuntimeError {
        switch try load(bytes) {
        case .success: throw RuntimeError(code: .internalError, message: "the model loaded but should not")
        case .failure(let error): return error
        }
    }

    @Test func theBaseCaseLoadsAndAnswers() throws {
        let model = try load(Self.regressor()).get()
        let result = try model.makeInstance().execute(["X": Tensor(shape: [2, 3], scalars: [Float(0.5), 0, 0, .nan, 0, 0])])
        #expect(result["Y"]?.scalars(as: Float.self) == [1, 2])
        // A classifier answers labels and scores; an XGBoost-style model imports only ai.onnx.ml.
        let classifier = try load(Self.regressor(op: "TreeEnsembleClassifier")).get()
        let classes = try classifier.makeInstance().execute(["X": Tensor(shape: [2, 3], scalars: [Float(0), 0, 0, 1, 0, 0])])
        // As onnxruntime answers: with weights for both classes, a row whose leaf scored only
        // class 0 still gets label 1 (its rule is "class 1 if the remaining score is > 0").
        #expect(classes["label"]?.scalars(as: Int64.self) == [1, 1])
        #expect(classes["probabilities"]?.scalars(as: Float.self) == [-1, 1, 0, 1])
    }

    @Test func zipMapAndStringLabelsAreRefusedWithTheExportOptionThatAvoidsThem() throws {
        let zipmap = try refusal(Self.regressor(op: "ZipMap"))
        #expect(zipmap.matches(.unsupportedOperator, "ZipMap", "'zipmap': False", "zipmap=False"), "\(zipmap)")
        let strings = try refusal(Self.regressor({ attributes in
            var a = Onnx_AttributeProto()
            a.name = "classlabels_strings"
            a.type = .strings
            a.strings = [Data("cat".utf8), Data("dog".utf8)]
            attributes["classlabels_strings"] = a
            attributes["classlabels_int64s"] = nil
        }, op: "TreeEnsembleClassifier"))
        #expect(strings.matches(.unsupportedOperator, "classlabels_strings", "node 'forest'"), "\(strings)")
    }

    @Test func anUnknownAttributeOrOperatorIsNamed() throws {
        let attribute = try refusal(Self.regressor { attributes in
            var a = Onnx_AttributeProto()
            a.name = "nodes_hitrates_as_matrix"
            a.type = .ints
            attributes[a.name] = a
        })
        #expect(attribute.matches(.unsupportedOperator, "nodes_hitrates_as_matrix", "node 'forest'", "TreeEnsembleRegressor", "opset 3"), "\(attribute)")
        let op = try refusal(Self.regressor(op: "SVMClassifier"))
        #expect(op.matches(.unsupportedOperator, "SVMClassifier", "ai.onnx.ml", "node 'forest'"), "\(op)")
        let v5early = try refusal(Self.regressor(op: "TreeEnsemble"))
        #expect(v5early.matches(.unsupportedOperator, "TreeEnsemble", "opset 5"), "\(v5early)")
        let noImport = try refusal(Self.regressor(opsetImports: [("", 17)]))
        #expect(noImport.matches(.invalidModel, "ai.onnx.ml", "imports no opset"), "\(noImport)")
    }

    @Test("malformed forests are invalid models, never a trap or a hang", arguments: [
        ("a child outside the tree", "nodes_truenodeids", [7, 0, 0], "does not have"),
        ("a cycle back to the root", "nodes_falsenodeids", [0, 0, 0], "root"),
        ("a negative feature", "nodes_featureids", [-1, 0, 0], "feature -1"),
        ("a weight on a branch", "target_nodeids", [0, 2], "not a LEAF"),
        ("a weight for a missing node", "target_nodeids", [1, 9], "does not exist"),
        ("a weight for another target", "target_ids", [0, 3], "output 3"),
        ("lengths that differ", "nodes_treeids", [0, 0], "one entry per node"),
        ("a node defined twice", "nodes_nodeids", [0, 1, 1], "twice"),
    ])
    func malformed(_ label: String, attribute: String, values: [Int], fragment: String) throws {
        let error = try refusal(Self.regressor { attributes in
            attributes[attribute]?.ints = values.map(Int64.init)
        })
        #expect(error.matches(.invalidModel, fragment), "\(label): \(error)")
    }

    @Test func theInputMustHaveTheFeaturesTheTreesRead() throws {
        let error = try refusal(Self.regressor { attributes in attributes["nodes_featureids"]?.ints = [5, 0, 0] })
        #expect(error.matches(.invalidModel, "3 features", "feature 5"), "\(error)")
    }
}

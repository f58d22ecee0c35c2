import Foundation
@testable import FulcrumRuntime
import FulcrumSchema
import ONNXFormat
import Testing

/// The attention fusion (`ExecutionPlan.fuseAttention`, `AttentionOperator`) against the same
/// graph left unfused: the unfused twin also exposes the scores as a graph output, which keeps
/// the fusion from matching, so its result comes from the separately tested operators.
@Suite("attention fusion against the unfused graph")
struct AttentionFusionTests {
    /// A small ONNX graph builder (FP32 inputs with fixed shapes).
    struct Graph {
        var nodes: [Onnx_NodeProto] = []
        var initializers: [Onnx_TensorProto] = []
        var inputs: [(String, [Int])] = []
        var outputs: [String] = []

        mutating func node(_ op: String, _ inputs: [String], _ output: String, ints: [String: [Int]] = [:], int: [String: Int] = [:]) {
            var node = Onnx_NodeProto()
            node.opType = op
            node.name = output
            node.input = inputs
            node.output = [output]
            for (name, values) in ints {
                var attribute = Onnx_AttributeProto()
                attribute.name = name
                attribute.type = .ints
                attribute.ints = values.map(Int64.init)
                node.attribute.append(attribute)
            }
            for (name, value) in int {
                var attribute = Onnx_AttributeProto()
                attribute.name = name
                attribute.type = .int
                attribute.i = Int64(value)
                node.attribute.append(attribute)
            }
            nodes.append(node)
        }

        mutating func scalar(_ name: String, _ value: Float) {
            var tensor = Onnx_TensorProto()
            tensor.name = name
            tensor.dataType = 1
            tensor.floatData = [value]
            initializers.append(tensor)
        }

        func model(opset: Int) throws -> Data {
            func info(_ name: String, _ shape: [Int]?) -> Onnx_ValueInfoProto {
                var value = Onnx_ValueInfoProto()
                value.name = name
                var type = Onnx_TypeProto.Tensor()
                type.elemType = 1
                if let shape {
                    type.shape.dim = shape.map { size in
                        var dim = Onnx_TensorShapeProto.Dimension()
                        dim.dimValue = Int64(size)
                        return dim
                    }
                }
                value.type.tensorType = type
                return value
            }
            var graph = Onnx_GraphProto()
            graph.name = "attention"
            graph.node = nodes
            graph.initializer = initializers
            graph.input = inputs.map { info($0.0, $0.1) }
            graph.output = outputs.map { info($0, nil) }
            var model = Onnx_ModelProto()
            model.irVersion = 8
            var opsetID = Onnx_OperatorSetIdProto()
            opsetID.version = Int64(opset)
            model.opsetImport = [opsetID]
            model.graph = graph
            return try model.serializedData()
        }
    }

    struct Variant: CustomStringConvertible, Sendable {
        var name: String
        var opset = 13
        /// Q, K, V and mask shapes as graph inputs (mask empty: none).
        var q: [Int], k: [Int], v: [Int], mask: [Int] = []
        /// Transposes before Q, K, V and after the context (nil: none).
        var qPerm: [Int]? = nil, kPerm: [Int]? = nil, vPerm: [Int]? = nil, outPerm: [Int]? = nil
        var divides = false
        var softmaxAxis: Int? = -1
        var description: String { name }
    }

    static let variants: [Variant] = [
        // The transformer's form: head split by Transposes, Mul scale, [b, 1, 1, s] mask.
        Variant(
            name: "transposed heads, Mul, key mask", q: [2, 5, 3, 4], k: [2, 5, 3, 4], v: [2, 5, 3, 4], mask: [2, 1, 1, 5],
            qPerm: [0, 2, 1, 3], kPerm: [0, 2, 3, 1], vPerm: [0, 2, 1, 3], outPerm: [0, 2, 1, 3]),
        // Already split, Div scale, no mask, K broadcast over the batch, odd sizes.
        Variant(name: "plain, Div, broadcast K", q: [2, 3, 5, 4], k: [1, 3, 4, 6], v: [2, 3, 6, 7], divides: true),
        // A full per-query mask, 3-D (one head).
        Variant(name: "3-D, full mask", q: [3, 9, 8], k: [3, 8, 11], v: [3, 11, 2], mask: [3, 9, 11]),
        // Opset 11 Softmax flattens from axis 1: fused, but runs step by step.
        Variant(
            name: "opset 11 softmax over axis 1 (stepwise)", opset: 11, q: [2, 3, 5, 4], k: [2, 3, 4, 5], v: [2, 3, 5, 4],
            mask: [2, 1, 1, 5], softmaxAxis: nil),
        // The mask widens the scores (one query row, four mask rows): stepwise.
        Variant(name: "mask widens the scores (stepwise)", q: [2, 3, 1, 4], k: [2, 3, 4, 5], v: [2, 3, 5, 6], mask: [2, 1, 4, 5]),
    ]

    func build(_ variant: Variant, exposeScores: Bool) throws -> Data {
        var graph = Graph()
        graph.inputs = [("q", variant.q), ("k", variant.k), ("v", variant.v)]
        if !variant.mask.isEmpty { graph.inputs.append(("mask", variant.mask)) }
        func head(_ name: String, _ perm: [Int]?) -> String {
            guard let perm else { return name }
            graph.node("Transpose", [name], name + ".t", ints: ["perm": perm])
            return name + ".t"
        }
        let q = head("q", variant.qPerm), k = head("k", variant.kPerm), v = head("v", variant.vPerm)
        graph.node("MatMul", [q, k], "scores")
        graph.scalar("scale", 0.5)
        graph.node(variant.divides ? "Div" : "Mul", ["scores", "scale"], "scaled")
        var logits = "scaled"
        if !variant.mask.isEmpty {
            graph.node("Add", ["mask", "scaled"], "masked")
            logits = "masked"
        }
        graph.node("Softmax", [logits], "probs", int: variant.softmaxAxis.map { ["axis": $0] } ?? [:])
        graph.node("MatMul", ["probs", v], "context")
        var output = "context"
        if let perm = variant.outPerm {
            graph.node("Transpose", ["context"], "context.t", ints: ["perm": perm])
            output = "context.t"
        }
        graph.outputs = [output] + (exposeScores ? ["scores"] : [])
        return try graph.model(opset: variant.opset)
    }

    @Test("the fused node gives the unfused graph's result", arguments: variants)
    func matchesUnfused(variant: Variant) throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "fused", bytes: build(variant, exposeScores: false))
        try repo.add(model: "unfused", bytes: build(variant, exposeScores: true))
        let fused = try repo.loadOne("fused").get()
        let unfused = try repo.loadOne("unfused").get()
        #expect(fused.plan.nodes.map(\.opType) == ["Attention"], "\(fused.plan.nodes.map(\.opType))")
        #expect(!unfused.plan.nodes.contains { $0.opType == "Attention" })

        var random = SplitMix(state: 7)
        var inputs: [String: Tensor] = [
            "q": Tensor(shape: variant.q, scalars: random.floats(variant.q.reduce(1, *))),
            "k": Tensor(shape: variant.k, scalars: random.floats(variant.k.reduce(1, *))),
            "v": Tensor(shape: variant.v, scalars: random.floats(variant.v.reduce(1, *))),
        ]
        if !variant.mask.isEmpty {
            inputs["mask"] = Tensor(shape: variant.mask, scalars: random.floats(variant.mask.reduce(1, *)).map { $0 > 1.2 ? -10000 : $0 })
        }
        let expected = try unfused.makeInstance().execute(inputs)
        let output = variant.outPerm == nil ? "context" : "context.t"
        let expectedOutput = try #require(expected[output])
        let instance = try fused.makeInstance()
        for _ in 0..<2 {
            let result = try instance.execute(inputs)
            expectClose(result[output], expectedOutput, "\(variant.name)")
        }
    }

    @Test("the transformer encoder's two attention blocks fuse, Transposes included")
    func transformer() throws {
        let model = try ModelRepository(path: Fixtures.examples.path).load("transformer_encoder")[0].result.get()
        let plan = model.plan
        #expect(plan.nodes.filter { $0.opType == "Attention" }.count == 2, "\(plan.fusions)")
        #expect(!plan.nodes.contains { $0.opType == "Transpose" || $0.opType == "Softmax" })
    }
}

/// Deterministic pseudo-random numbers (SplitMix64) in [-2, 2).
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in Float(next() >> 40) / Float(1 << 24) * 4 - 2 } }
}

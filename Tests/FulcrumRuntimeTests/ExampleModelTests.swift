import Foundation
@testable import FulcrumRuntime
import FulcrumSchema
import Testing

/// The example models (examples/models) against onnxruntime's outputs
/// (Fixtures/models/<model>-io.json): relative L2 error ≤ 1e-5 in FP32.
@Suite("example models against onnxruntime")
struct ExampleModelTests {
    static let models = ["ranking_mlp", "dlrm", "transformer_encoder", "sklearn_classifier"]

    func load(_ name: String) throws -> Model {
        let loads = try ModelRepository(path: Fixtures.examples.path).load(name)
        try #require(loads.count == 1)
        return try loads[0].result.get()
    }

    @Test("model matches onnxruntime", arguments: models)
    func matches(name: String) throws {
        let model = try load(name)
        let (inputs, outputs) = try Fixtures.expectations("models/\(name)-io")
        let instance = try model.makeInstance()
        for _ in 0..<2 {
            let results = try instance.execute(inputs)
            for (output, expected) in outputs {
                if expected.dataType == .fp32 {
                    let error = relativeL2(results[output], expected)
                    #expect(error <= 1e-5, "\(name).\(output): relative L2 \(error)")
                } else {
                    #expect(results[output] == expected, "\(name).\(output)")
                }
            }
        }
    }

    @Test("every row of a batch equals that row run alone", arguments: models)
    func rowsAreIndependent(name: String) throws {
        let model = try load(name)
        let (inputs, _) = try Fixtures.expectations("models/\(name)-io")
        let instance = try model.makeInstance()
        let batched = try instance.execute(inputs)
        func row(_ tensor: Tensor, _ index: Int) -> Tensor {
            let bytes = tensor.data.count / tensor.shape[0]
            return Tensor(dataType: tensor.dataType, shape: [1] + tensor.shape.dropFirst(), data: Array(tensor.data[(index * bytes)..<((index + 1) * bytes)]))
        }
        let rows = try #require(inputs.values.first?.shape.first)
        for index in [0, rows - 1] {
            let single = try instance.execute(inputs.mapValues { row($0, index) })
            for (output, value) in batched {
                expectClose(single[output], row(value, index), tolerance: 1e-4, "\(name).\(output)[\(index)]")
            }
        }
    }

    @Test("the transformer takes any sequence length, and padding does not change the embedding")
    func transformerSequenceLengths() throws {
        let instance = try load("transformer_encoder").makeInstance()
        let ids: [Int64] = (0..<23).map { Int64(($0 * 37) % 1000) }
        func run(_ length: Int, padTo padded: Int) throws -> [Float] {
            let tokens = Array(ids.prefix(length)) + [Int64](repeating: 0, count: padded - length)
            let mask = [Int64](repeating: 1, count: length) + [Int64](repeating: 0, count: padded - length)
            let result = try instance.execute([
                "input_ids": Tensor(shape: [1, padded], scalars: tokens),
                "attention_mask": Tensor(shape: [1, padded], scalars: mask),
            ])
            return try #require(result["embedding"]).scalars(as: Float.self)
        }
        let plain = try run(17, padTo: 17)
        let padded = try run(17, padTo: 23)
        #expect(plain.count == 128)
        let worst = zip(plain, padded).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-3, "padding changed the embedding by \(worst)")
        _ = try run(1, padTo: 1)  // a one-token sequence
    }

    @Test("the plan folds shape subgraphs, fuses dense layers and Gelu, and shares memory")
    func planOptimisations() throws {
        let transformer = try load("transformer_encoder")
        let plan = transformer.plan
        // Both layers' FFN Gelu (erf form) fused, then fused into the MatMul + bias.
        #expect(plan.fusions.filter { $0.contains("Erf-form Gelu") }.count == 2, "\(plan.fusions)")
        #expect(plan.nodes.contains { $0.opType == "MatMul+Add+Gelu" })
        #expect(!plan.nodes.contains { $0.opType == "Erf" })
        let bound = try BoundPlan(plan: plan, inputShapes: [[8, 128], [8, 128]])
        // Shape → Concat → Reshape and Shape → Slice run at bind time; views run nothing.
        #expect(bound.kernelCount < plan.nodes.count)
        #expect(!plan.nodes.isEmpty && bound.arenaBytes < bound.unsharedBytes / 2, "arena \(bound.arenaBytes) of \(bound.unsharedBytes)")

        let ranking = try load("ranking_mlp").plan
        #expect(ranking.nodes.map(\.opType) == ["Gemm+Relu", "Gemm+Relu", "Gemm+Sigmoid"])
        let dlrm = try load("dlrm").plan
        #expect(dlrm.nodes.filter { $0.opType == "MatMul+Add+Relu" }.count == 2)
    }
}

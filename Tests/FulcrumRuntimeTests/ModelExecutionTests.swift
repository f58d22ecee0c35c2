import Foundation
import FulcrumRuntime
import FulcrumSchema
import Testing

@Suite("ONNX models against onnxruntime's outputs")
struct ModelExecutionTests {
    /// Fixtures without a batch dimension load without a config.pbtxt (auto-completed).
    @Test("fixtures match onnxruntime", arguments: ["broadcast_fp32", "matmul_batched", "gemm_variants", "softmax_opset11", "softmax_opset13"])
    func unbatched(fixture: String) throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: fixture + ".onnx")
        let model = try repo.loadOne("m").get()
        #expect(model.maxBatchSize == 0)
        #expect(model.configuration.platform == "onnxruntime_onnx")
        let (inputs, outputs) = try Fixtures.expectations(fixture)
        let instance = try model.makeInstance()
        for _ in 0..<2 {  // the second run reuses the bound plan
            let results = try instance.execute(inputs)
            #expect(Set(results.keys) == Set(outputs.keys))
            for (name, expected) in outputs { expectClose(results[name], expected, "\(fixture).\(name)") }
        }
    }

    @Test("batched models run at several batch sizes", arguments: [("mlp", 8), ("simple_int32", 8), ("external_data", 4)])
    func batched(fixture: String, maxBatch: Int) throws {
        let repo = try TemporaryRepository()
        try repo.add(
            model: "m", fixture: fixture + ".onnx", config: "max_batch_size: \(maxBatch)\nplatform: \"onnxruntime_onnx\"",
            extraFiles: fixture == "external_data" ? ["external_weights.bin"] : [])
        let model = try repo.loadOne("m").get()
        #expect(model.maxBatchSize == maxBatch)
        let (inputs, outputs) = try Fixtures.expectations(fixture)
        let instance = try model.makeInstance()
        let results = try instance.execute(inputs)
        for (name, expected) in outputs { expectClose(results[name], expected, "\(fixture).\(name)") }

        // Row 0 alone must give row 0 of the batched result (exercises a second bound plan).
        func firstRow(_ tensor: Tensor) -> Tensor {
            let rowBytes = tensor.data.count / tensor.shape[0]
            return Tensor(dataType: tensor.dataType, shape: [1] + tensor.shape.dropFirst(), data: Array(tensor.data.prefix(rowBytes)))
        }
        let single = try instance.execute(inputs.mapValues(firstRow))
        for (name, expected) in outputs { expectClose(single[name], firstRow(expected), "\(fixture).\(name)[0]") }
    }

    @Test("the configuration is completed from the graph")
    func autoComplete() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "simple", fixture: "simple_int32.onnx")
        let model = try repo.loadOne("simple").get()
        let config = model.configuration
        #expect(config.name == "simple")
        #expect(config.backend == "onnxruntime")
        #expect(config.maxBatchSize == 4)  // Triton's default-max-batch-size
        #expect(config.dynamicBatching != nil)
        #expect(config.inputs == [.init(name: "INPUT0", dataType: .int32, dims: [16]), .init(name: "INPUT1", dataType: .int32, dims: [16])])
        #expect(config.outputs.map(\.name) == ["OUTPUT0", "OUTPUT1"])
        #expect(model.contentHash.count == 16)
    }

    @Test("content hashes follow the bytes")
    func contentHash() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "a", fixture: "mlp.onnx")
        try repo.add(model: "b", fixture: "mlp.onnx")
        try repo.add(model: "c", fixture: "mlp.onnx", config: "max_batch_size: 2")
        let a = try repo.loadOne("a").get().contentHash
        #expect(a == (try repo.loadOne("b").get().contentHash))
        #expect(a != (try repo.loadOne("c").get().contentHash))
    }

    @Test("explicit config inputs, reshape and outputs subset")
    func explicitConfig() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "mlp", fixture: "mlp.onnx", config: """
            name: "mlp"
            backend: "onnxruntime"
            max_batch_size: 8
            input [ { name: "x" data_type: TYPE_FP32 dims: [ 7, 1 ] reshape { shape: [ 7 ] } } ]
            output [ { name: "squashed" data_type: TYPE_FP32 dims: [ -1 ] } ]
            """)
        let model = try repo.loadOne("mlp").get()
        let (inputs, outputs) = try Fixtures.expectations("mlp")
        var x = try #require(inputs["x"])
        x.shape = [x.shape[0], 7, 1]
        let results = try model.makeInstance().execute(["x": x])
        #expect(Array(results.keys) == ["squashed"])
        expectClose(results["squashed"], try #require(outputs["squashed"]), "squashed")
    }

    @Test("inputs are validated before running")
    func inputValidation() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "simple", fixture: "simple_int32.onnx", config: "max_batch_size: 8")
        let instance = try repo.loadOne("simple").get().makeInstance()
        let ok = Tensor(shape: [2, 16], scalars: [Int32](repeating: 1, count: 32))
        let cases: [([String: Tensor], [String])] = [
            (["INPUT0": ok], ["input 'INPUT1' is missing"]),
            (["INPUT0": ok, "INPUT1": ok, "extra": ok], ["unexpected input 'extra'"]),
            (["INPUT0": Tensor(shape: [2, 16], scalars: [Float](repeating: 1, count: 32)), "INPUT1": ok], ["'INPUT0'", "FP32", "INT32"]),
            (["INPUT0": Tensor(shape: [2, 8], scalars: [Int32](repeating: 1, count: 16)), "INPUT1": ok], ["'INPUT0'", "[2, 8]", "[-1, 16]"]),
            (["INPUT0": Tensor(shape: [9, 16], scalars: [Int32](repeating: 1, count: 144)), "INPUT1": Tensor(shape: [9, 16], scalars: [Int32](repeating: 1, count: 144))], ["batch size 9", "1...8"]),
            (["INPUT0": Tensor(shape: [1, 16], scalars: [Int32](repeating: 1, count: 16)), "INPUT1": ok], ["batch size"]),
            (["INPUT0": Tensor(dataType: .int32, shape: [2, 16], data: [1, 2, 3]), "INPUT1": ok], ["'INPUT0' holds 3 bytes", "needs 128"]),
        ]
        for (inputs, fragments) in cases {
            #expect {
                try instance.execute(inputs)
            } throws: { error in
                guard let error = error as? RuntimeError else { return false }
                return error.code == .invalidInput && fragments.allSatisfy { error.message.contains($0) }
            }
        }
        // Still works after refusals.
        let results = try instance.execute(["INPUT0": ok, "INPUT1": ok])
        #expect(results["OUTPUT0"]?.scalars(as: Int32.self) == [Int32](repeating: 2, count: 32))
        #expect(results["OUTPUT1"]?.scalars(as: Int32.self) == [Int32](repeating: 0, count: 32))
    }
}

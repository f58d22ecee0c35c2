import Foundation
import FulcrumRuntime
import FulcrumSchema
import Testing

@Suite("models and configurations Fulcrum refuses, and repository layout")
struct ModelRefusalTests {
    func loadError(_ fixture: String, config: String? = nil) throws -> RuntimeError {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: fixture, config: config)
        switch try repo.loadOne("m") {
        case .success: throw RuntimeError(code: .internalError, message: "\(fixture) loaded but should not")
        case .failure(let error): return error
        }
    }

    @Test("an unsupported operator names the op, node and opset")
    func unsupportedOperator() throws {
        let error = try loadError("unsupported_op.onnx")
        #expect(error.matches(.unsupportedOperator, "'GridSample'", "node 'sampler0'", "opset 17"), "\(error)")
    }

    @Test("a cycle is an invalid model")
    func cycle() throws {
        let error = try loadError("cycle.onnx")
        #expect(error.matches(.invalidModel, "cycle", "'first'"), "\(error)")
    }

    @Test("an opset outside 7...21 is refused")
    func oldOpset() throws {
        let error = try loadError("opset6.onnx")
        #expect(error.matches(.unsupportedOperator, "opset 6", "7...21"), "\(error)")
    }

    @Test("external data may not leave the model's folder")
    func externalEscape() throws {
        let error = try loadError("external_escape.onnx")
        #expect(error.matches(.invalidModel, "'w'", "../../secret.bin", "outside"), "\(error)")
    }

    @Test("missing external data is an invalid model")
    func externalMissing() throws {
        let error = try loadError("external_data.onnx")  // weights file not copied
        #expect(error.matches(.invalidModel, "external_weights.bin"), "\(error)")
    }

    @Test("a node without outputs is an invalid model (found by fuzzing: it trapped in dense fusion)")
    func nodeWithoutOutputs() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz/corpus/onnx/regression-node-without-outputs.onnx")
        let repo = try TemporaryRepository()
        try repo.add(model: "m", bytes: try Data(contentsOf: corpus))
        guard case .failure(let error) = try repo.loadOne("m") else {
            Issue.record("the model loaded")
            return
        }
        #expect(error.code == .invalidModel, "\(error)")
    }

    @Test("truncated and corrupt files are invalid models, never crashes")
    func corrupt() throws {
        let bytes = try Data(contentsOf: Fixtures.url("mlp.onnx"))
        var cases: [Data] = [Data(), Data("not a model at all".utf8), Data(repeating: 0xFF, count: 64)]
        for fraction in stride(from: 0.05, to: 1.0, by: 0.07) {
            cases.append(bytes.prefix(Int(Double(bytes.count) * fraction)))
        }
        // Bit flips through the file.
        for position in stride(from: 0, to: bytes.count, by: 37) {
            var flipped = bytes
            flipped[position] ^= 0x5A
            cases.append(flipped)
        }
        for (index, data) in cases.enumerated() {
            let repo = try TemporaryRepository()
            try repo.add(model: "m", bytes: data)
            if case .failure(let error) = try repo.loadOne("m") {
                #expect(error.code == .invalidModel || error.code == .unsupportedOperator || error.code == .invalidConfiguration, "case \(index): \(error)")
            } else if index < 3 + 14 {
                Issue.record("truncated case \(index) loaded")
            }
        }
    }

    @Test(
        "the config must agree with the graph",
        arguments: [
            ("max_batch_size: 8\ninput { name: \"x\" data_type: TYPE_FP32 dims: [ 6 ] }", ["input 'x'", "dims [6]", "[7]"]),
            ("max_batch_size: 8\ninput { name: \"x\" data_type: TYPE_INT32 dims: [ 7 ] }", ["input 'x'", "TYPE_INT32", "TYPE_FP32"]),
            ("max_batch_size: 8\ninput { name: \"y\" data_type: TYPE_FP32 dims: [ 7 ] }", ["input 'y' is not an input of the model", "'x'"]),
            ("max_batch_size: 8\noutput { name: \"p\" data_type: TYPE_FP32 dims: [ 5 ] }", ["output 'p' is not an output", "'probabilities'"]),
            ("max_batch_size: 0\ninput { name: \"x\" data_type: TYPE_FP32 dims: [ 7 ] }", ["dims [7]", "[-1, 7]"]),
            ("max_batch_size: 8\noutput { name: \"squashed\" data_type: TYPE_FP32 dims: [ 5, 1 ] }", ["output 'squashed'", "[5, 1]"]),
        ])
    func mismatchedConfig(config: String, fragments: [String]) throws {
        let error = try loadError("mlp.onnx", config: config)
        #expect(error.code == .invalidConfiguration, "\(error)")
        #expect(error.message.contains("config.pbtxt"), "\(error)")
        for fragment in fragments { #expect(error.message.contains(fragment), "\(error) lacks \(fragment)") }
    }

    @Test("batching needs a variable first dimension")
    func batchDimension() throws {
        let error = try loadError("broadcast_fp32.onnx", config: "max_batch_size: 4")
        #expect(error.matches(.invalidConfiguration, "max_batch_size is 4", "'A'"), "\(error)")
    }

    @Test("other platforms and bad configs fail the whole model")
    func modelLevel() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "tf", fixture: "mlp.onnx", config: "platform: \"tensorflow_savedmodel\"")
        try repo.add(model: "py", fixture: "mlp.onnx", config: "backend: \"python\"")
        try repo.add(model: "bad", fixture: "mlp.onnx", config: "max_batch: 1")
        try repo.add(model: "renamed", fixture: "mlp.onnx", config: "name: \"other\"")
        try repo.add(model: "empty", fixture: "mlp.onnx", versions: [], config: "")
        #expect(throws: RuntimeError.self) { try repo.repository.load("tf") }
        do {
            _ = try repo.repository.load("tf")
        } catch {
            #expect(error.matches(.invalidConfiguration, "tensorflow_savedmodel", "onnxruntime_onnx"))
        }
        do { _ = try repo.repository.load("py") } catch { #expect(error.matches(.invalidConfiguration, "'python'")) }
        do { _ = try repo.repository.load("bad") } catch { #expect(error.matches(.invalidConfiguration, "bad/config.pbtxt:1:", "'max_batch'")) }
        do { _ = try repo.repository.load("renamed") } catch { #expect(error.matches(.invalidConfiguration, "'other'", "'renamed'")) }
        do { _ = try repo.repository.load("empty") } catch { #expect(error.matches(.notFound, "no version folders")) }
        do { _ = try repo.repository.load("absent") } catch { #expect(error.code == .notFound) }
    }

    @Test("pipelines and processors are the frontends' to run: the worker lists neither and refuses to load them")
    func frontendModels() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "model", fixture: "mlp.onnx")
        let pipeline = """
            platform: "ensemble"
            input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] } ]
            output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
            ensemble_scheduling { step [ { model_name: "model" input_map { key: "a" value: "x" } output_map { key: "b" value: "y" } } ] }
            """
        try repo.add(model: "chain", fixture: "mlp.onnx", versions: [], config: pipeline)
        try repo.add(model: "pool", fixture: "mlp.onnx", versions: [], config: "platform: \"fulcrum_pooling\"")
        #expect(try repo.repository.modelNames() == ["model"])
        do { _ = try repo.repository.load("chain") } catch { #expect(error.matches(.invalidConfiguration, "the frontends run it")) }
        do { _ = try repo.repository.load("pool") } catch { #expect(error.matches(.invalidConfiguration, "fulcrum_pooling", "the frontends run it")) }
    }

    @Test("version policies pick versions; names list model folders")
    func versions() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "latest", fixture: "mlp.onnx", versions: [1, 2, 10])
        try repo.add(model: "two", fixture: "mlp.onnx", versions: [1, 2, 10], config: "version_policy { latest { num_versions: 2 } }")
        try repo.add(model: "all", fixture: "mlp.onnx", versions: [3, 1], config: "version_policy { all {} }")
        try repo.add(model: "specific", fixture: "mlp.onnx", versions: [1, 2], config: "version_policy { specific { versions: [2, 5] } }")
        try repo.add(model: "named", fixture: "mlp.onnx", config: "default_model_filename: \"net.onnx\"", filename: "net.onnx")
        try FileManager.default.createDirectory(at: repo.root.appendingPathComponent("not-a-model/data"), withIntermediateDirectories: true)
        #expect(try repo.repository.modelNames() == ["all", "latest", "named", "specific", "two"])
        #expect(try repo.repository.load("latest").map(\.version) == [10])
        #expect(try repo.repository.load("two").map(\.version) == [2, 10])
        #expect(try repo.repository.load("all").map(\.version) == [1, 3])
        let specific = try repo.repository.load("specific")
        #expect(specific.map(\.version) == [2, 5])
        #expect((try? specific[0].result.get()) != nil)
        if case .failure(let error) = specific[1].result {
            #expect(error.matches(.notFound, "version 5"))
        } else {
            Issue.record("version 5 should fail")
        }
        let named = try repo.loadOne("named").get()
        #expect(named.version == 1)
        #expect(named.configuration.defaultModelFilename == "net.onnx")
        #expect(throws: RuntimeError.self) { try ModelRepository(path: "/nonexistent/fulcrum").modelNames() }
    }
}

@Suite("refusals of the wider operator set")
struct OperatorRefusalTests {
    @Test("an embedding index out of range fails the batch, not the process")
    func gatherOutOfRange() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: "ops/gather_axis1_2d.onnx")
        let instance = try repo.loadOne("m").get().makeInstance()
        let x = Tensor(shape: [2, 6, 3], scalars: [Float](repeating: 1, count: 36))
        #expect {
            try instance.execute(["X": x, "I": Tensor(shape: [2, 2], scalars: [Int64(0), 1, 6, 2])])
        } throws: { error in
            (error as? RuntimeError)?.matches(.invalidInput, "index 6", "size 6") ?? false
        }
        // The instance keeps working.
        _ = try instance.execute(["X": x, "I": Tensor(shape: [2, 2], scalars: [Int64(0), 1, -6, 2])])
    }

    @Test("Gelu before opset 20 names the opset that introduced it")
    func geluTooOld() throws {
        var bytes = try Data(contentsOf: Fixtures.url("ops/gelu_opset20.onnx"))
        // Patch the opset_import version (the last varint 20 = 0x14 after key 0x10) to 17.
        let index = try #require(bytes.lastIndex(of: 0x14))
        bytes[index] = 17
        let repo = try TemporaryRepository()
        try repo.add(model: "m", bytes: bytes)
        guard case .failure(let error) = try repo.loadOne("m") else {
            Issue.record("loaded")
            return
        }
        #expect(error.matches(.unsupportedOperator, "'Gelu'", "opset 17", "from opset 20"), "\(error)")
    }
}

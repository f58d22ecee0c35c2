import Foundation
@testable import FulcrumFrontend
import FulcrumSchema
import Testing

/// The built-in processors on hand-computed cases, and how a repository's processors load.
@Suite struct ProcessorTests {
    static func setup(_ text: String, folder: String = "/nonexistent/p/1") throws -> ProcessorSetup {
        var configuration = try ModelConfiguration.parse(text: text, file: "p/config.pbtxt")
        configuration.name = "p"
        return ProcessorSetup(configuration: configuration, folder: folder, file: "p/config.pbtxt")
    }

    static let pooling = """
        platform: "fulcrum_pooling"
        max_batch_size: 8
        input [ { name: "tokens" data_type: TYPE_FP32 dims: [ -1, 2 ] }, { name: "mask" data_type: TYPE_INT64 dims: [ -1 ] } ]
        output [ { name: "vector" data_type: TYPE_FP32 dims: [ 2 ] } ]
        """

    @Test func meanPoolingAveragesTheTokensTheMaskKeeps() async throws {
        let processor = try PoolingProcessor(Self.setup(Self.pooling))
        // Two texts of three tokens, hidden size 2; the first text's last token is padding.
        let tokens = Tensor(shape: [2, 3, 2], scalars: [Float(1), 2, 3, 4, 100, 100, 1, 1, 2, 2, 3, 3])
        let mask = Tensor(shape: [2, 3], scalars: [Int64(1), 1, 0, 1, 1, 1])
        let out = try await processor.process(["tokens": tokens, "mask": mask], context: .init(model: "p", batching: true))
        #expect(out["vector"]?.shape == [2, 2])
        #expect(out["vector"]?.scalars(as: Float.self) == [2, 3, 2, 2])
    }

    @Test func clsPoolingWithNormalisation() async throws {
        let text = Self.pooling + "\nparameters { key: \"mode\" value: { string_value: \"cls\" } }\nparameters { key: \"normalize\" value: { string_value: \"true\" } }"
        let processor = try PoolingProcessor(Self.setup(text))
        let tokens = Tensor(shape: [1, 2, 2], scalars: [Float(3), 4, 9, 9])
        let out = try await processor.process(["tokens": tokens, "mask": Tensor(shape: [1, 2], scalars: [Int64(1), 1])], context: .init(model: "p", batching: true))
        #expect(out["vector"]?.scalars(as: Float.self) == [0.6, 0.8])
    }

    @Test func aMaskOfTheWrongShapeIsInvalidInput() async throws {
        let processor = try PoolingProcessor(Self.setup(Self.pooling))
        let tokens = Tensor(shape: [1, 3, 2], scalars: [Float](repeating: 1, count: 6))
        await #expect(throws: ProcessorError.self) {
            _ = try await processor.process(["tokens": tokens, "mask": Tensor(shape: [1, 2], scalars: [Int64(1), 1])], context: .init(model: "p", batching: true))
        }
    }

    static let rank = """
        platform: "fulcrum_rank"
        input [ { name: "scores" data_type: TYPE_FP32 dims: [ -1, 1 ] }, { name: "ids" data_type: TYPE_STRING dims: [ -1 ] } ]
        output [ { name: "top_ids" data_type: TYPE_STRING dims: [ -1 ] }, { name: "top_scores" data_type: TYPE_FP32 dims: [ -1 ] } ]
        parameters { key: "top_k" value: { string_value: "3" } }
        """

    @Test func rankKeepsTheBestKAndEqualScoresKeepTheirOrder() async throws {
        let processor = try RankProcessor(Self.setup(Self.rank))
        let scores = Tensor(shape: [5, 1], scalars: [Float(0.5), 0.9, 0.5, 0.1, 0.7])
        let ids = Tensor(bytes: ["a", "b", "c", "d", "e"].map { Array($0.utf8) }, shape: [5])
        let out = try await processor.process(["scores": scores, "ids": ids], context: .init(model: "p", batching: false))
        #expect(out["top_ids"]?.byteElements == ["b", "e", "a"].map { Array($0.utf8) })
        #expect(out["top_scores"]?.scalars(as: Float.self) == [0.9, 0.7, 0.5])
    }

    @Test func rankRefusesScoresThatDoNotMatchTheIds() async throws {
        let processor = try RankProcessor(Self.setup(Self.rank))
        let ids = Tensor(bytes: [[1], [2]], shape: [2])
        await #expect(throws: ProcessorError.self) {
            _ = try await processor.process(["scores": Tensor(shape: [3, 1], scalars: [Float(1), 2, 3]), "ids": ids], context: .init(model: "p", batching: false))
        }
    }

    @Test func classifyLabelsTheTopClasses() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("classify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("1"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "cat\ndog\nbird\n".write(to: folder.appendingPathComponent("labels.txt"), atomically: true, encoding: .utf8)
        let text = """
            platform: "fulcrum_classify"
            max_batch_size: 4
            input [ { name: "p" data_type: TYPE_FP32 dims: [ 3 ] } ]
            output [ { name: "top" data_type: TYPE_STRING dims: [ 2 ] label_filename: "labels.txt" } ]
            parameters { key: "top_k" value: { string_value: "2" } }
            """
        let processor = try ClassifyProcessor(Self.setup(text, folder: folder.appendingPathComponent("1").path))
        let out = try await processor.process(["p": Tensor(shape: [1, 3], scalars: [Float(0.2), 0.1, 0.7])], context: .init(model: "p", batching: true))
        #expect(out["top"]?.shape == [1, 2])
        #expect(out["top"]?.byteElements?.map { String(decoding: $0, as: UTF8.self) } == ["0.700000:2:bird", "0.200000:0:cat"])
    }

    @Test("a processor configured wrongly is listed UNAVAILABLE with the reason; a model folder is left to the workers")
    func repositoryLoading() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("frontend-models-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ name: String, _ text: String) throws {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(name), withIntermediateDirectories: true)
            try text.write(to: root.appendingPathComponent(name).appendingPathComponent("config.pbtxt"), atomically: true, encoding: .utf8)
        }
        try write("pool", Self.pooling)
        try write("bad_mode", Self.pooling + "\nparameters { key: \"mode\" value: { string_value: \"max\" } }")
        try write("no_such_kind", "platform: \"fulcrum_teleport\"")
        try write("model", "platform: \"onnxruntime_onnx\"")
        try write("broken_model", "platform: \"onnxruntime_onnx\" bogus: 1")
        try write("broken_pipeline", "platform: \"ensemble\" bogus: 1")
        let entries = Dictionary(uniqueKeysWithValues: try FrontendModels.load(repository: root.path).map { ($0.name, $0) })
        #expect(Set(entries.keys) == ["pool", "bad_mode", "no_such_kind", "broken_pipeline"])
        guard case .processor = entries["pool"] else { Issue.record("pool not loaded"); return }
        for (name, fragment) in [
            ("bad_mode", "parameter 'mode': 'max' is not one of mean, cls"),
            ("no_such_kind", "no processor has platform \"fulcrum_teleport\""),
            ("broken_pipeline", "unknown field 'bogus'"),
        ] {
            guard case .failed(_, let version, let reason) = entries[name] else {
                Issue.record("\(name) loaded")
                continue
            }
            #expect(version == "1")
            #expect(reason.contains(fragment), "\(reason)")
        }
    }

    @Test func theFeatureCacheNeverServesPastItsTTLAndStaysBounded() {
        let cache = FeatureCache(ttl: .milliseconds(100), capacity: 3)
        let second: UInt64 = 1_000_000_000
        cache.store([.int(1): [1], .int(2): [2]], now: 10 * second)
        #expect(cache.values(for: [.int(1), .int(2), .int(3)], now: 10 * second + 99_000_000) == [.int(1): [1], .int(2): [2]])
        #expect(cache.values(for: [.int(1)], now: 10 * second + 100_000_000).isEmpty)
        // Capacity: the oldest insertions go first.
        cache.store([.int(3): [3]], now: 11 * second)
        cache.store([.int(4): [4]], now: 11 * second + 1)
        cache.store([.int(5): [5]], now: 11 * second + 2)
        cache.store([.text("six"): [6]], now: 11 * second + 3)
        #expect(cache.count <= 3)
        let held = cache.values(for: [.int(3), .int(4), .int(5), .text("six")], now: 11 * second + 4)
        #expect(held == [.int(4): [4], .int(5): [5], .text("six"): [6]])
        // A TTL of 0 turns the cache off.
        let off = FeatureCache(ttl: .zero, capacity: 10)
        off.store([.int(1): [1]], now: second)
        #expect(off.values(for: [.int(1)], now: second).isEmpty)
    }

    @Test func featureLookupRefusesUnsafeNamesAndMissingSettings() throws {
        let base = """
            platform: "fulcrum_feature_lookup"
            input [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]
            output [ { name: "f" data_type: TYPE_FP32 dims: [ -1, 4 ] } ]
            parameters { key: "database" value: { string_value: "features" } }
            parameters { key: "user" value: { string_value: "fulcrum" } }
            parameters { key: "key_column" value: { string_value: "id" } }
            parameters { key: "value_column" value: { string_value: "v" } }
            """
        for (extra, fragment) in [
            ("parameters { key: \"table\" value: { string_value: \"t; DROP TABLE x\" } }", "is not a plain SQL name"),
            ("parameters { key: \"table\" value: { string_value: \"a.b.\" } }", "is not a plain SQL name"),
            ("", "needs the parameter 'table'"),
            ("parameters { key: \"table\" value: { string_value: \"t\" } } parameters { key: \"url_env\" value: { string_value: \"FULCRUM_TEST_UNSET_VARIABLE\" } }",
             "FULCRUM_TEST_UNSET_VARIABLE is not set"),
            ("parameters { key: \"table\" value: { string_value: \"t\" } } parameters { key: \"missing\" value: { string_value: \"ignore\" } }",
             "'missing': 'ignore' is not one of error, default"),
        ] {
            do {
                _ = try FeatureLookupProcessor(Self.setup(base + "\n" + extra))
                Issue.record("accepted: \(extra)")
            } catch let error as ProcessorError {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
    }
}

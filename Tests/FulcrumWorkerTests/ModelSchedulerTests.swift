import Foundation
import FulcrumRuntime
import FulcrumSchema
@testable import FulcrumWorker
import GRPCCore
import Testing

/// The execution side of batching: `ModelScheduler` with a real model (ranking_mlp's ONNX file
/// from examples/models under a configuration each test writes), real instances and dispatch
/// queues. `BatchSchedulerTests` covers the decisions; these cover carrying them out.
@Suite("model scheduler: gather, execute, scatter, answer")
struct ModelSchedulerTests {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/models")

    /// ranking_mlp (256 features in, one score out) loaded under `settings` (config.pbtxt lines
    /// after the name, platform and tensors).
    static func model(_ settings: String) throws -> Model {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-scheduler-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let version = root.appendingPathComponent("ranking/1")
        try FileManager.default.createDirectory(at: version, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: examples.appendingPathComponent("ranking_mlp/1/model.onnx"), to: version.appendingPathComponent("model.onnx"))
        let config = """
            name: "ranking"
            platform: "onnxruntime_onnx"
            input [ { name: "features" data_type: TYPE_FP32 dims: [ 256 ] } ]
            output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
            \(settings)
            """
        try config.write(to: root.appendingPathComponent("ranking/config.pbtxt"), atomically: true, encoding: .utf8)
        let loads = try ModelRepository(path: root.path).load("ranking")
        try #require(loads.count == 1)
        return try loads[0].result.get()
    }

    /// `rows` samples of 256 features, different for every `seed`.
    static func features(rows: Int, seed: Int) -> Tensor {
        let values = (0..<(rows * 256)).map { Float(($0 * 7919 + seed * 104_729) % 2003) / 1001.5 - 1 }
        return Tensor(shape: [rows, 256], scalars: values)
    }

    static func submission(_ inputs: [String: Tensor], deadline: ContinuousClock.Instant? = nil) -> ModelScheduler.Submission {
        let samples = inputs.values.first?.shape.first ?? 1
        return ModelScheduler.Submission(
            inputs: inputs, samples: samples, shapeKey: WorkerInferenceService.shapeKey(inputs, batching: true),
            priority: 0, timeout: nil, deadline: deadline, bytes: inputs.values.reduce(0) { $0 + $1.data.count })
    }

    /// Scores of `features` run alone on a fresh instance: what each rider of a batch must get.
    static func alone(_ model: Model, _ features: Tensor) throws -> [Float] {
        try model.makeInstance().execute(["features": features])["score"]!.scalars(as: Float.self)
    }

    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }
    }

    /// A queue delay no test waits out: only a full batch (or a cancellation) ends a wait, so
    /// the outcome does not depend on how fast a loaded machine runs the test.
    static let forever = "max_queue_delay_microseconds: 3600000000"

    @Test("requests that arrive together ride one batch, and each gets its own rows back", .timeLimit(.minutes(5)))
    func batchesAndScatters() async throws {
        // Only a full batch (4 samples) goes: the delay would otherwise hold them for an hour.
        let model = try Self.model("max_batch_size: 4\ndynamic_batching { \(Self.forever) }")
        let scheduler = try ModelScheduler(model: model, statistics: ModelStatistics())
        let inputs = [Self.features(rows: 1, seed: 1), Self.features(rows: 2, seed: 2), Self.features(rows: 1, seed: 3)]
        let executions = try await withThrowingTaskGroup(of: (Int, ModelScheduler.Execution).self) { group in
            for (index, features) in inputs.enumerated() {
                group.addTask { (index, try await scheduler.submit(Self.submission(["features": features]))) }
            }
            var results: [Int: ModelScheduler.Execution] = [:]
            for try await (index, execution) in group { results[index] = execution }
            return results
        }
        for (index, features) in inputs.enumerated() {
            let execution = try #require(executions[index])
            #expect(execution.batchSize == 4, "request \(index) rode a batch of \(execution.batchSize)")
            let score = try #require(execution.outputs["score"])
            #expect(score.shape == [features.shape[0], 1])
            #expect(Self.close(score.scalars(as: Float.self), try Self.alone(model, features)), "request \(index)")
        }
        #expect(scheduler.queueDepth == 0)
    }

    @Test("a model that does not batch answers each request alone, inline once measured short")
    func unbatchedRequestsRunAlone() async throws {
        let model = try Self.model("max_batch_size: 8")
        let scheduler = try ModelScheduler(model: model, statistics: ModelStatistics())
        for seed in 0..<6 {  // the first execution is measured on the queue, later ones may run inline
            let features = Self.features(rows: 1 + seed % 3, seed: seed)
            let execution = try await scheduler.submit(Self.submission(["features": features]))
            #expect(execution.batchSize == features.shape[0])
            #expect(Self.close(try #require(execution.outputs["score"]).scalars(as: Float.self), try Self.alone(model, features)))
        }
    }

    @Test("a failed execution answers every rider of its batch with the error", .timeLimit(.minutes(5)))
    func failuresReachEveryRider() async throws {
        let model = try Self.model("max_batch_size: 2\ndynamic_batching { \(Self.forever) }")
        let scheduler = try ModelScheduler(model: model, statistics: ModelStatistics())
        // Same shape key, different input names: gathering them into one batch fails.
        var odd = Self.submission(["features": Self.features(rows: 1, seed: 1)])
        odd.inputs = ["other": Self.features(rows: 1, seed: 1)]
        let submissions = [Self.submission(["features": Self.features(rows: 1, seed: 0)]), odd]
        let outcomes = await withTaskGroup(of: String.self) { group in
            for submission in submissions {
                group.addTask {
                    do {
                        _ = try await scheduler.submit(submission)
                        return "answered"
                    } catch let error as FulcrumSchema.RuntimeError {
                        return error.message
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == 2)
        #expect(outcomes.allSatisfy { $0.contains("batched requests disagree on input") }, "\(outcomes)")
        #expect(scheduler.queueDepth == 0)
    }

    @Test("a waiting request that is cancelled leaves the queue", .timeLimit(.minutes(5)))
    func cancellationLeavesTheQueue() async throws {
        let model = try Self.model("max_batch_size: 4\ndynamic_batching { \(Self.forever) }")
        let scheduler = try ModelScheduler(model: model, statistics: ModelStatistics())
        let waiting = Task { try await scheduler.submit(Self.submission(["features": Self.features(rows: 1, seed: 0)])) }
        while scheduler.queueDepth == 0 { try await Task.sleep(for: .milliseconds(1)) }
        waiting.cancel()
        // Served, it would return outputs (after the hour's delay); cancelled, it throws.
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(scheduler.queueDepth == 0)
    }

    @Test("a request whose deadline has passed is refused without using compute")
    func expiredDeadlinesAreRefused() async throws {
        let model = try Self.model("max_batch_size: 4")
        let statistics = ModelStatistics()
        let scheduler = try ModelScheduler(model: model, statistics: statistics)
        let expired = Self.submission(["features": Self.features(rows: 1, seed: 0)], deadline: ContinuousClock.now - .milliseconds(1))
        do {
            _ = try await scheduler.submit(expired)
            Issue.record("an expired request was answered")
        } catch let error as RPCError {
            #expect(error.code == .deadlineExceeded)
        }
        #expect(statistics.wire(name: "ranking", version: "1").executionCount == 0)
    }
}

@testable import FulcrumFrontend
import FulcrumProtocol
import Testing

@Suite struct StatisticsMergerTests {
    func stats(_ name: String, inferences: UInt64, executions: UInt64, success: UInt64, batch: UInt64, last: UInt64) -> Inference_ModelStatisticsResponse {
        var s = Inference_ModelStatistics()
        s.name = name
        s.version = "1"
        s.inferenceCount = inferences
        s.executionCount = executions
        s.lastInference = last
        s.inferenceStats.success.count = success
        s.inferenceStats.success.ns = success * 1000
        var b = Inference_InferBatchStatistics()
        b.batchSize = batch
        b.computeInfer.count = executions
        b.computeInfer.ns = executions * 10
        s.batchStats = [b]
        var response = Inference_ModelStatisticsResponse()
        response.modelStats = [s]
        return response
    }

    @Test func sumsCountsAndMergesBatchSizes() {
        var merger = StatisticsMerger()
        merger.add(stats("m", inferences: 10, executions: 5, success: 5, batch: 2, last: 100))
        merger.add(stats("m", inferences: 4, executions: 4, success: 4, batch: 1, last: 300))
        merger.add(stats("m", inferences: 2, executions: 1, success: 1, batch: 2, last: 200))
        let result = merger.result
        #expect(result.count == 1)
        #expect(result[0].inferenceCount == 16)
        #expect(result[0].executionCount == 10)
        #expect(result[0].lastInference == 300)
        #expect(result[0].inferenceStats.success.count == 10)
        #expect(result[0].inferenceStats.success.ns == 10_000)
        #expect(result[0].batchStats.map(\.batchSize) == [1, 2])
        #expect(result[0].batchStats[1].computeInfer.count == 6)
    }
}

import FulcrumProtocol

/// Adds up ModelStatistics from several workers into one answer per model version: counts and
/// durations summed, batch statistics merged by batch size, the latest last-inference time.
struct StatisticsMerger {
    private var byKey: [String: Inference_ModelStatistics] = [:]

    mutating func add(_ response: Inference_ModelStatisticsResponse) {
        for stats in response.modelStats {
            let key = stats.name + "\u{0}" + stats.version
            guard var total = byKey[key] else {
                byKey[key] = stats
                continue
            }
            total.lastInference = max(total.lastInference, stats.lastInference)
            total.inferenceCount += stats.inferenceCount
            total.executionCount += stats.executionCount
            var i = total.inferenceStats
            let o = stats.inferenceStats
            i.success = Self.sum(i.success, o.success)
            i.fail = Self.sum(i.fail, o.fail)
            i.queue = Self.sum(i.queue, o.queue)
            i.computeInput = Self.sum(i.computeInput, o.computeInput)
            i.computeInfer = Self.sum(i.computeInfer, o.computeInfer)
            i.computeOutput = Self.sum(i.computeOutput, o.computeOutput)
            i.cacheHit = Self.sum(i.cacheHit, o.cacheHit)
            i.cacheMiss = Self.sum(i.cacheMiss, o.cacheMiss)
            total.inferenceStats = i
            var batches = Dictionary(total.batchStats.map { ($0.batchSize, $0) }, uniquingKeysWith: { a, _ in a })
            for batch in stats.batchStats {
                if var existing = batches[batch.batchSize] {
                    existing.computeInput = Self.sum(existing.computeInput, batch.computeInput)
                    existing.computeInfer = Self.sum(existing.computeInfer, batch.computeInfer)
                    existing.computeOutput = Self.sum(existing.computeOutput, batch.computeOutput)
                    batches[batch.batchSize] = existing
                } else {
                    batches[batch.batchSize] = batch
                }
            }
            total.batchStats = batches.keys.sorted().map { batches[$0]! }
            byKey[key] = total
        }
    }

    /// The merged statistics, sorted by model name and version.
    var result: [Inference_ModelStatistics] {
        byKey.values.sorted { ($0.name, Int($0.version) ?? 0) < ($1.name, Int($1.version) ?? 0) }
    }

    private static func sum(_ a: Inference_StatisticDuration, _ b: Inference_StatisticDuration) -> Inference_StatisticDuration {
        var d = Inference_StatisticDuration()
        d.count = a.count + b.count
        d.ns = a.ns + b.ns
        return d
    }
}

import FulcrumProtocol
import Foundation
import Synchronization

/// Counters for one served model version: what ModelStatistics reports (Triton's semantics) and
/// what the worker's load reports carry to the balancer. Thread-safe; cheap to update.
final class ModelStatistics: Sendable {
    private struct Duration: Sendable {
        var count: UInt64 = 0
        var ns: UInt64 = 0
        mutating func add(_ ns: UInt64) {
            count += 1
            self.ns &+= ns
        }
        var wire: Inference_StatisticDuration {
            var d = Inference_StatisticDuration()
            d.count = count
            d.ns = ns
            return d
        }
    }

    private struct BatchStats: Sendable {
        var input = Duration()
        var infer = Duration()
        var output = Duration()
    }

    private struct State: Sendable {
        var success = Duration()
        var fail = Duration()
        var queue = Duration()
        var computeInput = Duration()
        var computeInfer = Duration()
        var computeOutput = Duration()
        var inferenceCount: UInt64 = 0
        var executionCount: UInt64 = 0
        var lastInferenceMs: UInt64 = 0
        var batches: [Int: BatchStats] = [:]
        var arrivalsSinceReport: UInt64 = 0
        var samplesSinceReport: [Fulcrum_Control_V1_BatchSample] = []
        var dequeuedSinceReport: UInt64 = 0
        var queueUsSinceReport: UInt64 = 0
        var queued: Int = 0
    }

    private let state = Mutex(State())

    /// A request arrived and entered the queue.
    func arrived() {
        state.withLock {
            $0.arrivalsSinceReport += 1
            $0.queued += 1
        }
    }

    /// A request left the queue (to execute, or because it failed or was cancelled).
    func leftQueue() {
        state.withLock { $0.queued -= 1 }
    }

    /// One execution of `batchSize` samples finished successfully.
    func executed(batchSize: Int, inputNs: UInt64, inferNs: UInt64, outputNs: UInt64) {
        state.withLock {
            $0.executionCount += 1
            $0.inferenceCount += UInt64(batchSize)
            $0.computeInput.add(inputNs)
            $0.computeInfer.add(inferNs)
            $0.computeOutput.add(outputNs)
            var batch = $0.batches[batchSize] ?? BatchStats()
            batch.input.add(inputNs)
            batch.infer.add(inferNs)
            batch.output.add(outputNs)
            $0.batches[batchSize] = batch
            var sample = Fulcrum_Control_V1_BatchSample()
            sample.batchSize = UInt32(batchSize)
            sample.serviceUs = (inputNs + inferNs + outputNs) / 1000
            if $0.samplesSinceReport.count < 4096 { $0.samplesSinceReport.append(sample) }
        }
    }

    /// A request finished: successfully (with its queue time) or not.
    func finished(success: Bool, totalNs: UInt64, queueNs: UInt64?) {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        state.withLock {
            if success {
                $0.success.add(totalNs)
                if let queueNs {
                    $0.queue.add(queueNs)
                    $0.dequeuedSinceReport += 1
                    $0.queueUsSinceReport &+= queueNs / 1000
                }
                $0.lastInferenceMs = now
            } else {
                $0.fail.add(totalNs)
            }
        }
    }

    /// Requests waiting now.
    var queueDepth: Int { state.withLock { max($0.queued, 0) } }

    /// The ModelStatistics message for this version.
    func wire(name: String, version: String) -> Inference_ModelStatistics {
        state.withLock { s in
            var stats = Inference_ModelStatistics()
            stats.name = name
            stats.version = version
            stats.lastInference = s.lastInferenceMs
            stats.inferenceCount = s.inferenceCount
            stats.executionCount = s.executionCount
            var infer = Inference_InferStatistics()
            infer.success = s.success.wire
            infer.fail = s.fail.wire
            infer.queue = s.queue.wire
            infer.computeInput = s.computeInput.wire
            infer.computeInfer = s.computeInfer.wire
            infer.computeOutput = s.computeOutput.wire
            infer.cacheHit = .init()
            infer.cacheMiss = .init()
            stats.inferenceStats = infer
            stats.batchStats = s.batches.keys.sorted().map { size in
                let b = s.batches[size]!
                var wire = Inference_InferBatchStatistics()
                wire.batchSize = UInt64(size)
                wire.computeInput = b.input.wire
                wire.computeInfer = b.infer.wire
                wire.computeOutput = b.output.wire
                return wire
            }
            return stats
        }
    }

    /// The load since the previous call, for the balancer; resets the per-report counters.
    func takeLoad(name: String, version: String) -> Fulcrum_Control_V1_ModelLoad {
        state.withLock { s in
            var load = Fulcrum_Control_V1_ModelLoad()
            load.name = name
            load.version = version
            load.arrivals = s.arrivalsSinceReport
            load.queueDepth = UInt32(max(s.queued, 0))
            load.samples = s.samplesSinceReport
            load.dequeued = s.dequeuedSinceReport
            load.queueUsTotal = s.queueUsSinceReport
            s.dequeuedSinceReport = 0
            s.queueUsSinceReport = 0
            s.arrivalsSinceReport = 0
            s.samplesSinceReport.removeAll(keepingCapacity: true)
            return load
        }
    }
}

import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import Foundation
import Metrics
import Synchronization

/// Shadow traffic: a sampled copy of a model's served requests goes to a shadow version after the
/// served answer has left; the shadow's answer is compared with the served one and dropped. A copy
/// never delays or fails the request it copies, and copies are the first thing shed: at most
/// `maxInFlight` are out at once, the rest are counted as dropped.
final class ShadowTraffic: Sendable {
    static let maxInFlight = 16

    struct Key: Hashable, Sendable {
        var model: String
        var version: String
    }

    /// Comparisons since the last report to the balancer.
    struct Totals: Sendable {
        var compared: UInt64 = 0
        var identical: UInt64 = 0
        var failed: UInt64 = 0
        var dropped: UInt64 = 0
        var maxAbsError = 0.0
        var maxRelError = 0.0
        var argmaxRows: UInt64 = 0
        var argmaxAgreed: UInt64 = 0
        var incomparable: UInt64 = 0
        var servedLatency = LatencyHistogram()
        var shadowLatency = LatencyHistogram()
    }

    private struct Handles {
        var compared: Counter
        var failed: Counter
        var dropped: Counter
        var argmaxDisagreed: Counter
        var maxAbsError: Gauge
        var maxRelError: Gauge
        var maxAbsSeen = 0.0
        var maxRelSeen = 0.0

        init(_ key: Key) {
            let dimensions = [("model", key.model), ("version", key.version)]
            compared = Counter(label: "fulcrum_shadow_requests_total", dimensions: dimensions + [("outcome", "compared")])
            failed = Counter(label: "fulcrum_shadow_requests_total", dimensions: dimensions + [("outcome", "failed")])
            dropped = Counter(label: "fulcrum_shadow_requests_total", dimensions: dimensions + [("outcome", "dropped")])
            argmaxDisagreed = Counter(label: "fulcrum_shadow_argmax_disagreements_total", dimensions: dimensions)
            maxAbsError = Gauge(label: "fulcrum_shadow_max_abs_error", dimensions: dimensions)
            maxRelError = Gauge(label: "fulcrum_shadow_max_rel_error", dimensions: dimensions)
        }
    }

    private let inFlight = Atomic<Int>(0)
    private let totals = Mutex<[Key: Totals]>([:])
    /// Metric handles per shadow version (made once; the shadows come from the balancer's routes,
    /// not from clients, so the set is small).
    private let handles = Mutex<[Key: Handles]>([:])

    /// Sends copies of `request` (answered by `response` in `servedMicroseconds`) to the route's
    /// shadow versions it samples. `send` makes the call; it runs in a task of its own.
    func copy(
        _ request: Inference_ModelInferRequest, answeredBy response: Inference_ModelInferResponse, servedMicroseconds: UInt64,
        shadows: [TrafficRoute.Split], send: @escaping @Sendable (Inference_ModelInferRequest) async throws -> Inference_ModelInferResponse
    ) {
        for shadow in shadows where QuickRandom.int(in: 0..<TrafficRoute.wholeBasisPoints) < shadow.basisPoints {
            let key = Key(model: request.modelName, version: shadow.version)
            guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maxInFlight else {
                inFlight.subtract(1, ordering: .relaxed)
                record(key) { $0.dropped += 1 } metrics: { $0.dropped.increment() }
                continue
            }
            var copy = request
            copy.modelVersion = shadow.version
            Task {
                defer { inFlight.subtract(1, ordering: .relaxed) }
                let started = DispatchTime.now().uptimeNanoseconds
                do {
                    let answer = try await send(copy)
                    let elapsed = (DispatchTime.now().uptimeNanoseconds - started) / 1000
                    let comparison = AnswerComparison(served: response, shadow: answer)
                    record(key) { totals in
                        totals.compared += 1
                        if comparison.identical { totals.identical += 1 }
                        totals.maxAbsError = max(totals.maxAbsError, comparison.maxAbsError)
                        totals.maxRelError = max(totals.maxRelError, comparison.maxRelError)
                        totals.argmaxRows += comparison.argmaxRows
                        totals.argmaxAgreed += comparison.argmaxAgreed
                        if comparison.incomparable { totals.incomparable += 1 }
                        totals.servedLatency.record(microseconds: servedMicroseconds)
                        totals.shadowLatency.record(microseconds: elapsed)
                    } metrics: { handles in
                        handles.compared.increment()
                        if comparison.argmaxRows > comparison.argmaxAgreed {
                            handles.argmaxDisagreed.increment(by: Int64(comparison.argmaxRows - comparison.argmaxAgreed))
                        }
                        if comparison.maxAbsError > handles.maxAbsSeen {
                            handles.maxAbsSeen = comparison.maxAbsError
                            handles.maxAbsError.record(comparison.maxAbsError)
                        }
                        if comparison.maxRelError > handles.maxRelSeen {
                            handles.maxRelSeen = comparison.maxRelError
                            handles.maxRelError.record(comparison.maxRelError)
                        }
                    }
                } catch {
                    record(key) { $0.failed += 1 } metrics: { $0.failed.increment() }
                }
            }
        }
    }

    private func record(_ key: Key, _ change: (inout Totals) -> Void, metrics: (inout Handles) -> Void) {
        totals.withLock { change(&$0[key, default: Totals()]) }
        handles.withLock { all in
            if all[key] == nil { all[key] = Handles(key) }
            metrics(&all[key]!)
        }
    }

    /// Shadow copies currently out.
    var outstanding: Int { inFlight.load(ordering: .relaxed) }

    /// The comparisons since the previous call, and a reset.
    func take() -> [Fulcrum_Control_V1_ShadowSample] {
        let taken = totals.withLock { totals -> [Key: Totals] in
            defer { totals.removeAll(keepingCapacity: true) }
            return totals
        }
        return taken.sorted { ($0.key.model, $0.key.version) < ($1.key.model, $1.key.version) }.map { key, t in
            var sample = Fulcrum_Control_V1_ShadowSample()
            sample.model = key.model
            sample.version = key.version
            sample.compared = t.compared
            sample.identical = t.identical
            sample.failed = t.failed
            sample.dropped = t.dropped
            sample.maxAbsError = t.maxAbsError
            sample.maxRelError = t.maxRelError
            sample.argmaxRows = t.argmaxRows
            sample.argmaxAgreed = t.argmaxAgreed
            sample.incomparable = t.incomparable
            sample.servedLatencyBuckets = t.servedLatency.counts
            sample.shadowLatencyBuckets = t.shadowLatency.counts
            return sample
        }
    }
}

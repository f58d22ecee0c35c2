import FulcrumProtocol
import FulcrumService
import Synchronization

/// What this frontend measured of the network to the workers, per model, since it last told the
/// balancer: answered requests and the sum of their network time (round trip to the worker minus
/// the worker's own time, `fulcrum.network_us`). Thread-safe; the `PoolWatcher` sends and resets
/// it about once a second.
final class NetworkStatistics: Sendable {
    private struct Totals {
        var requests: UInt64 = 0
        var microseconds: UInt64 = 0
        /// The latest samples (a ring of at most `kept`), for the p99.
        var recent: [UInt64] = []
        var next = 0

        mutating func add(_ value: UInt64) {
            requests += 1
            microseconds += value
            if recent.count < NetworkStatistics.kept {
                recent.append(value)
            } else {
                recent[next] = value
                next = (next + 1) % NetworkStatistics.kept
            }
        }
    }

    /// Samples kept per model between reports for the p99.
    static let kept = 4096

    private let totals = Mutex<[String: Totals]>([:])

    /// Shadow copies and their comparisons (reported with the rest).
    let shadows = ShadowTraffic()

    private struct VersionTotals {
        var requests: UInt64 = 0
        var errors: UInt64 = 0
        var latency = LatencyHistogram()
    }

    private struct VersionKey: Hashable {
        var model: String
        var version: String
    }

    /// Answers per version of a model in a progressive rollout (only those are recorded).
    private let versions = Mutex<[VersionKey: VersionTotals]>([:])

    /// Adds one request routed to a version in a rollout: its latency in the frontend, or a failure.
    func recordVersion(model: String, version: String, microseconds: UInt64, failed: Bool) {
        versions.withLock { versions in
            let key = VersionKey(model: model, version: version)
            versions[key, default: VersionTotals()].requests += 1
            if failed {
                versions[key, default: VersionTotals()].errors += 1
            } else {
                versions[key, default: VersionTotals()].latency.record(microseconds: microseconds)
            }
        }
    }

    /// The version samples since the previous call, and a reset.
    func takeVersions() -> [Fulcrum_Control_V1_VersionSample] {
        let taken = versions.withLock { versions -> [VersionKey: VersionTotals] in
            defer { versions.removeAll(keepingCapacity: true) }
            return versions
        }
        return taken.sorted { ($0.key.model, $0.key.version) < ($1.key.model, $1.key.version) }.map { key, totals in
            var sample = Fulcrum_Control_V1_VersionSample()
            sample.model = key.model
            sample.version = key.version
            sample.requests = totals.requests
            sample.errors = totals.errors
            sample.latencyBuckets = totals.latency.counts
            return sample
        }
    }

    /// Adds one forwarded request's network time.
    func record(model: String, networkMicroseconds: Int64) {
        let value = UInt64(max(0, networkMicroseconds))
        // Mutated in place (a copy out of the dictionary would copy the sample ring on every request).
        totals.withLock { $0[model, default: Totals()].add(value) }
    }

    /// The samples since the previous call (empty when nothing was forwarded), and a reset.
    func take() -> [Fulcrum_Control_V1_NetworkSample] {
        let taken = totals.withLock { totals -> [String: Totals] in
            defer { totals.removeAll(keepingCapacity: true) }
            return totals
        }
        return taken.sorted { $0.key < $1.key }.map { name, totals in
            var sample = Fulcrum_Control_V1_NetworkSample()
            sample.model = name
            sample.requests = totals.requests
            sample.networkUsTotal = totals.microseconds
            let sorted = totals.recent.sorted()
            sample.networkUsP99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
            return sample
        }
    }
}

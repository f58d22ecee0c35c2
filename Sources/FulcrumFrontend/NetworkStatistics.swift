import FulcrumProtocol
import Synchronization

/// What this frontend measured of the network to the workers, per model, since it last told the
/// balancer: answered requests and the sum of their network time (round trip to the worker minus
/// the worker's own time, `fulcrum.network_us`). Thread-safe; the `PoolWatcher` sends and resets
/// it about once a second.
final class NetworkStatistics: Sendable {
    private struct Totals {
        var requests: UInt64 = 0
        var microseconds: UInt64 = 0
    }

    private let totals = Mutex<[String: Totals]>([:])

    /// Adds one forwarded request's network time.
    func record(model: String, networkMicroseconds: Int64) {
        totals.withLock {
            $0[model, default: Totals()].requests += 1
            $0[model, default: Totals()].microseconds += UInt64(max(0, networkMicroseconds))
        }
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
            return sample
        }
    }
}

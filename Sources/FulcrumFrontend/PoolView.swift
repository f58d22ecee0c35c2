import FulcrumProtocol
import FulcrumService
import Synchronization

/// The frontend's live copy of the pool, from the balancer's snapshots, indexed for routing:
/// which workers serve which model versions. If the balancer goes away the last snapshot stays
/// in use; workers the frontend saw fail are avoided for a short while on top of it.
final class PoolView: Sendable {
    /// A worker that serves a model version now.
    struct Replica: Sendable {
        var model: String
        var workerID: String
        var address: HostPort
        var version: String
        var contentHash: String
        var queueDepth: Int
    }

    /// What the pool knows about one model name.
    struct ModelPlacement: Sendable {
        var replicas: [Replica] = []
        /// Versions listed only as UNAVAILABLE, with a reason.
        var unavailable: [(version: String, reason: String)] = []

        /// Served versions, ascending numerically.
        var versions: [String] {
            Array(Set(replicas.map(\.version))).sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
        }
    }

    private struct State {
        var snapshot = Fulcrum_Control_V1_PoolSnapshot()
        var received = false
        var models: [String: ModelPlacement] = [:]
        var readyWorkers: [String: HostPort] = [:]
        var suspectUntil: [String: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex(State())
    private let clock = ContinuousClock()

    /// Replaces the view with a new snapshot from the balancer.
    func update(_ snapshot: Fulcrum_Control_V1_PoolSnapshot) {
        var models: [String: ModelPlacement] = [:]
        var ready: [String: HostPort] = [:]
        for worker in snapshot.workers {
            guard worker.state == .ready, let address = HostPort(parsing: worker.address) else { continue }
            ready[worker.workerID] = address
            let depths = Dictionary(worker.lastLoad.models.map { ($0.name, Int($0.queueDepth)) }, uniquingKeysWith: +)
            for model in worker.models {
                if model.state == "READY" {
                    models[model.name, default: ModelPlacement()].replicas.append(
                        Replica(
                            model: model.name, workerID: worker.workerID, address: address, version: model.version,
                            contentHash: model.contentHash, queueDepth: depths[model.name] ?? 0
                        )
                    )
                } else {
                    models[model.name, default: ModelPlacement()].unavailable.append((model.version, model.reason))
                }
            }
        }
        state.withLock {
            $0.snapshot = snapshot
            $0.received = true
            $0.models = models
            $0.readyWorkers = ready
        }
    }

    /// Whether a snapshot has arrived and at least one worker is ready.
    var isReady: Bool { state.withLock { $0.received && !$0.readyWorkers.isEmpty } }

    /// The latest snapshot.
    var snapshot: Fulcrum_Control_V1_PoolSnapshot { state.withLock { $0.snapshot } }

    /// Ready workers and their addresses.
    var readyWorkers: [String: HostPort] { state.withLock { $0.readyWorkers } }

    /// Where `name` is served; nil when no worker lists it at all.
    func placement(of name: String) -> ModelPlacement? {
        state.withLock { $0.models[name] }
    }

    /// Avoid `workerID` for `duration` (it failed a call); the snapshot will drop it if it is gone.
    func markSuspect(_ workerID: String, for duration: Duration = .seconds(2)) {
        let until = clock.now + duration
        state.withLock { $0.suspectUntil[workerID] = until }
    }

    /// Workers to avoid now.
    var suspects: Set<String> {
        let now = clock.now
        return state.withLock { s in
            s.suspectUntil = s.suspectUntil.filter { $0.value > now }
            return Set(s.suspectUntil.keys)
        }
    }
}

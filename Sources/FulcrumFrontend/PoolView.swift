import FulcrumProtocol
import FulcrumService
import Synchronization

/// The frontend's live copy of the pool, from the balancer's snapshots, indexed for routing:
/// which workers serve which model versions. If the balancer goes away the last snapshot stays
/// in use; workers the frontend saw fail are avoided for a short while on top of it.
///
/// A balancer that has just (re)started knows fewer workers than were serving: they rejoin it
/// within a second or so. So the first snapshot of a new WatchPool stream does not replace the
/// pool outright: ready workers it lacks (by address) are carried over for `carryGrace`, until
/// a snapshot says what they are now (READY, DRAINING; not STARTING, which a rejoining worker
/// is until its first report) or the grace ends; a carried worker that fails a call is avoided
/// like any other (`markSuspect`), and the retry goes elsewhere.
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
        /// Ready workers from before the current stream that its snapshots have not listed yet.
        var carried: [Fulcrum_Control_V1_WorkerInfo] = []
        var carriedUntil: ContinuousClock.Instant? = nil
        var received = false
        var models: [String: ModelPlacement] = [:]
        var readyWorkers: [String: HostPort] = [:]
        var suspectUntil: [String: ContinuousClock.Instant] = [:]
        var routes: [String: TrafficRoute] = [:]
    }

    private let state = Mutex(State())
    /// Whether any route is set: requests of a cluster without routes skip the lock.
    private let hasRoutes = Atomic<Bool>(false)
    private let clock = ContinuousClock()

    /// How long workers missing from a new stream's first snapshot stay in the view.
    static let carryGrace: Duration = .seconds(10)

    /// Replaces the view with a new snapshot from the balancer. `startsStream`: the first
    /// snapshot of a new WatchPool stream (possibly from a restarted balancer), whose missing
    /// ready workers are carried over for `carryGrace`.
    func update(_ snapshot: Fulcrum_Control_V1_PoolSnapshot, startsStream: Bool = false) {
        let now = clock.now
        // A worker that rejoins shows as STARTING until its first report; keep carrying it
        // until the new balancer says what it is now (READY, DRAINING, UNREADY).
        let listed = Set(snapshot.workers.filter { $0.state != .starting && $0.state != .unspecified }.map(\.address))
        let carried: [Fulcrum_Control_V1_WorkerInfo] = state.withLock { s in
            if startsStream && s.received {
                let previous = s.snapshot.workers.filter { $0.state == .ready && !listed.contains($0.address) }
                s.carried = previous
                s.carriedUntil = previous.isEmpty ? nil : now + Self.carryGrace
            } else {
                s.carried.removeAll { listed.contains($0.address) }
                if let until = s.carriedUntil, now >= until { s.carried = [] }
            }
            if s.carried.isEmpty { s.carriedUntil = nil }
            return s.carried
        }
        var effective = snapshot
        let carriedAddresses = Set(carried.map(\.address))
        effective.workers.removeAll { carriedAddresses.contains($0.address) }
        effective.workers += carried
        var models: [String: ModelPlacement] = [:]
        var ready: [String: HostPort] = [:]
        for worker in effective.workers {
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
        // Routes were checked by the balancer; one that fails the same checks here (a newer or
        // older balancer) is left out rather than half applied.
        var routes: [String: TrafficRoute] = [:]
        for wire in snapshot.routes {
            let route = TrafficRoute(wire)
            if (try? route.check()) != nil { routes[route.model] = route }
        }
        state.withLock {
            $0.snapshot = effective
            $0.received = true
            $0.models = models
            $0.readyWorkers = ready
            $0.routes = routes
        }
        hasRoutes.store(!routes.isEmpty, ordering: .releasing)
    }

    /// The traffic route for `model`, if the balancer set one.
    func route(for model: String) -> TrafficRoute? {
        guard hasRoutes.load(ordering: .acquiring) else { return nil }
        return state.withLock { $0.routes[model] }
    }

    /// Whether a snapshot has arrived from the balancer.
    var hasSnapshot: Bool { state.withLock { $0.received } }

    /// Whether a snapshot has arrived and at least one worker is ready.
    var isReady: Bool { state.withLock { $0.received && !$0.readyWorkers.isEmpty } }

    /// Workers carried over from before the current stream (not in its snapshots yet).
    var carriedWorkers: [String] { state.withLock { $0.carried.map(\.workerID) } }

    /// The latest snapshot, with any carried workers.
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

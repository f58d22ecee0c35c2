import Synchronization

/// `--placement demand` over time: turns the `PlacementPlanner`'s moves into directives on each
/// worker's Report stream, safely.
///
/// - Demand is the planner's workers for each model at its current rate (1 for a model with no
///   traffic yet); a lower demand is followed only after it has held for `stabilisation`, so a
///   lull does not unload a model that traffic is about to need again.
/// - A load is sent once and sent again only after `loadRetry` without the worker reporting it.
/// - An unload happens in two steps: the model is marked UNLOADING in the pool snapshot (frontends
///   stop routing to that replica), and only after `grace` does the worker get the directive, so
///   no request is sent to a replica that is going away. Requests already there finish.
final class PlacementCoordinator: Sendable {
    private struct Target {
        var workers: Int
        var lowerSince: ContinuousClock.Instant?
    }

    private struct State {
        var targets: [String: Target] = [:]
        var loadsSent: [String: [String: ContinuousClock.Instant]] = [:]
        var unloading: [String: [String: ContinuousClock.Instant]] = [:]
        var outbox: [String: [PlacementPlanner.Action]] = [:]
        var log: [String] = []
    }

    let stabilisation: Duration
    let grace: Duration
    let loadRetry: Duration
    private let state = Mutex(State())

    init(stabilisation: Duration = .seconds(10), grace: Duration = .milliseconds(1500), loadRetry: Duration = .seconds(15)) {
        self.stabilisation = stabilisation
        self.grace = grace
        self.loadRetry = loadRetry
    }

    /// Re-plans from the pool and each model's demand (planned workers, nil when unknown).
    /// Returns the models to show as UNLOADING per worker, and lines to log for new moves.
    func step(
        now: ContinuousClock.Instant, pool: Pool, planned: [String: Int?]
    ) -> (unloading: [String: Set<String>], log: [String]) {
        state.withLock { s in
            var workers: [PlacementPlanner.Worker] = []
            var bytes: [String: UInt64] = [:]
            var hostedAnywhere: Set<String> = []
            for worker in pool.workers where worker.state == .ready {
                var hosted: [String: PlacementPlanner.Hosted] = [:]
                for model in worker.models where model.state == .ready || model.state == .unloading {
                    let marked = s.unloading[worker.id]?[model.name] != nil
                    hosted[model.name] = .init(state: marked ? .unloading : .ready, bytes: model.memoryBytes)
                    bytes[model.name] = max(bytes[model.name] ?? 0, model.memoryBytes)
                    hostedAnywhere.insert(model.name)
                }
                for (model, sent) in s.loadsSent[worker.id] ?? [:] where hosted[model] == nil {
                    if now - sent < loadRetry { hosted[model] = .init(state: .loading, bytes: bytes[model] ?? 0) }
                }
                // Loads the worker has carried out, and unloads it has, are done.
                s.loadsSent[worker.id] = (s.loadsSent[worker.id] ?? [:]).filter { hosted[$0.key]?.state == .loading }
                s.unloading[worker.id] = (s.unloading[worker.id] ?? [:]).filter { hosted[$0.key] != nil }
                workers.append(.init(id: worker.id, memoryBytes: worker.device.memoryBytes, hosted: hosted))
            }
            let live = Set(workers.map(\.id))
            s.loadsSent = s.loadsSent.filter { live.contains($0.key) }
            s.unloading = s.unloading.filter { live.contains($0.key) }

            var demands: [PlacementPlanner.Demand] = []
            for model in hostedAnywhere.sorted() {
                let wanted = max(1, (planned[model] ?? nil) ?? 1)
                var target = s.targets[model] ?? Target(workers: wanted)
                if wanted >= target.workers {
                    target = Target(workers: wanted)
                } else if let since = target.lowerSince {
                    if now - since >= stabilisation { target = Target(workers: wanted) }
                } else {
                    target.lowerSince = now
                }
                s.targets[model] = target
                demands.append(.init(model: model, workers: target.workers, bytes: bytes[model] ?? 0))
            }
            var lines: [String] = []
            for action in PlacementPlanner.plan(workers: workers, demands: demands).actions {
                switch action {
                case .load(let worker, let model):
                    guard s.loadsSent[worker]?[model] == nil else { continue }
                    s.loadsSent[worker, default: [:]][model] = now
                    s.outbox[worker, default: []].append(action)
                    lines.append("placement: \(action) (demand \(s.targets[model]?.workers ?? 1) workers)")
                case .unload(let worker, let model):
                    guard s.unloading[worker]?[model] == nil else { continue }
                    s.unloading[worker, default: [:]][model] = now
                    lines.append("placement: \(action) after \(grace) (demand \(s.targets[model]?.workers ?? 1) workers)")
                }
            }
            // Unloads whose grace has passed go out now.
            for (worker, models) in s.unloading {
                for (model, marked) in models where now - marked >= grace {
                    s.outbox[worker, default: []].append(.unload(worker: worker, model: model))
                    s.unloading[worker]?[model] = .distantFuture
                }
            }
            return (s.unloading.mapValues { Set($0.keys) }.filter { !$0.value.isEmpty }, lines)
        }
    }

    /// The loads and unloads waiting for `worker` (sent as directives on its Report stream), and a
    /// reset.
    func take(for worker: String) -> [PlacementPlanner.Action] {
        state.withLock { $0.outbox.removeValue(forKey: worker) ?? [] }
    }
}

extension ContinuousClock.Instant {
    /// A time no grace period reaches: marks an unload whose directive has gone out.
    fileprivate static var distantFuture: ContinuousClock.Instant { .now + .seconds(1_000_000_000) }
}

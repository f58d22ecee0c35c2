import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The balancer's capacity state shared by the control service (which feeds it reports and
/// answers Status from it, `CapacityState+Wire.swift`), the autoscaler loop (which ticks it and
/// decides) and the metrics endpoint.
final class CapacityState: Sendable {
    /// The autoscaler's state as `fulcrum status` shows it.
    struct Scaling: Sendable {
        /// One decision: when, the size the autoscaler saw and the one it chose, and why.
        struct Decision: Sendable, Equatable {
            var unixMs: Int64
            var current: Int
            var desired: Int
            var reason: String
        }

        var scaler = "static"
        var minWorkers = 0
        var maxWorkers = 0
        var current = 0
        var desired = 0
        var latest: Decision?
        /// The decisions that changed the size, newest last.
        var changes: [Decision] = []
    }

    private let tracker: Mutex<CapacityTracker<ContinuousClock.Instant>>
    private let scaling = Mutex(Scaling())

    init(settings: CapacityTracker<ContinuousClock.Instant>.Settings) {
        tracker = Mutex(CapacityTracker(settings: settings))
    }

    func record(_ report: WorkerCapacityReport) {
        tracker.withLock { $0.record(report) }
    }

    /// Per model, the workers its plan needs at the current rate: nil before any batch has run,
    /// `Int.max` when no pool size meets the target (then every worker).
    var plannedWorkers: [String: Int?] {
        let views = tracker.withLock { $0.views }
        return Dictionary(uniqueKeysWithValues: views.map { view in
            (view.name, view.curveSamples == 0 ? nil : (view.plan.workers ?? Int.max))
        })
    }

    func record(_ report: NetworkReport) {
        tracker.withLock { $0.record(report) }
    }

    func tick(now: ContinuousClock.Instant, current: Int) -> Autoscaler<ContinuousClock.Instant>.Observation {
        tracker.withLock {
            $0.tick(now: now)
            return $0.observation(current: current)
        }
    }

    func update(_ body: (inout Scaling) -> Void) {
        scaling.withLock { body(&$0) }
    }

    var scalingSnapshot: Scaling { scaling.withLock { $0 } }

    /// Each model's capacity view, and the headroom the planner keeps.
    var models: (views: [CapacityTracker<ContinuousClock.Instant>.ModelView], headroom: Double) {
        tracker.withLock { ($0.views, $0.settings.headroom) }
    }
}

/// Twice a second: closes the capacity model's interval, asks the `Autoscaler` for the pool size
/// and has the scaler carry it out. Every decision that changes the size is logged with its
/// reason and kept (the last 50) for `fulcrum status`.
struct AutoscalerService: Service {
    let state: CapacityState
    let scaler: any Scaler
    let pool: @Sendable () -> Pool
    var autoscaler: Autoscaler<ContinuousClock.Instant>
    let logger: Logger
    var interval: Duration = .milliseconds(500)

    func run() async throws {
        var autoscaler = self.autoscaler
        let clock = ContinuousClock()
        state.update {
            $0.scaler = scaler.kind
            $0.minWorkers = autoscaler.minWorkers
            $0.maxWorkers = autoscaler.maxWorkers
        }
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await scaler.maintain()
                let pool = self.pool()
                let serving = pool.workers.filter { $0.state == .ready || $0.state == .starting }.count
                let current = await scaler.current(pool: pool) ?? serving
                let observation = state.tick(now: clock.now, current: current)
                let decision = autoscaler.decide(observation, now: clock.now)
                var record = CapacityState.Scaling.Decision(
                    unixMs: Int64(Date().timeIntervalSince1970 * 1000), current: current, desired: decision.desired, reason: decision.reason)
                let changed = decision.desired != state.scalingSnapshot.desired
                if changed {
                    logger.notice("autoscaler: \(decision.reason)")
                    let direction = decision.desired > state.scalingSnapshot.desired ? "up" : "down"
                    Counter(label: "fulcrum_scaling_decisions_total", dimensions: [("direction", direction)]).increment()
                }
                if decision.desired != current {
                    do {
                        try await scaler.scale(to: decision.desired, pool: pool)
                    } catch {
                        logger.error("\(scaler.kind) scaler could not scale to \(decision.desired): \(error)")
                        record.reason += " — failed: \(error)"
                    }
                }
                state.update { s in
                    s.current = current
                    s.desired = decision.desired
                    s.latest = record
                    if changed {
                        s.changes.append(record)
                        if s.changes.count > 50 { s.changes.removeFirst(s.changes.count - 50) }
                    }
                }
                try? await Task.sleep(for: interval)
            }
        } onGracefulShutdown: {
        }
        await scaler.shutdown()
    }
}

import Foundation
import FulcrumProtocol
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The balancer's capacity state shared by the control service (which feeds it reports and
/// answers Status from it) and the autoscaler loop (which ticks it and decides).
final class CapacityState: Sendable {
    struct Scaling: Sendable {
        var scaler = "static"
        var minWorkers = 0
        var maxWorkers = 0
        var current = 0
        var desired = 0
        var latest: Fulcrum_Control_V1_ScalingDecision?
        var changes: [Fulcrum_Control_V1_ScalingDecision] = []
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

    /// The capacity part of a Status answer.
    var wire: (models: [Fulcrum_Control_V1_ModelCapacity], scaling: Fulcrum_Control_V1_Scaling) {
        let (views, settings) = tracker.withLock { ($0.views, $0.settings) }
        let models = views.map { view -> Fulcrum_Control_V1_ModelCapacity in
            var m = Fulcrum_Control_V1_ModelCapacity()
            m.name = view.name
            m.rateShort = view.shortRate
            m.rateLong = view.longRate
            m.fixedSeconds = view.curve.fixed
            m.perSampleSeconds = view.curve.perSample
            m.curveSamples = UInt32(view.curveSamples)
            m.maxBatchSize = UInt32(view.maxBatchSize)
            m.latencyTargetMs = view.target * 1000
            m.queueDelayMs = view.queueDelay * 1000
            m.plannedWorkers = UInt32(view.plannedWorkers ?? 0)
            // Without a batch the curve is only the prior: no prediction.
            m.utilisation = view.curveSamples > 0 ? view.plan.row.utilisation : 0
            m.predictedP99Ms = view.curveSamples > 0 ? (view.plan.row.p99 ?? 0) * 1000 : 0
            m.headroom = settings.headroom
            m.networkMs = view.network * 1000
            m.networkP99Ms = view.networkP99 * 1000
            return m
        }
        let s = scalingSnapshot
        var wire = Fulcrum_Control_V1_Scaling()
        wire.scaler = s.scaler
        wire.minWorkers = UInt32(s.minWorkers)
        wire.maxWorkers = UInt32(s.maxWorkers)
        wire.current = UInt32(s.current)
        wire.desired = UInt32(s.desired)
        wire.changes = s.changes
        if let latest = s.latest { wire.latest = latest }
        return (models, wire)
    }
}

/// Twice a second: closes the capacity model's interval, asks the `Autoscaler` for the pool size
/// and has the scaler carry it out. Every decision that changes the size is logged with its
/// reason and kept (the last 50) for `fulcrum status`.
struct AutoscalerService: Service {
    let state: CapacityState
    let scaler: any Scaler
    let pool: @Sendable () -> Fulcrum_Control_V1_PoolSnapshot
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
                let snapshot = pool()
                let serving = snapshot.workers.filter { $0.state == .ready || $0.state == .starting }.count
                let current = await scaler.current(pool: snapshot) ?? serving
                let observation = state.tick(now: clock.now, current: current)
                let decision = autoscaler.decide(observation, now: clock.now)
                var record = Fulcrum_Control_V1_ScalingDecision()
                record.unixMs = Int64(Date().timeIntervalSince1970 * 1000)
                record.current = UInt32(current)
                record.desired = UInt32(decision.desired)
                record.reason = decision.reason
                let changed = decision.desired != state.scalingSnapshot.desired
                if changed {
                    logger.notice("autoscaler: \(decision.reason)")
                    let direction = decision.desired > state.scalingSnapshot.desired ? "up" : "down"
                    Counter(label: "fulcrum_scaling_decisions_total", dimensions: [("direction", direction)]).increment()
                }
                if decision.desired != current {
                    do {
                        try await scaler.scale(to: decision.desired, pool: snapshot)
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

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
    /// `capacity.json` under `--state-dir` (nil: the model lives in memory only).
    let file: URL?
    /// Reports that taught the model something (batch samples, network times) since the last save.
    private let unsaved = Atomic<Int>(0)
    /// The largest `capacity.json` read back: a model's 2,048 samples take about 100 KB, so this
    /// is room for well over a hundred models, and a file larger than that is not one it wrote.
    static let maxFileBytes = 16 << 20

    /// A capacity model that starts from what `directory/capacity.json` kept, when there is such
    /// a file: a restarted balancer plans with the curves it had learned instead of its prior.
    /// A file it cannot read is set aside (logged): the model is a cache of measurements, and
    /// starting without it is safe.
    init(settings: CapacityTracker<ContinuousClock.Instant>.Settings, directory: String? = nil, logger: Logger? = nil) {
        var tracker = CapacityTracker<ContinuousClock.Instant>(settings: settings)
        file = directory.map { URL(fileURLWithPath: $0).appendingPathComponent("capacity.json") }
        let size = file.flatMap { try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int } ?? 0
        if let file, size > Self.maxFileBytes {
            logger?.warning("capacity model: \(file.path) is \(size) bytes, more than the \(Self.maxFileBytes) a saved model takes; starting from the prior, the file will be replaced")
        } else if let file, let data = FileManager.default.contents(atPath: file.path) {
            do {
                let learned = try JSONDecoder().decode(LearnedCapacity.self, from: data)
                let restored = tracker.restore(learned)
                if learned.version != LearnedCapacity.currentVersion {
                    logger?.warning("capacity model: \(file.path) has format version \(learned.version), not \(LearnedCapacity.currentVersion); starting from the prior")
                } else {
                    let samples = tracker.views.reduce(0) { $0 + $1.curveSamples }
                    logger?.notice("capacity model: restored \(restored.count) model(s) (\(restored.joined(separator: ", "))) with \(samples) batch samples from \(file.path)")
                }
            } catch {
                logger?.warning("capacity model: cannot read \(file.path) (\(error)); starting from the prior, the file will be replaced")
            }
        }
        self.tracker = Mutex(tracker)
    }

    func record(_ report: WorkerCapacityReport) {
        if report.load.contains(where: { !$0.batches.isEmpty }) { unsaved.add(1, ordering: .relaxed) }
        tracker.withLock { $0.record(report) }
    }

    /// Writes the learned model to `capacity.json` (a new file renamed over the old) when a
    /// report taught it something since the last save.
    func save() throws {
        guard let file, unsaved.exchange(0, ordering: .relaxed) > 0 else { return }
        let learned = tracker.withLock { $0.learned }
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try encoder.encode(learned).write(to: file, options: .atomic)
        } catch {
            unsaved.add(1, ordering: .relaxed)
            throw error
        }
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
        if report.samples.contains(where: { $0.requests > 0 }) { unsaved.add(1, ordering: .relaxed) }
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
/// reason and kept (the last 50) for `fulcrum status`. Every `saveEvery` ticks, and when it
/// stops, it saves the learned capacity model (`CapacityState.save`), so a balancer killed
/// without warning loses at most that much of what it learned.
struct AutoscalerService: Service {
    let state: CapacityState
    let scaler: any Scaler
    let pool: @Sendable () -> Pool
    var autoscaler: Autoscaler<ContinuousClock.Instant>
    let logger: Logger
    var interval: Duration = .milliseconds(500)
    var saveEvery = 10

    func run() async throws {
        var autoscaler = self.autoscaler
        let clock = ContinuousClock()
        state.update {
            $0.scaler = scaler.kind
            $0.minWorkers = autoscaler.minWorkers
            $0.maxWorkers = autoscaler.maxWorkers
        }
        var ticks = 0
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                ticks += 1
                if ticks % saveEvery == 0 { save() }
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
        save()
        await scaler.shutdown()
    }

    private func save() {
        do {
            try state.save()
        } catch {
            logger.warning("capacity model: cannot write \(state.file?.path ?? "capacity.json") (\(error)); it is kept in memory")
        }
    }
}

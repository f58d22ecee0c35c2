import FulcrumService
import Foundation
import Synchronization

/// The balancer's traffic routes, one per model, with each model's earlier routes for rollback.
/// A pure value: `RouteStore` keeps it in a file and behind a lock.
public struct RouteTable: Sendable, Equatable, Codable {
    struct Entry: Sendable, Equatable, Codable {
        /// nil: no route (unversioned requests go to the newest version).
        var current: TrafficRoute?
        /// What `current` replaced, oldest first (nil entries: no route then).
        var history: [TrafficRoute?] = []
        var lastRevision: UInt64 = 0
    }

    /// How many earlier routes a model keeps for rollback.
    public static let historyLimit = 32

    var format = 1
    private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// The routes in force, by model name.
    public var routes: [TrafficRoute] {
        entries.keys.sorted().compactMap { entries[$0]?.current }
    }

    public func route(for model: String) -> TrafficRoute? { entries[model]?.current }

    /// Replaces `route.model`'s route. `served`: the versions of the model some worker hosts
    /// (nil: do not check; the balancer always passes them). Returns the stored route, with its
    /// revision and time.
    @discardableResult
    public mutating func set(_ route: TrafficRoute, served: Set<String>?, nowMs: Int64, note: String = "set") throws(TrafficRoute.Refusal) -> TrafficRoute {
        try route.check()
        if let served {
            guard !served.isEmpty else {
                throw TrafficRoute.Refusal("no worker serves model '\(route.model)'")
            }
            let unknown = route.versions.subtracting(served)
            if !unknown.isEmpty {
                let list = unknown.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.joined(separator: ", ")
                let servedList = served.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.joined(separator: ", ")
                throw TrafficRoute.Refusal("model '\(route.model)' has no version \(list) on any worker (served: \(servedList))")
            }
        }
        var entry = entries[route.model] ?? Entry()
        var stored = route
        entry.lastRevision += 1
        stored.revision = entry.lastRevision
        stored.updatedUnixMs = nowMs
        stored.note = note
        entry.history.append(entry.current)
        if entry.history.count > Self.historyLimit { entry.history.removeFirst(entry.history.count - Self.historyLimit) }
        entry.current = stored
        entries[route.model] = entry
        return stored
    }

    /// Starts a progressive rollout of `rollout.version`: its share starts at one step (above what
    /// the current route gives it) and the other versions share the rest as the current route
    /// does (without a route: the newest other version served). The route from before is kept
    /// for `rollback`; the rollout's steps replace the route without adding history.
    @discardableResult
    public mutating func startRollout(model: String, _ rollout: Rollout, served: Set<String>, nowMs: Int64) throws(TrafficRoute.Refusal) -> TrafficRoute {
        try rollout.check(model: model)
        let version = rollout.version
        guard served.contains(version) else {
            let list = served.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.joined(separator: ", ")
            throw TrafficRoute.Refusal(served.isEmpty ? "no worker serves model '\(model)'" : "model '\(model)' has no version \(version) on any worker (served: \(list))")
        }
        let current = entries[model]?.current
        if let running = current?.rollingOut {
            throw TrafficRoute.Refusal("model '\(model)' is already rolling out version \(running); roll it back or set a route first")
        }
        var started = rollout
        if let current {
            started.baseline = current.splits
            started.baselinePins = current.pins
        } else if let newest = served.filter({ $0 != version }).max(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) {
            started.baseline = [TrafficRoute.Split(version: newest, basisPoints: TrafficRoute.wholeBasisPoints)]
        }
        guard started.baseline.contains(where: { $0.version != version && $0.basisPoints > 0 }) else {
            throw TrafficRoute.Refusal("model '\(model)': no other version has a share to shift to version \(version)")
        }
        let from = current?.share(of: version) ?? 0
        guard from < started.targetBasisPoints else {
            throw TrafficRoute.Refusal("model '\(model)': version \(version) already has \(TrafficRoute.percent(from))%, at or above the target")
        }
        let share = min(from + started.stepBasisPoints, started.targetBasisPoints)
        started.lastStepUnixMs = nowMs
        started.state = share >= started.targetBasisPoints ? .completed : .running
        started.reason = "version \(version) at \(TrafficRoute.percent(share))%"
        let shadows = current?.shadows.filter { $0.version != version } ?? []
        let route = TrafficRoute(model: model, splits: started.splits(share: share), pins: started.baselinePins, shadows: shadows, rollout: started)
        return try set(route, served: served, nowMs: nowMs, note: "rollout of version \(version) started")
    }

    /// Carries out a rollout decision for `model`; returns the route when it changed.
    public mutating func apply(_ decision: Rollout.Decision, model: String, nowMs: Int64) -> TrafficRoute? {
        guard var entry = entries[model], var route = entry.current, var rollout = route.rollout, rollout.state == .running else { return nil }
        switch decision {
        case .wait:
            return nil
        case .hold(let reason):
            guard rollout.reason != reason else { return nil }
            rollout.reason = reason
            route.rollout = rollout
            entry.current = route
            entries[model] = entry
            return route
        case .advance(let share):
            route.splits = rollout.splits(share: share)
            rollout.lastStepUnixMs = nowMs
            rollout.state = share >= rollout.targetBasisPoints ? .completed : .running
            rollout.reason = rollout.state == .completed
                ? "version \(rollout.version) at its target of \(TrafficRoute.percent(share))%"
                : "version \(rollout.version) at \(TrafficRoute.percent(share))%"
            route.note = "rollout step: version \(rollout.version) at \(TrafficRoute.percent(share))%"
        case .halt(let reason):
            route.splits = rollout.baseline
            route.pins = rollout.baselinePins
            rollout.state = .halted
            rollout.reason = "halted and rolled back: \(reason)"
            route.note = "rolled back by the rollout of version \(rollout.version)"
        }
        entry.lastRevision += 1
        route.revision = entry.lastRevision
        route.updatedUnixMs = nowMs
        route.rollout = rollout
        entry.current = route
        entries[model] = entry
        return route
    }

    /// Puts back the route `model` had before its latest change; returns it (nil: no route now).
    @discardableResult
    public mutating func rollback(model: String, nowMs: Int64, reason: String? = nil) throws(TrafficRoute.Refusal) -> TrafficRoute? {
        guard var entry = entries[model], let previous = entry.history.popLast() else {
            throw TrafficRoute.Refusal("model '\(model)' has no earlier route to roll back to")
        }
        let from = entry.current?.revision
        entry.lastRevision += 1
        if var restored = previous {
            let why = reason.map { ": \($0)" } ?? ""
            restored.note = "rolled back from revision \(from.map(String.init) ?? "none") to revision \(restored.revision)\(why)"
            restored.revision = entry.lastRevision
            restored.updatedUnixMs = nowMs
            entry.current = restored
        } else {
            entry.current = nil
        }
        entries[model] = entry
        return entry.current
    }

    /// Removes `model`'s route (kept in its history, so a rollback brings it back).
    public mutating func clear(model: String) throws(TrafficRoute.Refusal) {
        guard var entry = entries[model], entry.current != nil else {
            throw TrafficRoute.Refusal("model '\(model)' has no route")
        }
        entry.history.append(entry.current)
        if entry.history.count > Self.historyLimit { entry.history.removeFirst(entry.history.count - Self.historyLimit) }
        entry.current = nil
        entry.lastRevision += 1
        entries[model] = entry
    }
}

/// The route table in the balancer: behind a lock, and in `routes.json` under `--state-dir` so a
/// restarted balancer (and so its frontends) keeps the routes. A change is written to the file
/// (a new file renamed over the old, so a crash leaves the old or the new one) before it takes
/// effect; when it cannot be written the change is refused.
public final class RouteStore: Sendable {
    private let table: Mutex<RouteTable>
    /// nil: routes live in memory only (a balancer without --state-dir).
    public let file: URL?

    public init(directory: String?) throws {
        guard let directory else {
            file = nil
            table = Mutex(RouteTable())
            return
        }
        let file = URL(fileURLWithPath: directory).appendingPathComponent("routes.json")
        self.file = file
        guard let data = FileManager.default.contents(atPath: file.path) else {
            table = Mutex(RouteTable())
            return
        }
        do {
            table = Mutex(try JSONDecoder().decode(RouteTable.self, from: data))
        } catch {
            throw TrafficRoute.Refusal("cannot read the routes in \(file.path) (\(error)); fix the file or move it away to start without routes")
        }
        for route in table.withLock({ $0.routes }) {
            do throws(TrafficRoute.Refusal) { try route.check() } catch {
                throw TrafficRoute.Refusal("\(file.path): \(error)")
            }
        }
    }

    public var routes: [TrafficRoute] { table.withLock { $0.routes } }

    public func route(for model: String) -> TrafficRoute? { table.withLock { $0.route(for: model) } }

    /// Applies `change` to a copy, writes the copy, then keeps it.
    public func update<T>(_ change: (inout RouteTable) throws(TrafficRoute.Refusal) -> T) throws(TrafficRoute.Refusal) -> T {
        try table.withLock { (current: inout RouteTable) throws(TrafficRoute.Refusal) -> T in
            var next = current
            let result = try change(&next)
            if let file {
                do {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try encoder.encode(next).write(to: file, options: .atomic)
                } catch {
                    throw TrafficRoute.Refusal("the route was not changed: cannot write \(file.path) (\(error))")
                }
            }
            current = next
            return result
        }
    }
}

import FulcrumService

/// The balancer's membership table: who is in the pool, where, in what state, hosting what, and
/// until when their lease runs. A pure value: every change takes the current time as an argument
/// and says what changed, so it is tested with a manual clock.
public struct Registry: Sendable {
    /// One pool member.
    public struct Member: Sendable {
        public var worker: WorkerRecord
        public var leaseExpires: ContinuousClock.Instant
    }

    /// How long a worker may stay silent before it leaves the pool.
    public let lease: Duration
    /// Members by worker id.
    public private(set) var members: [String: Member] = [:]
    /// Increases with every change; frontends see it in snapshots.
    public private(set) var generation: UInt64 = 0
    private var nextNumber = 1

    public init(lease: Duration) {
        self.lease = lease
    }

    /// Adds a worker and returns its id. A worker joining again at an address already in the
    /// pool replaces its old entry (it restarted or lost its stream).
    public mutating func join(_ join: WorkerJoin, now: ContinuousClock.Instant, wallClockMs: Int64) -> String {
        if let stale = members.first(where: { $0.value.worker.address == join.address })?.key {
            members.removeValue(forKey: stale)
        }
        var id = join.name
        if id.isEmpty || members[id] != nil {
            repeat {
                id = "worker-\(nextNumber)"
                nextNumber += 1
            } while members[id] != nil
        }
        let worker = WorkerRecord(
            id: id, address: join.address, zone: join.zone, backend: join.backend, device: join.device, pid: join.pid, name: join.name,
            metricsAddress: join.metricsAddress, state: .starting, models: join.models, joinedUnixMs: wallClockMs,
            lastReportUnixMs: wallClockMs)
        members[id] = Member(worker: worker, leaseExpires: now + lease)
        generation += 1
        return id
    }

    /// Applies a report. Returns false when the worker is unknown (it must join again).
    public mutating func report(_ report: WorkerReport, now: ContinuousClock.Instant, wallClockMs: Int64) -> Bool {
        guard var member = members[report.workerID] else { return false }
        member.worker.state = report.state
        member.worker.models = report.models
        member.worker.lastLoad = report.load
        member.worker.lastReportUnixMs = wallClockMs
        member.leaseExpires = now + lease
        members[report.workerID] = member
        generation += 1
        return true
    }

    /// Removes a worker (its stream ended or it drained). Returns whether it was a member.
    @discardableResult
    public mutating func remove(_ id: String) -> Bool {
        guard members.removeValue(forKey: id) != nil else { return false }
        generation += 1
        return true
    }

    /// Removes every worker whose lease ran out; returns their ids.
    public mutating func expire(now: ContinuousClock.Instant) -> [String] {
        let expired = members.filter { $0.value.leaseExpires <= now }.map(\.key).sorted()
        for id in expired { members.removeValue(forKey: id) }
        if !expired.isEmpty { generation += 1 }
        return expired
    }

    /// Models being moved off workers (`--placement demand`), by worker id: `pool` shows them
    /// UNLOADING so frontends stop routing there before the worker is told to unload.
    public var unloading: [String: Set<String>] = [:] {
        didSet { if unloading != oldValue { generation += 1 } }
    }

    /// The traffic routes frontends apply (the balancer's `RouteStore` sets them).
    public var routes: [TrafficRoute] = [] {
        didSet { if routes != oldValue { generation += 1 } }
    }

    /// The versions of `model` some member hosts (any state but UNAVAILABLE).
    public func hostedVersions(of model: String) -> Set<String> {
        var versions = Set<String>()
        for member in members.values {
            for hosted in member.worker.models where hosted.name == model && hosted.state != .unavailable {
                versions.insert(hosted.version)
            }
        }
        return versions
    }

    /// The pool as frontends and the CLI see it, workers sorted by id.
    public var pool: Pool {
        var workers = members.values.map(\.worker).sorted { $0.id < $1.id }
        for index in workers.indices {
            guard let models = unloading[workers[index].id] else { continue }
            for m in workers[index].models.indices where models.contains(workers[index].models[m].name)
                && workers[index].models[m].state == .ready
            {
                workers[index].models[m].state = .unloading
            }
        }
        return Pool(generation: generation, workers: workers, routes: routes)
    }
}

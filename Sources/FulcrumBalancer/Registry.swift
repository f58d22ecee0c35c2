import FulcrumProtocol

/// The balancer's membership table: who is in the pool, where, in what state, hosting what, and
/// until when their lease runs. A pure value: every change takes the current time as an argument
/// and says what changed, so it is tested with a manual clock.
public struct Registry: Sendable {
    /// One pool member.
    public struct Member: Sendable {
        public var info: Fulcrum_Control_V1_WorkerInfo
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
    public mutating func join(
        _ request: Fulcrum_Control_V1_JoinRequest,
        now: ContinuousClock.Instant,
        wallClockMs: Int64
    ) -> String {
        if let stale = members.first(where: { $0.value.info.address == request.address })?.key {
            members.removeValue(forKey: stale)
        }
        var id = request.name
        if id.isEmpty || members[id] != nil {
            repeat {
                id = "worker-\(nextNumber)"
                nextNumber += 1
            } while members[id] != nil
        }
        var info = Fulcrum_Control_V1_WorkerInfo()
        info.workerID = id
        info.address = request.address
        info.zone = request.zone
        info.backend = request.backend
        info.device = request.device
        info.pid = request.pid
        info.metricsAddress = request.metricsAddress
        info.name = request.name
        info.state = .starting
        info.models = request.models
        info.joinedUnixMs = wallClockMs
        info.lastReportUnixMs = wallClockMs
        members[id] = Member(info: info, leaseExpires: now + lease)
        generation += 1
        return id
    }

    /// Applies a report. Returns false when the worker is unknown (it must join again).
    public mutating func report(
        _ report: Fulcrum_Control_V1_WorkerReport,
        now: ContinuousClock.Instant,
        wallClockMs: Int64
    ) -> Bool {
        guard var member = members[report.workerID] else { return false }
        member.info.state = report.state
        member.info.models = report.models
        member.info.lastLoad = report.load
        member.info.lastReportUnixMs = wallClockMs
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

    /// Models being moved off workers (`--placement demand`), by worker id: the snapshot shows
    /// them UNLOADING so frontends stop routing there before the worker is told to unload.
    public var unloading: [String: Set<String>] = [:] {
        didSet { if unloading != oldValue { generation += 1 } }
    }

    /// The traffic routes frontends apply (the balancer's `RouteStore` sets them).
    public var routes: [Fulcrum_Control_V1_ModelRoute] = [] {
        didSet { if routes != oldValue { generation += 1 } }
    }

    /// The versions of `model` some member hosts (any state but UNAVAILABLE).
    public func hostedVersions(of model: String) -> Set<String> {
        var versions = Set<String>()
        for member in members.values {
            for hosted in member.info.models where hosted.name == model && hosted.state != "UNAVAILABLE" {
                versions.insert(hosted.version)
            }
        }
        return versions
    }

    /// The pool as frontends and the CLI see it, workers sorted by id.
    public var snapshot: Fulcrum_Control_V1_PoolSnapshot {
        var snapshot = Fulcrum_Control_V1_PoolSnapshot()
        snapshot.generation = generation
        snapshot.routes = routes
        snapshot.workers = members.values.map(\.info).sorted { $0.workerID < $1.workerID }
        for index in snapshot.workers.indices {
            guard let models = unloading[snapshot.workers[index].workerID] else { continue }
            for m in snapshot.workers[index].models.indices where models.contains(snapshot.workers[index].models[m].name)
                && snapshot.workers[index].models[m].state == "READY"
            {
                snapshot.workers[index].models[m].state = "UNLOADING"
            }
        }
        return snapshot
    }
}

import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import Logging
import Synchronization

/// The balancer's `fulcrum.control.v1.Balancer` service: membership (Join, Report), the pool
/// snapshot stream (WatchPool) and Status. Never on the data path.
final class ControlService: Fulcrum_Control_V1_Balancer.SimpleServiceProtocol, Sendable {
    private let registry: Mutex<Registry>
    private let hub = SnapshotHub()
    private let routes: RouteStore
    /// Each running rollout's answers since its last step, from the frontends' reports.
    private let rolloutWindows = Mutex<[String: Rollout.Window]>([:])
    /// Shadow comparisons per model and shadow version, summed over frontends since the version
    /// became a shadow.
    private let shadowTotals = Mutex<[String: Fulcrum_Control_V1_ShadowSample]>([:])
    private let capacity: CapacityState
    /// Set under `--placement demand`.
    private let placement: PlacementCoordinator?
    private let logger: Logger
    private let clock = ContinuousClock()
    private let startedMs = ControlService.wallClockMs()
    let reportIntervalMs: UInt32
    let leaseMs: UInt32

    init(
        lease: Duration, reportInterval: Duration, capacity: CapacityState, placement: PlacementCoordinator? = nil,
        routes: RouteStore = try! RouteStore(directory: nil), logger: Logger
    ) {
        var registry = Registry(lease: lease)
        registry.routes = routes.routes
        self.registry = Mutex(registry)
        self.routes = routes
        self.capacity = capacity
        self.placement = placement
        self.logger = logger
        self.leaseMs = UInt32(lease.components.seconds * 1000 + lease.components.attoseconds / 1_000_000_000_000_000)
        self.reportIntervalMs = UInt32(reportInterval.components.seconds * 1000 + reportInterval.components.attoseconds / 1_000_000_000_000_000)
    }

    func join(request: Fulcrum_Control_V1_JoinRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_JoinResponse {
        guard HostPort(parsing: request.address) != nil else {
            throw RPCError(code: .invalidArgument, message: "join: '\(request.address)' is not a host:port address")
        }
        let now = clock.now
        let join = WorkerJoin(request)
        let (id, pool) = registry.withLock { r in
            (r.join(join, now: now, wallClockMs: Self.wallClockMs()), r.pool)
        }
        logger.info("worker \(id) joined from \(request.address) (pid \(request.pid), \(request.models.count) model versions)")
        hub.publish(pool)
        var response = Fulcrum_Control_V1_JoinResponse()
        response.workerID = id
        response.leaseMs = leaseMs
        response.reportIntervalMs = reportIntervalMs
        return response
    }

    func report(
        request: RPCAsyncSequence<Fulcrum_Control_V1_WorkerReport, any Error>,
        response: RPCWriter<Fulcrum_Control_V1_Directive>,
        context: ServerContext
    ) async throws {
        var workerID: String? = nil
        defer {
            if let workerID {
                let removed = registry.withLock { r -> Pool? in
                    r.remove(workerID) ? r.pool : nil
                }
                if let removed {
                    logger.info("worker \(workerID) left the pool (report stream ended)")
                    hub.publish(removed)
                }
            }
        }
        do {
            for try await message in request {
                let now = clock.now
                let report = WorkerReport(message)
                let pool = registry.withLock { r -> Pool? in
                    r.report(report, now: now, wallClockMs: Self.wallClockMs()) ? r.pool : nil
                }
                guard let pool else {
                    throw RPCError(code: .notFound, message: "unknown worker '\(report.workerID)': join again")
                }
                capacity.record(WorkerCapacityReport(report))
                if workerID == nil {
                    workerID = report.workerID
                }
                hub.publish(pool)
                if let placement {
                    let (unloading, lines) = placement.step(now: now, pool: pool, planned: capacity.plannedWorkers)
                    for line in lines { logger.info("\(line)") }
                    let changed = registry.withLock { r -> Pool? in
                        guard r.unloading != unloading else { return nil }
                        r.unloading = unloading
                        return r.pool
                    }
                    if let changed { hub.publish(changed) }
                    for action in placement.take(for: report.workerID) { try await response.write(action.directive) }
                }
            }
        } catch let error as RPCError {
            throw error
        } catch {
            // The worker's connection broke: it leaves the pool at once (defer above).
            logger.info("report stream from \(workerID ?? "an unknown worker") failed: \(error)")
        }
    }

    func watchPool(
        request: Fulcrum_Control_V1_WatchPoolRequest,
        response: RPCWriter<Fulcrum_Control_V1_PoolSnapshot>,
        context: ServerContext
    ) async throws {
        let (id, stream) = hub.subscribe()
        defer { hub.remove(id) }
        logger.info("frontend \(request.frontendID.isEmpty ? context.remotePeer : request.frontendID) is watching the pool")
        try await response.write(pool.wire)
        for await snapshot in stream {
            try await response.write(snapshot)
        }
    }

    func status(request: Fulcrum_Control_V1_StatusRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_StatusResponse {
        var response = Fulcrum_Control_V1_StatusResponse()
        response.pool = pool.wire
        response.balancerVersion = ServerInfo.version
        response.startedUnixMs = startedMs
        response.watchingFrontends = UInt32(hub.count)
        (response.models, response.scaling) = capacity.wire
        response.shadows = shadowTotals.withLock { $0.sorted { $0.key < $1.key }.map(\.value) }
        return response
    }

    func reportFrontend(
        request: Fulcrum_Control_V1_FrontendReport, context: ServerContext
    ) async throws -> Fulcrum_Control_V1_FrontendReportResponse {
        capacity.record(NetworkReport(request))
        if !request.versions.isEmpty {
            let rolling = Dictionary(routes.routes.compactMap { route in route.rollingOut.map { (route.model, $0) } }, uniquingKeysWith: { a, _ in a })
            rolloutWindows.withLock { windows in
                for sample in request.versions where rolling[sample.model] == sample.version {
                    windows[sample.model, default: Rollout.Window()].add(
                        requests: sample.requests, errors: sample.errors, latency: LatencyHistogram(counts: sample.latencyBuckets))
                }
            }
        }
        if !request.shadows.isEmpty {
            let shadowing = Set(routes.routes.flatMap { route in route.shadows.map { route.model + "\u{0}" + $0.version } })
            shadowTotals.withLock { totals in
                for sample in request.shadows {
                    let key = sample.model + "\u{0}" + sample.version
                    guard shadowing.contains(key) else { continue }
                    totals[key] = Self.add(sample, to: totals[key])
                }
            }
        }
        return Fulcrum_Control_V1_FrontendReportResponse()
    }

    // MARK: Routes

    func getRoutes(request: Fulcrum_Control_V1_GetRoutesRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_RoutesResponse {
        var response = Fulcrum_Control_V1_RoutesResponse()
        if request.model.isEmpty {
            response.routes = routes.routes.map(\.wire)
        } else if let route = routes.route(for: request.model) {
            response.routes = [route.wire]
        }
        return response
    }

    func setRoute(request: Fulcrum_Control_V1_SetRouteRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_RoutesResponse {
        let route = TrafficRoute(request.route)
        let served = registry.withLock { $0.hostedVersions(of: route.model) }
        let stored = try changeRoutes { table throws(TrafficRoute.Refusal) in
            try table.set(route, served: served, nowMs: Self.wallClockMs())
        }
        logger.notice("route for \(stored.model) set (revision \(stored.revision)): \(stored.weightsText)\(stored.pins.isEmpty ? "" : "; pins \(stored.pinsText)")")
        var response = Fulcrum_Control_V1_RoutesResponse()
        response.routes = [stored.wire]
        return response
    }

    func rollbackRoute(request: Fulcrum_Control_V1_RollbackRouteRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_RoutesResponse {
        let restored = try changeRoutes { table throws(TrafficRoute.Refusal) in
            try table.rollback(model: request.model, nowMs: Self.wallClockMs())
        }
        logger.notice("route for \(request.model) rolled back: \(restored.map { "\($0.weightsText) (revision \($0.revision))" } ?? "no route (newest version)")")
        var response = Fulcrum_Control_V1_RoutesResponse()
        response.routes = restored.map { [$0.wire] } ?? []
        return response
    }

    func clearRoute(request: Fulcrum_Control_V1_ClearRouteRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_RoutesResponse {
        try changeRoutes { table throws(TrafficRoute.Refusal) in try table.clear(model: request.model) }
        logger.notice("route for \(request.model) cleared: unversioned requests go to the newest version")
        return Fulcrum_Control_V1_RoutesResponse()
    }

    func shiftRoute(request: Fulcrum_Control_V1_ShiftRouteRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_RoutesResponse {
        let rollout = Rollout(request.rollout)
        let served = registry.withLock { $0.hostedVersions(of: request.model) }
        let stored = try changeRoutes { table throws(TrafficRoute.Refusal) in
            try table.startRollout(model: request.model, rollout, served: served, nowMs: Self.wallClockMs())
        }
        rolloutWindows.withLock { $0[request.model] = Rollout.Window() }
        logger.notice("route for \(stored.model): rollout of version \(rollout.version) started (revision \(stored.revision)): \(stored.weightsText)")
        var response = Fulcrum_Control_V1_RoutesResponse()
        response.routes = [stored.wire]
        return response
    }

    /// Two shadow samples summed: counts added, error maxima kept, latency histograms merged.
    static func add(_ sample: Fulcrum_Control_V1_ShadowSample, to total: Fulcrum_Control_V1_ShadowSample?) -> Fulcrum_Control_V1_ShadowSample {
        guard var total else { return sample }
        total.compared &+= sample.compared
        total.identical &+= sample.identical
        total.failed &+= sample.failed
        total.dropped &+= sample.dropped
        total.maxAbsError = max(total.maxAbsError, sample.maxAbsError)
        total.maxRelError = max(total.maxRelError, sample.maxRelError)
        total.argmaxRows &+= sample.argmaxRows
        total.argmaxAgreed &+= sample.argmaxAgreed
        total.incomparable &+= sample.incomparable
        var served = LatencyHistogram(counts: total.servedLatencyBuckets)
        served.merge(LatencyHistogram(counts: sample.servedLatencyBuckets))
        total.servedLatencyBuckets = served.counts
        var shadow = LatencyHistogram(counts: total.shadowLatencyBuckets)
        shadow.merge(LatencyHistogram(counts: sample.shadowLatencyBuckets))
        total.shadowLatencyBuckets = shadow.counts
        return total
    }

    /// Takes each running rollout's next step when it is due (or halts it); called periodically
    /// by `LeaseSweeper`.
    func advanceRollouts() {
        let now = Self.wallClockMs()
        let running = routes.routes.filter { $0.rollingOut != nil }
        let models = Set(running.map(\.model))
        let windows = rolloutWindows.withLock { windows in
            windows = windows.filter { models.contains($0.key) }
            return windows
        }
        for route in running {
            guard let rollout = route.rollout else { continue }
            let decision = rollout.judge(windows[route.model] ?? Rollout.Window(), share: route.share(of: rollout.version), nowMs: now)
            switch decision {
            case .wait: continue
            case .hold(let reason) where reason == rollout.reason: continue
            default: break
            }
            let changed = try? changeRoutes { table throws(TrafficRoute.Refusal) in table.apply(decision, model: route.model, nowMs: now) }
            guard let changed = changed ?? nil, let outcome = changed.rollout else { continue }
            switch decision {
            case .advance:
                rolloutWindows.withLock { $0[route.model] = Rollout.Window() }
                logger.notice("route for \(route.model): \(outcome.reason) (revision \(changed.revision)): \(changed.weightsText)")
            case .halt:
                logger.warning("route for \(route.model): rollout of version \(outcome.version) \(outcome.reason); route now \(changed.weightsText)")
            default:
                logger.info("route for \(route.model): rollout of version \(outcome.version): \(outcome.reason)")
            }
        }
    }

    /// Applies a change to the stored routes and publishes the new snapshot; a refused change is
    /// INVALID_ARGUMENT (FAILED_PRECONDITION when the state file cannot be written).
    private func changeRoutes<T>(_ change: (inout RouteTable) throws(TrafficRoute.Refusal) -> T) throws(RPCError) -> T {
        let result: T
        do {
            result = try routes.update(change)
        } catch {
            let code: RPCError.Code = error.description.hasPrefix("the route was not changed") ? .failedPrecondition : .invalidArgument
            throw RPCError(code: code, message: error.description)
        }
        let current = routes.routes
        let shadowing = Set(current.flatMap { route in route.shadows.map { route.model + "\u{0}" + $0.version } })
        shadowTotals.withLock { $0 = $0.filter { shadowing.contains($0.key) } }
        let pool = registry.withLock { r in
            r.routes = current
            return r.pool
        }
        hub.publish(pool)
        return result
    }

    /// The pool now.
    var pool: Pool { registry.withLock { $0.pool } }

    /// Removes workers whose lease ran out; called periodically by `LeaseSweeper`.
    func expireLeases() {
        let now = clock.now
        let (expired, pool) = registry.withLock { r in (r.expire(now: now), r.pool) }
        guard !expired.isEmpty else { return }
        logger.warning("lease expired for \(expired.joined(separator: ", ")): removed from the pool")
        hub.publish(pool)
    }

    /// Ends every WatchPool stream (at shutdown).
    func closeWatchers() {
        hub.closeAll()
    }

    static func wallClockMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

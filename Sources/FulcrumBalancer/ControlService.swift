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
    private let capacity: CapacityState
    /// Set under `--placement demand`.
    private let placement: PlacementCoordinator?
    private let logger: Logger
    private let clock = ContinuousClock()
    private let startedMs = ControlService.wallClockMs()
    let reportIntervalMs: UInt32
    let leaseMs: UInt32

    init(lease: Duration, reportInterval: Duration, capacity: CapacityState, placement: PlacementCoordinator? = nil, logger: Logger) {
        self.registry = Mutex(Registry(lease: lease))
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
        let (id, snapshot) = registry.withLock { r in
            (r.join(request, now: now, wallClockMs: Self.wallClockMs()), r.snapshot)
        }
        logger.info("worker \(id) joined from \(request.address) (pid \(request.pid), \(request.models.count) model versions)")
        hub.publish(snapshot)
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
                let removed = registry.withLock { r -> Fulcrum_Control_V1_PoolSnapshot? in
                    r.remove(workerID) ? r.snapshot : nil
                }
                if let removed {
                    logger.info("worker \(workerID) left the pool (report stream ended)")
                    hub.publish(removed)
                }
            }
        }
        do {
            for try await report in request {
                let now = clock.now
                let snapshot = registry.withLock { r -> Fulcrum_Control_V1_PoolSnapshot? in
                    r.report(report, now: now, wallClockMs: Self.wallClockMs()) ? r.snapshot : nil
                }
                guard let snapshot else {
                    throw RPCError(code: .notFound, message: "unknown worker '\(report.workerID)': join again")
                }
                capacity.record(WorkerCapacityReport(report))
                if workerID == nil {
                    workerID = report.workerID
                }
                hub.publish(snapshot)
                if let placement {
                    let (unloading, lines) = placement.step(now: now, pool: snapshot, planned: capacity.plannedWorkers)
                    for line in lines { logger.info("\(line)") }
                    let changed = registry.withLock { r -> Fulcrum_Control_V1_PoolSnapshot? in
                        guard r.unloading != unloading else { return nil }
                        r.unloading = unloading
                        return r.snapshot
                    }
                    if let changed { hub.publish(changed) }
                    for directive in placement.take(for: report.workerID) { try await response.write(directive) }
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
        try await response.write(registry.withLock { $0.snapshot })
        for await snapshot in stream {
            try await response.write(snapshot)
        }
    }

    func status(request: Fulcrum_Control_V1_StatusRequest, context: ServerContext) async throws -> Fulcrum_Control_V1_StatusResponse {
        var response = Fulcrum_Control_V1_StatusResponse()
        response.pool = registry.withLock { $0.snapshot }
        response.balancerVersion = ServerInfo.version
        response.startedUnixMs = startedMs
        response.watchingFrontends = UInt32(hub.count)
        (response.models, response.scaling) = capacity.wire
        return response
    }

    func reportFrontend(
        request: Fulcrum_Control_V1_FrontendReport, context: ServerContext
    ) async throws -> Fulcrum_Control_V1_FrontendReportResponse {
        capacity.record(NetworkReport(request))
        return Fulcrum_Control_V1_FrontendReportResponse()
    }

    /// The pool now.
    var snapshot: Fulcrum_Control_V1_PoolSnapshot { registry.withLock { $0.snapshot } }

    /// Removes workers whose lease ran out; called periodically by `LeaseSweeper`.
    func expireLeases() {
        let now = clock.now
        let (expired, snapshot) = registry.withLock { r in (r.expire(now: now), r.snapshot) }
        guard !expired.isEmpty else { return }
        logger.warning("lease expired for \(expired.joined(separator: ", ")): removed from the pool")
        hub.publish(snapshot)
    }

    /// Ends every WatchPool stream (at shutdown).
    func closeWatchers() {
        hub.closeAll()
    }

    static func wallClockMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

import FulcrumMetrics
import FulcrumService
import Metrics
import Foundation
import Logging
import ServiceLifecycle

/// The control plane: membership with leases, pool snapshots pushed to frontends, status.
/// `fulcrum-balancer` calls `run`.
public enum Balancer {
    /// Who may call what, with mutual TLS: only workers join and report, only frontends watch the
    /// pool and report their network time, only operators (the `fulcrum` CLI) read the status,
    /// which lists every worker's address and pid. Health checks are open to every member.
    public static let roles: [String: Set<ClusterTLS.Role>] = [
        "fulcrum.control.v1.Balancer/Join": [.worker],
        "fulcrum.control.v1.Balancer/Report": [.worker],
        "fulcrum.control.v1.Balancer/WatchPool": [.frontend],
        "fulcrum.control.v1.Balancer/ReportFrontend": [.frontend],
        "fulcrum.control.v1.Balancer/Status": [.admin],
        "fulcrum.control.v1.Balancer/GetRoutes": [.admin],
        "fulcrum.control.v1.Balancer/SetRoute": [.admin],
        "fulcrum.control.v1.Balancer/RollbackRoute": [.admin],
        "fulcrum.control.v1.Balancer/ClearRoute": [.admin],
        "fulcrum.control.v1.Balancer/ShiftRoute": [.admin],
    ]

    /// Runs until SIGTERM/SIGINT (or the parent exits).
    public static func run(_ configuration: BalancerConfiguration) async throws {
        let logger = Logger(label: "fulcrum.balancer")
        let capacity = CapacityState(settings: configuration.capacity, directory: configuration.stateDirectory, logger: logger)
        let bound = OnceValue<HostPort>()
        let metricsBound = OnceValue<HostPort>()
        let control = ControlService(
            lease: configuration.lease, reportInterval: configuration.reportInterval, capacity: capacity,
            placement: configuration.placement == .demand ? PlacementCoordinator() : nil,
            routes: try RouteStore(directory: configuration.stateDirectory), logger: logger
        )
        let scaler: any Scaler
        switch configuration.scaler {
        case .none: scaler = StaticScaler()
        case .process(let launch):
            scaler = ProcessScaler(launch: launch, balancer: bound, logger: logger)
        case .custom(let custom): scaler = custom
        }
        let health = HealthService(services: ["fulcrum.control.v1.Balancer"]) { true }
        let server = GRPCServerService(
            transport: GRPCTransport.server(configuration.listen, tls: configuration.tls),
            services: [control, health],
            interceptors: configuration.tls.map { [PeerRoleInterceptor(allowed: roles, tls: $0)] } ?? [],
            logger: logger
        ) { address in
            logger.info("balancer listening on \(address)")
            bound.set(address)
            if let file = configuration.addressFile {
                var entries = ["grpc": address.description, "pid": String(getpid())]
                if configuration.metrics != nil { entries["metrics"] = await metricsBound.value.description }
                try AddressFile.write(entries, to: file)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if configuration.exitWithParent {
            services.append(.init(service: ParentWatch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: server))
        if let tls = configuration.tls { services.append(.init(service: HangupReloader([tls.reloadAction(logger: logger)]))) }
        if let metrics = configuration.metrics {
            services.append(
                .init(
                    service: MetricsEndpoint(
                        settings: metrics, logger: logger,
                        beforeScrape: { BalancerMetrics.refresh(pool: control.pool, capacity: capacity) },
                        isReady: { true },
                        onListening: { metricsBound.set($0) }
                    )))
        }
        services.append(.init(service: LeaseSweeper(control: control)))
        services.append(
            .init(
                service: AutoscalerService(
                    state: capacity, scaler: scaler, pool: { control.pool },
                    autoscaler: Autoscaler(
                        minWorkers: configuration.minWorkers, maxWorkers: configuration.maxWorkers,
                        stabilisation: configuration.stabilisation, settle: configuration.settle
                    ),
                    logger: logger
                )))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Workers' report streams never end by themselves: give them a moment, then cancel. Workers
        // this balancer started end theirs when they drain (see ProcessScaler.shutdown).
        if case .process = configuration.scaler {
            groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        } else {
            groupConfiguration.maximumGracefulShutdownDuration = .seconds(1)
        }
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("balancer stopped")
    }
}

/// Expires silent workers' leases four times a second.
struct LeaseSweeper: Service {
    let control: ControlService

    func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                control.expireLeases()
                control.advanceRollouts()
                try? await Task.sleep(for: .milliseconds(250))
            }
        } onGracefulShutdown: {
            // Watch streams never end by themselves: close them so the server can stop.
            control.closeWatchers()
        }
    }
}

/// The balancer's gauges, read from its state right before each scrape.
enum BalancerMetrics {
    static func refresh(pool: Pool, capacity: CapacityState) {
        let states: [(WorkerRecord.State, String)] = [
            (.starting, "starting"), (.ready, "ready"), (.draining, "draining"), (.unready, "unready"),
        ]
        for (state, name) in states {
            Gauge(label: "fulcrum_pool_workers", dimensions: [("state", name)]).record(pool.workers.filter { $0.state == state }.count)
        }
        var loads: [Double] = []
        for worker in pool.workers where worker.state == .ready {
            let load = Double(worker.outstanding)
            loads.append(load)
            Gauge(label: "fulcrum_worker_load", dimensions: [("worker", worker.id)]).record(load)
        }
        let mean = loads.isEmpty ? 0 : loads.reduce(0, +) / Double(loads.count)
        Gauge(label: "fulcrum_pool_imbalance").record(mean > 0 ? (loads.max() ?? 0) / mean : 1)
        let scaling = capacity.scalingSnapshot
        Gauge(label: "fulcrum_desired_workers").record(scaling.desired)
        Gauge(label: "fulcrum_current_workers").record(scaling.current)
        Gauge(label: "fulcrum_min_workers").record(scaling.minWorkers)
        Gauge(label: "fulcrum_max_workers").record(scaling.maxWorkers)
        for view in capacity.models.views {
            let dimensions = [("model", view.name)]
            Gauge(label: "fulcrum_model_arrival_rate", dimensions: dimensions).record(view.shortRate)
            Gauge(label: "fulcrum_model_planned_workers", dimensions: dimensions).record(view.plannedWorkers ?? 0)
            Gauge(label: "fulcrum_model_predicted_p99_seconds", dimensions: dimensions).record(view.predictedP99)
            Gauge(label: "fulcrum_model_queue_delay_seconds", dimensions: dimensions).record(view.queueDelay)
            Gauge(label: "fulcrum_model_utilisation", dimensions: dimensions).record(view.predictedUtilisation)
        }
    }
}

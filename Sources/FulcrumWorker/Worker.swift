import FulcrumKernels
import FulcrumProtocol
import FulcrumRuntime
import FulcrumService
import Foundation
import Logging
import ServiceLifecycle

/// A compute-pool member: loads the model repository, serves the inference protocol for the
/// models it hosts, and keeps the balancer informed. `fulcrum-worker` calls `run`.
public enum Worker {
    /// Runs the worker until SIGTERM/SIGINT (or its parent exits, or the balancer drains it),
    /// then stops gracefully: reports DRAINING, finishes in-flight requests, exits.
    public static func run(_ configuration: WorkerConfiguration) async throws {
        let logger = Logger(label: "fulcrum.worker")
        BLASThreading.setThreadCount(configuration.threads)
        logger.info("CPU backend: OpenBLAS core \(BLASThreading.coreName), \(configuration.threads) thread(s)")

        let state = WorkerState(name: configuration.name.isEmpty ? "worker-\(getpid())" : configuration.name)
        let store = ModelStore(repository: ModelRepository(path: configuration.modelRepository), logger: logger)
        do {
            try store.loadAll()
        } catch {
            throw WorkerError(message: "cannot read the model repository '\(configuration.modelRepository)': \(error.message)")
        }
        state.phase = .ready

        let advertised = OnceValue<HostPort>()
        let inference = WorkerInferenceService(store: store, state: state, limit: MessageLimit(bytes: configuration.maxMessageBytes), logger: logger)
        let health = HealthService(services: ["inference.GRPCInferenceService"]) { state.isReady }
        let server = GRPCServerService(
            transport: GRPCTransport.server(configuration.listen, maxMessageBytes: MessageLimit(bytes: configuration.maxMessageBytes).transportBytes),
            services: [inference, health],
            logger: logger
        ) { bound in
            let address = configuration.advertise ?? bound
            advertised.set(address)
            logger.info("worker serving the inference protocol on \(bound) (advertised as \(address)), \(store.served.count) model versions ready")
            if let file = configuration.addressFile {
                try AddressFile.write(["grpc": bound.description, "advertise": address.description, "pid": String(getpid())], to: file)
            }
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if configuration.exitWithParent {
            services.append(.init(service: ParentWatch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: server))
        if let balancer = configuration.balancer {
            let link = BalancerLink(
                balancer: balancer, configuration: configuration, advertised: advertised,
                store: store, state: state, logger: logger
            )
            services.append(.init(service: link, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(30)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("worker stopped")
    }
}

/// A worker start-up failure, with a message an operator can act on.
public struct WorkerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

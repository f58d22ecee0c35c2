import FulcrumService
import Foundation
import Logging
import ServiceLifecycle

/// The public edge: a stateless frontend serving the inference protocol to clients and
/// forwarding predictions to the compute pool. `fulcrum-frontend` calls `run`.
public enum Frontend {
    /// Runs until SIGTERM/SIGINT (or the parent exits), then stops gracefully.
    public static func run(_ configuration: FrontendConfiguration) async throws {
        let logger = Logger(label: "fulcrum.frontend")
        let id = configuration.id.isEmpty ? "frontend-\(getpid())" : configuration.id
        let view = PoolView()
        let clients = WorkerClients(maxMessageBytes: configuration.maxMessageBytes, logger: logger)
        let watcher = PoolWatcher(balancer: configuration.balancer, frontendID: id, view: view, clients: clients, logger: logger)
        let inference = FrontendInferenceService(view: view, clients: clients, limit: MessageLimit(bytes: configuration.maxMessageBytes), logger: logger)
        let health = HealthService(services: ["inference.GRPCInferenceService"]) { view.isReady }
        let server = GRPCServerService(
            transport: GRPCTransport.server(configuration.grpc, maxMessageBytes: MessageLimit(bytes: configuration.maxMessageBytes).transportBytes),
            services: [inference, health],
            logger: logger
        ) { bound in
            logger.info("frontend serving the inference protocol on \(bound) (gRPC), pool from balancer \(configuration.balancer)")
            if let file = configuration.addressFile {
                try AddressFile.write(["grpc": bound.description, "pid": String(getpid())], to: file)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if configuration.exitWithParent {
            services.append(.init(service: ParentWatch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: clients))
        services.append(.init(service: watcher))
        services.append(.init(service: server))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("frontend stopped")
    }
}

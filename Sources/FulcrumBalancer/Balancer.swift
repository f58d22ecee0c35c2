import FulcrumService
import Foundation
import Logging
import ServiceLifecycle

/// The control plane: membership with leases, pool snapshots pushed to frontends, status.
/// `fulcrum-balancer` calls `run`.
public enum Balancer {
    /// Runs until SIGTERM/SIGINT (or the parent exits).
    public static func run(_ configuration: BalancerConfiguration) async throws {
        let logger = Logger(label: "fulcrum.balancer")
        let control = ControlService(lease: configuration.lease, reportInterval: configuration.reportInterval, logger: logger)
        let health = HealthService(services: ["fulcrum.control.v1.Balancer"]) { true }
        let server = GRPCServerService(
            transport: GRPCTransport.server(configuration.listen),
            services: [control, health],
            logger: logger
        ) { bound in
            logger.info("balancer listening on \(bound)")
            if let file = configuration.addressFile {
                try AddressFile.write(["grpc": bound.description, "pid": String(getpid())], to: file)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if configuration.exitWithParent {
            services.append(.init(service: ParentWatch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: server))
        services.append(.init(service: LeaseSweeper(control: control)))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Workers' report streams never end by themselves: give them a moment, then cancel.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(1)
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
                try? await Task.sleep(for: .milliseconds(250))
            }
        } onGracefulShutdown: {
            // Watch streams never end by themselves: close them so the server can stop.
            control.closeWatchers()
        }
    }
}

import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

/// Runs a `GRPCServer` as a ServiceLifecycle service: serves until graceful shutdown, then stops
/// accepting new RPCs and waits for the ones in flight to finish.
public struct GRPCServerService: Service {
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let transport: HTTP2ServerTransport.Posix
    private let onListening: @Sendable (HostPort) async throws -> Void
    private let logger: Logger

    /// - Parameters:
    ///   - transport: The bound transport (see `GRPCTransport.server`).
    ///   - services: The RPC services to register.
    ///   - interceptors: Applied to every call (for example `PeerRoleInterceptor`).
    ///   - logger: Where start and stop are logged.
    ///   - onListening: Called once with the actual bound address (resolves port 0).
    public init(
        transport: HTTP2ServerTransport.Posix,
        services: [any RegistrableRPCService],
        interceptors: [any ServerInterceptor] = [],
        logger: Logger,
        onListening: @escaping @Sendable (HostPort) async throws -> Void = { _ in }
    ) {
        self.transport = transport
        self.server = GRPCServer(transport: transport, services: services, interceptors: interceptors)
        self.onListening = onListening
        self.logger = logger
    }

    /// Serves until the service group shuts down gracefully or is cancelled.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.server.serve() }
                let address = try await self.transport.listeningAddress
                let bound: HostPort
                if let v4 = address.ipv4 {
                    bound = HostPort(host: v4.host, port: v4.port)
                } else if let v6 = address.ipv6 {
                    bound = HostPort(host: v6.host, port: v6.port)
                } else {
                    throw RPCError(code: .internalError, message: "unexpected listening address \(address)")
                }
                try await self.onListening(bound)
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.logger.info("gRPC server: graceful shutdown, finishing in-flight calls")
            self.server.beginGracefulShutdown()
        }
    }
}

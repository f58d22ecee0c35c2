import FulcrumService
import GRPCCore
import GRPCNIOTransportHTTP2

/// Runs `body` with a connected client to `target`, then shuts the client down.
func withGRPCClient<T: Sendable>(
    _ target: HostPort,
    maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes,
    tls: ClusterTLS? = nil,
    edge: GRPCTransport.EdgeTrust? = nil,
    _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    let client = try GRPCTransport.client(target, maxMessageBytes: maxMessageBytes, tls: tls, edge: edge)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.runConnections() }
        defer { client.beginGracefulShutdown() }
        return try await body(client)
    }
}

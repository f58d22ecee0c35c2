import GRPCCore
import GRPCNIOTransportHTTP2

/// The one place where Fulcrum's services make gRPC transports, so that message limits,
/// keep-alive and plaintext/TLS choices are the same everywhere.
public enum GRPCTransport {
    /// The default limit on one request or response message: 64 MiB.
    public static let defaultMaxMessageBytes = 64 * 1024 * 1024

    /// A plaintext HTTP/2 server transport bound to `address` (port 0 picks a free port).
    /// Messages over `maxMessageBytes` are cut off by the transport (see `MessageLimit`, which
    /// passes twice the configured limit here and refuses with a status below that).
    public static func server(
        _ address: HostPort,
        maxMessageBytes: Int = defaultMaxMessageBytes
    ) -> HTTP2ServerTransport.Posix {
        let bind: GRPCNIOTransportCore.SocketAddress =
            address.host.contains(":")
            ? .ipv6(host: address.host, port: address.port)
            : .ipv4(host: address.host, port: address.port)
        return server(bind, maxMessageBytes: maxMessageBytes)
    }

    /// The same server transport on any socket address (a Unix socket for `GRPCEdgeServer`'s
    /// inner server).
    public static func server(
        _ bind: GRPCNIOTransportCore.SocketAddress,
        maxMessageBytes: Int = defaultMaxMessageBytes
    ) -> HTTP2ServerTransport.Posix {
        HTTP2ServerTransport.Posix(
            address: bind,
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.rpc.maxRequestPayloadSize = maxMessageBytes
                // Clients may keep idle connections open (frontends keep one per worker).
                config.connection.maxIdleTime = nil
                // One client connection may carry many calls at once (a frontend multiplexes
                // all of its calls to a worker on one connection; load generators do the same).
                config.http2.maxConcurrentStreams = 4096
                config.http2.targetWindowSize = 8 * 1024 * 1024
            }
        )
    }

    /// A plaintext HTTP/2 client for `target` that allows messages up to `maxMessageBytes` in
    /// both directions. The caller runs `runConnections()` and shuts the client down.
    public static func client(
        _ target: HostPort,
        maxMessageBytes: Int = defaultMaxMessageBytes
    ) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        var methodConfig = MethodConfig(names: [MethodConfig.Name(service: "")])
        methodConfig.maxRequestMessageBytes = maxMessageBytes
        methodConfig.maxResponseMessageBytes = maxMessageBytes
        let transport = try HTTP2ClientTransport.Posix(
            target: .dns(host: target.host, port: target.port),
            transportSecurity: .plaintext,
            config: .defaults { config in
                // Reconnect quickly: a worker that restarts should be usable again at once.
                config.backoff = .init(initial: .milliseconds(50), max: .seconds(1), multiplier: 1.6, jitter: 0.2)
            },
            serviceConfig: ServiceConfig(methodConfig: [methodConfig])
        )
        return GRPCClient(transport: transport)
    }
}

import GRPCCore
import GRPCNIOTransportHTTP2

/// The one place where Fulcrum's services make gRPC transports, so that message limits,
/// keep-alive and plaintext/TLS choices are the same everywhere.
public enum GRPCTransport {
    /// The default limit on one request or response message: 64 MiB.
    public static let defaultMaxMessageBytes = 64 * 1024 * 1024

    /// An HTTP/2 server transport bound to `address` (port 0 picks a free port): mutual TLS with
    /// `tls` (a client certificate from the cluster's CA is required), plaintext without.
    /// Messages over `maxMessageBytes` are cut off by the transport (see `MessageLimit`, which
    /// passes twice the configured limit here and refuses with a status below that).
    public static func server(
        _ address: HostPort,
        maxMessageBytes: Int = defaultMaxMessageBytes,
        tls: ClusterTLS? = nil
    ) -> HTTP2ServerTransport.Posix {
        let bind: GRPCNIOTransportCore.SocketAddress =
            address.host.contains(":")
            ? .ipv6(host: address.host, port: address.port)
            : .ipv4(host: address.host, port: address.port)
        return server(bind, maxMessageBytes: maxMessageBytes, tls: tls)
    }

    /// The same server transport on any socket address (a Unix socket for `GRPCEdgeServer`'s
    /// inner server).
    public static func server(
        _ bind: GRPCNIOTransportCore.SocketAddress,
        maxMessageBytes: Int = defaultMaxMessageBytes,
        tls: ClusterTLS? = nil
    ) -> HTTP2ServerTransport.Posix {
        HTTP2ServerTransport.Posix(
            address: bind,
            transportSecurity: tls?.serverSecurity ?? .plaintext,
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

    /// How a client trusts a frontend's public port when that port serves TLS
    /// (`fulcrum-frontend --edge-tls-cert`).
    public enum EdgeTrust: Sendable {
        /// The port's certificate must chain to the CA in this PEM file and name the host dialled.
        case caFile(String)
        /// Any certificate: only for `fulcrum up` asking its own child, on loopback, whether it
        /// is ready (no request data is sent).
        case ownChild
    }

    /// An HTTP/2 client for `target` that allows messages up to `maxMessageBytes` in both
    /// directions: mutual TLS with `tls` (the server must present a certificate from the
    /// cluster's CA); else TLS to a frontend's public port trusted as `edge` says (no client
    /// certificate); else plaintext. The caller runs `runConnections()` and shuts it down.
    public static func client(
        _ target: HostPort,
        maxMessageBytes: Int = defaultMaxMessageBytes,
        tls: ClusterTLS? = nil,
        edge: EdgeTrust? = nil
    ) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        var methodConfig = MethodConfig(names: [MethodConfig.Name(service: "")])
        methodConfig.maxRequestMessageBytes = maxMessageBytes
        methodConfig.maxResponseMessageBytes = maxMessageBytes
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        switch (tls, edge) {
        case (let tls?, _): security = tls.clientSecurity
        case (nil, .caFile(let path)?): security = .tls { $0.trustRoots = .certificates([.file(path: path, format: .pem)]) }
        case (nil, .ownChild?): security = .tls { $0.serverCertificateVerification = .noVerification }
        case (nil, nil): security = .plaintext
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: resolvable(target),
            transportSecurity: security,
            config: .defaults { config in
                // Reconnect quickly: a worker that restarts should be usable again at once.
                config.backoff = .init(initial: .milliseconds(50), max: .seconds(1), multiplier: 1.6, jitter: 0.2)
            },
            serviceConfig: ServiceConfig(methodConfig: [methodConfig])
        )
        return GRPCClient(transport: transport)
    }

    /// An IP literal as such (TLS sends no server name for it: SNI cannot carry an address), a
    /// name through DNS.
    private static func resolvable(_ target: HostPort) -> any ResolvableTarget {
        if target.host.contains(":") { return .ipv6(host: target.host, port: target.port) }
        let parts = target.host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return .ipv4(host: target.host, port: target.port) }
        return .dns(host: target.host, port: target.port)
    }
}

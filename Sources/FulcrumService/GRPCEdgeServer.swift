import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization

/// The inference protocol's gRPC port, with ModelInfer on a fast path (docs/performance.md).
///
/// The port is served by swift-nio-http2 directly: a ModelInfer stream is answered from raw
/// frames by `EdgeConnection`, which calls `modelInfer`; every other stream is relayed to a
/// grpc-swift server, with `services`, that listens only on a Unix socket in a private directory
/// (mode 0700) made for this process and removed when it stops. Clients see one conformant gRPC
/// endpoint either way.
///
/// On graceful shutdown the listener closes, each connection gets GOAWAY and closes once its
/// calls have finished, then the inner server stops. Runs as a ServiceLifecycle service.
public struct GRPCEdgeServer: Service {
    private let address: HostPort
    private let maxMessageBytes: Int
    private let services: [any RegistrableRPCService]
    private let interceptors: [any ServerInterceptor]
    private let modelInfer: ModelInferHandler
    private let shed: EdgeShedding?
    private let limits: EdgeLimits
    private let tls: NIOSSLContext?
    private let revocations: ClusterTLS?
    private let roles: [String: Set<ClusterTLS.Role>]
    private let logger: Logger
    private let onListening: @Sendable (HostPort) async throws -> Void

    /// - Parameters:
    ///   - address: Where to listen (port 0 picks a free port).
    ///   - maxMessageBytes: The largest request message (give `MessageLimit.transportBytes`).
    ///   - services: The services grpc-swift serves (ModelInfer included, for the inner socket).
    ///   - interceptors: Applied by grpc-swift to every relayed method (not to the fast path).
    ///   - modelInfer: The fast path's handler.
    ///   - shed: Asked as each ModelInfer call's headers arrive; an error refuses the call at once,
    ///     before its message is read or decoded (the frontend's admission limit).
    ///   - limits: What one client may hold: connections, timeouts, bytes still arriving.
    ///   - tls: Serve TLS with this context (a worker: the cluster's mutual TLS, `ClusterTLS`;
    ///     a frontend: its edge certificate); nil serves plaintext.
    ///   - roles: Relayed methods (`/package.Service/Method`) that only a peer whose cluster
    ///     certificate has one of these roles may call; checked here, at the TLS connection,
    ///     because the inner server sees a Unix socket and no certificate.
    ///   - revocations: With `tls`, the cluster TLS whose `--tls-revoked` list a peer's
    ///     certificate is checked against once its handshake completes (a listed one: closed).
    ///   - onListening: Called once with the bound address.
    public init(
        address: HostPort,
        maxMessageBytes: Int,
        services: [any RegistrableRPCService],
        interceptors: [any ServerInterceptor] = [],
        modelInfer: @escaping ModelInferHandler,
        shed: EdgeShedding? = nil,
        limits: EdgeLimits = EdgeLimits(),
        tls: NIOSSLContext? = nil,
        roles: [String: Set<ClusterTLS.Role>] = [:],
        revocations: ClusterTLS? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (HostPort) async throws -> Void = { _ in }
    ) {
        self.revocations = revocations
        self.address = address
        self.maxMessageBytes = maxMessageBytes
        self.services = services
        self.interceptors = interceptors
        self.modelInfer = modelInfer
        self.shed = shed
        self.limits = limits
        self.tls = tls
        self.roles = roles
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let directory = try Self.privateDirectory()
        let socket = directory + "/grpc.sock"
        defer {
            unlink(socket)
            rmdir(directory)
        }
        let transport = GRPCTransport.server(.unixDomainSocket(path: socket), maxMessageBytes: maxMessageBytes)
        let inner = GRPCServer(transport: transport, services: services, interceptors: interceptors)
        let connections = EdgeConnections()
        let configuration = EdgeConnection.Configuration(
            maxMessageBytes: maxMessageBytes, modelInfer: modelInfer, shed: shed, relaySocket: socket, limits: limits,
            budget: EdgeBudget(maxBytes: limits.maxArrivingBytes), roles: roles)

        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await inner.serve() }
                _ = try await transport.listeningAddress
                let listener: any Channel
                do {
                    listener = try await Self.bind(
                        address, configuration: configuration, tls: tls, revocations: revocations, connections: connections, logger: logger)
                } catch {
                    inner.beginGracefulShutdown()
                    throw error
                }
                connections.listening(listener)
                let local = listener.localAddress
                guard let port = local?.port else {
                    throw RPCError(code: .internalError, message: "unexpected listening address \(String(describing: local))")
                }
                try await onListening(HostPort(host: local?.ipAddress ?? address.host, port: port))
                try await withTaskCancellationHandler {
                    try? await listener.closeFuture.get()
                    await connections.drained()
                } onCancel: {
                    connections.closeAll()
                }
                inner.beginGracefulShutdown()
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            logger.info("gRPC server: graceful shutdown, finishing in-flight calls")
            connections.drain()
        }
    }

    private static func bind(
        _ address: HostPort, configuration: EdgeConnection.Configuration, tls: NIOSSLContext?, revocations: ClusterTLS?,
        connections: EdgeConnections, logger: Logger
    ) async throws -> any Channel {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = EdgeConnection.settings
        connection.maximumRecentlyResetStreams = GRPCWire.rememberedResets
        let stream = configuration.limits.http2Streams
        let maxConnections = configuration.limits.maxConnections
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connections.count < maxConnections else {
                    connections.refused(logger: logger, limit: maxConnections)
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let edge = EdgeConnection(configuration: configuration)
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                        if let gate = revocations?.revocationGate(logger: logger) {
                            try channel.pipeline.syncOperations.addHandler(gate)
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(EdgeReadStamp(edge: edge))
                    try channel.pipeline.syncOperations.addHandler(
                        NIOHTTP2Handler(mode: .server, connectionConfiguration: connection, streamConfiguration: stream))
                    try channel.pipeline.syncOperations.addHandler(edge)
                    connections.add(channel, NIOLoopBound(edge, eventLoop: channel.eventLoop))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// A directory only this user can enter, for the inner server's socket. Under /tmp unless
    /// TMPDIR is short enough for a socket path (108 bytes).
    private static func privateDirectory() throws -> String {
        var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        if base.utf8.count > 60 || base.isEmpty { base = "/tmp" }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/fulcrum-grpc-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RPCError(code: .internalError, message: "cannot make a private directory under \(base) for the gRPC server's socket: errno \(errno)")
        }
        return String(cString: made)
    }
}

/// The edge server's open connections, so that shutdown can drain or close them.
private final class EdgeConnections: Sendable {
    private struct State {
        var listener: (any Channel)?
        var open: [ObjectIdentifier: (channel: any Channel, edge: NIOLoopBound<EdgeConnection>)] = [:]
        var draining = false
        var refused = 0
        var lastRefusalLog: ContinuousClock.Instant? = nil
    }
    private let state = Mutex(State())

    /// Open connections now.
    var count: Int { state.withLock { $0.open.count } }

    /// Counts a connection closed for the cap, logging at most every 10 s.
    func refused(logger: Logger, limit: Int) {
        let now = ContinuousClock.now
        let report: Int? = state.withLock { s in
            s.refused += 1
            guard s.lastRefusalLog.map({ now - $0 > .seconds(10) }) ?? true else { return nil }
            s.lastRefusalLog = now
            defer { s.refused = 0 }
            return s.refused
        }
        if let report {
            logger.warning("gRPC: at the connection limit (\(limit) open); closed \(report) new connection(s)")
        }
    }

    func listening(_ listener: any Channel) {
        let draining = state.withLock { state in
            state.listener = listener
            return state.draining
        }
        if draining { listener.close(promise: nil) }
    }

    func add(_ channel: any Channel, _ edge: NIOLoopBound<EdgeConnection>) {
        let key = ObjectIdentifier(channel)
        let draining = state.withLock { state in
            state.open[key] = (channel, edge)
            return state.draining
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLock { $0.open.removeValue(forKey: key) }
        }
        if draining {
            channel.eventLoop.execute { edge.value.drain() }
        }
    }

    /// Closes the listener and asks every connection to finish its calls and close.
    func drain() {
        let (listener, open) = state.withLock { state in
            state.draining = true
            return (state.listener, Array(state.open.values))
        }
        listener?.close(promise: nil)
        for (channel, edge) in open {
            channel.eventLoop.execute { edge.value.drain() }
        }
    }

    /// Closes the listener and every connection at once.
    func closeAll() {
        let (listener, open) = state.withLock { state in
            state.draining = true
            return (state.listener, Array(state.open.values))
        }
        listener?.close(promise: nil)
        for (channel, _) in open { channel.close(promise: nil) }
    }

    /// Returns once every connection has closed.
    func drained() async {
        while true {
            let open = state.withLock { Array($0.open.values) }
            guard let first = open.first else { return }
            try? await first.channel.closeFuture.get()
            // The close callback removes it; give it its turn.
            _ = state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(first.channel)) }
        }
    }
}

/// Closes a TLS connection whose peer presented a certificate the cluster's `--tls-revoked`
/// lists, as soon as the handshake completes; nothing it sent is passed on. Once the peer has
/// checked out it takes itself out of the pipeline, so the connection's reads never pass here.
/// Placed right after the NIOSSL handler, of a server (a worker's port) or a client (a
/// frontend's link to a worker); `ClusterTLS.revocationGate(logger:)` makes one.
public final class RevokedPeerGate: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let tls: ClusterTLS
    private let logger: Logger
    private var refused = false

    public init(tls: ClusterTLS, logger: Logger) {
        self.tls = tls
        self.logger = logger
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            let certificate = (try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self))?.peerCertificate
            if let certificate, let refusal = tls.revocationRefusal(certificate) {
                refused = true
                logger.warning("closed the connection with \(context.remoteAddress?.description ?? "?"): \(refusal)")
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        context.fireChannelRead(data)
    }
}

extension ClusterTLS {
    /// The handler that enforces `--tls-revoked` on a new connection, nil without such a list
    /// (then nothing is added to the connection's pipeline).
    public func revocationGate(logger: Logger) -> RevokedPeerGate? {
        revokedFile == nil ? nil : RevokedPeerGate(tls: self, logger: logger)
    }
}

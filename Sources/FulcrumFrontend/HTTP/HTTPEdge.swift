import FulcrumService
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore
import ServiceLifecycle

/// The frontend's HTTP/REST edge: a Hummingbird 2 application serving `HTTPRoutes` on one
/// address, as a ServiceLifecycle service. It binds when run (port 0 picks a free port),
/// reports the bound address once through `onListening`, and on graceful shutdown stops
/// accepting connections and lets requests in flight finish (Hummingbird's own group follows
/// the enclosing group's shutdown).
struct HTTPEdge: Service {
    private let address: HostPort
    private let routes: HTTPRoutes
    private let idleTimeout: TimeAmount
    private let readTimeout: TimeAmount
    private let tls: TLSConfiguration?
    private let logger: Logger
    private let onListening: @Sendable (HostPort) async -> Void

    /// - Parameters:
    ///   - address: Where to listen.
    ///   - inference: The transport-free operations the routes call.
    ///   - maxBodyBytes: Larger request bodies get 413.
    ///   - idleTimeout: A connection with nothing read or written for this long is closed.
    ///   - readTimeout: A request (head and body) must arrive within this long of its first
    ///     byte (of the connection's opening, for the first), or the connection is closed.
    ///   - tls: Serve HTTPS with this configuration (`EdgeTLS`); nil serves plaintext.
    ///   - logger: Where start and request failures are logged.
    ///   - onListening: Called once with the bound address (port 0 resolved).
    init(
        address: HostPort,
        inference: FrontendInferenceService,
        maxBodyBytes: Int,
        idleTimeout: TimeAmount = .seconds(300),
        readTimeout: TimeAmount = .seconds(30),
        tls: TLSConfiguration? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (HostPort) async -> Void = { _ in }
    ) {
        self.address = address
        self.routes = HTTPRoutes(inference: inference, maxBodyBytes: maxBodyBytes)
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.tls = tls
        self.logger = logger
        self.onListening = onListening
    }

    /// Serves until the service group shuts down gracefully or is cancelled.
    func run() async throws {
        let router = Hummingbird.Router(context: BasicRequestContext.self)
        routes.register(on: router)
        let requested = address
        let onListening = onListening
        let logger = logger
        let (idleTimeout, readTimeout, tls) = (idleTimeout, readTimeout, tls)
        let server = HTTPServerBuilder { responder in
            let http1 = HTTP1ChannelWithReadDeadline(responder: responder, idleTimeout: idleTimeout, readTimeout: readTimeout)
            if let tls { return try TLSChannel(http1, tlsConfiguration: tls) }
            return http1
        }
        let application = Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? requested.port
                let bound = HostPort(host: requested.host, port: port)
                logger.info("frontend serving the inference protocol on \(bound) (HTTP/REST)")
                await onListening(bound)
            },
            logger: logger
        )
        try await application.run()
    }
}

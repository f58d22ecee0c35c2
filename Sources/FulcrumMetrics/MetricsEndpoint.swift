import FulcrumService
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle

/// Prometheus metrics for a Fulcrum service: `bootstrap()` makes swift-metrics record into a
/// Prometheus registry (with latency buckets suited to prediction serving: 100 µs to 10 s), and
/// `MetricsEndpoint` serves that registry as Prometheus text on `GET /metrics`.
public enum FulcrumMetrics {
    /// Bucket bounds for every timer (seconds): prediction latencies from 100 µs up.
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(10),
    ]

    /// Bucket bounds for value histograms (batch sizes, message bytes): powers of two.
    public static let sizeBuckets: [Double] = (0...26).map { Double(1 << $0) }

    /// Makes swift-metrics record into a new registry and returns it. Call once per process,
    /// before any metric is created.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = latencyBuckets
        factory.defaultValueHistogramBuckets = sizeBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}

/// Serves `GET /metrics` (Prometheus text format 0.0.4) from a registry, as a ServiceLifecycle
/// service. Binds when run (port 0 picks a free port) and reports the bound address once.
public struct MetricsEndpoint: Service {
    private let address: HostPort
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let onListening: @Sendable (HostPort) async -> Void
    private let beforeScrape: @Sendable () -> Void
    private let isReady: (@Sendable () -> Bool)?

    /// - Parameters:
    ///   - beforeScrape: refreshes gauges that are read rather than pushed (queue depths, pool
    ///     sizes) right before each scrape.
    ///   - isReady: With it, the endpoint also answers `GET /health/live` (200) and
    ///     `GET /health/ready` (200, or 503 while it returns false): plain HTTP probes for a
    ///     service whose gRPC port speaks only mutual TLS, which a kubelet cannot (ClusterTLS).
    public init(
        settings: MetricsSettings, logger: Logger,
        beforeScrape: @escaping @Sendable () -> Void = {},
        isReady: (@Sendable () -> Bool)? = nil,
        onListening: @escaping @Sendable (HostPort) async -> Void = { _ in }
    ) {
        self.address = settings.listen
        self.registry = settings.registry
        self.logger = logger
        self.beforeScrape = beforeScrape
        self.isReady = isReady
        self.onListening = onListening
    }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        let registry = registry
        let beforeScrape = beforeScrape
        router.get("metrics") { _, _ -> Response in
            beforeScrape()
            let body = registry.emitToBuffer()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
        if let isReady {
            router.get("health/live") { _, _ -> Response in Response(status: .ok) }
            router.get("health/ready") { _, _ -> Response in Response(status: isReady() ? .ok : .serviceUnavailable) }
        }
        let requested = address
        let logger = logger
        let onListening = onListening
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in
                let bound = HostPort(host: requested.host, port: channel.localAddress?.port ?? requested.port)
                logger.info("metrics on http://\(bound)/metrics")
                await onListening(bound)
            },
            logger: logger
        )
        try await application.run()
    }
}

/// Where a service serves its metrics, and the registry its metrics record into.
public struct MetricsSettings: Sendable {
    public var listen: HostPort
    public var registry: PrometheusCollectorRegistry

    public init(listen: HostPort, registry: PrometheusCollectorRegistry) {
        self.listen = listen
        self.registry = registry
    }
}

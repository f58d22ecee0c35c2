import FulcrumMetrics
import FulcrumSchema
import FulcrumService
import Metrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The public edge: a stateless frontend serving the inference protocol to clients and
/// forwarding predictions to the compute pool. `fulcrum-frontend` calls `run`.
public enum Frontend {
    /// Runs until SIGTERM/SIGINT (or the parent exits), then stops gracefully.
    public static func run(_ configuration: FrontendConfiguration) async throws {
        let logger = Logger(label: "fulcrum.frontend")
        let id = configuration.id.isEmpty ? "frontend-\(getpid())" : configuration.id
        let view = PoolView()
        let clients = try WorkerClients(maxMessageBytes: configuration.maxMessageBytes, tls: configuration.tls, logger: logger)
        let network = NetworkStatistics()
        let watcher = PoolWatcher(balancer: configuration.balancer, tls: configuration.tls, frontendID: id, view: view, clients: clients, network: network, logger: logger)
        let apiKeys = try configuration.apiKeysFile.map { file throws(APIKeysError) in try APIKeys(file: file) }
        if let apiKeys {
            logger.info("API keys from \(apiKeys.path): \(apiKeys.tenants.count) tenant(s); SIGHUP reloads them")
        }
        let local = try configuration.modelRepository.map { path throws(FulcrumSchema.RuntimeError) in
            try FrontendModels(repository: path, kinds: configuration.processors, logger: logger)
        } ?? FrontendModels()
        let predictionLog = try configuration.predictionLog.map { settings in
            try PredictionLog(settings: settings, frontendID: id, logger: logger)
        }
        if let predictionLog {
            let rates = predictionLog.settings.modelRates.sorted { $0.key < $1.key }.map { "\($0.key) \(TrafficRoute.percent($0.value))%" }
            logger.info("prediction log in \(predictionLog.settings.directory): \(TrafficRoute.percent(predictionLog.settings.defaultRate))% of predictions\(rates.isEmpty ? "" : " (\(rates.joined(separator: ", ")))")")
        }
        defer { predictionLog?.close() }
        let admission = Admission(
            maxRequests: configuration.maxInFlight, maxBytes: configuration.maxInFlightBytes ?? Admission.defaultMaxBytes,
            mode: configuration.admission, tolerance: configuration.admissionTolerance)
        let inference = FrontendInferenceService(
            view: view, clients: clients, network: network, limit: MessageLimit(bytes: configuration.maxMessageBytes),
            control: configuration.modelControl, admission: admission,
            apiKeys: apiKeys, local: local, predictionLog: predictionLog, logger: logger)
        let health = HealthService(services: ["inference.GRPCInferenceService"]) { view.isReady }
        var expected: Set<String> = configuration.http == nil ? ["grpc"] : ["grpc", "http"]
        if configuration.metrics != nil { expected.insert("metrics") }
        let addresses = BoundAddresses(file: configuration.addressFile, expecting: expected)
        let edgeTLS = try configuration.edgeTLS.map { files throws(ClusterTLSError) in
            try EdgeTLS.context(certificate: files.certificate, key: files.key)
        }
        let server = GRPCEdgeServer(
            address: configuration.grpc,
            maxMessageBytes: MessageLimit(bytes: configuration.maxMessageBytes).transportBytes,
            services: [inference, health],
            interceptors: apiKeys.map { [APIKeyInterceptor(keys: $0)] } ?? [],
            modelInfer: { try await inference.modelInfer($0, metadata: $1) },
            shed: { admission.refusalIfFull(timeout: $0) },
            limits: configuration.edgeLimits,
            tls: edgeTLS,
            logger: logger
        ) { bound in
            logger.info("frontend serving the inference protocol on \(bound) (gRPC), pool from balancer \(configuration.balancer)")
            try addresses.record("grpc", bound)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for exporter in try TracingSetup.bootstrap(service: "fulcrum-frontend", instance: id, settings: configuration.tracing, logger: logger) {
            services.append(.init(service: exporter))
        }
        if configuration.exitWithParent {
            services.append(.init(service: ParentWatch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        // SIGHUP reloads the API keys and the cluster certificate (one signal source for both).
        let reloads = [apiKeys.map { APIKeys.reloadAction($0, logger: logger) }, configuration.tls.map { $0.reloadAction(logger: logger) }].compactMap { $0 }
        if !reloads.isEmpty { services.append(.init(service: HangupReloader(reloads))) }
        services.append(.init(service: clients))
        services.append(.init(service: watcher))
        services.append(.init(service: server))
        if let http = configuration.http {
            let edge = HTTPEdge(
                address: http, inference: inference,
                maxBodyBytes: MessageLimit(bytes: configuration.maxMessageBytes).transportBytes,
                idleTimeout: configuration.edgeLimits.idleTimeout,
                readTimeout: configuration.edgeLimits.requestReadTimeout,
                tls: try configuration.edgeTLS.map { files throws(ClusterTLSError) in
                    try EdgeTLS.configuration(certificate: files.certificate, key: files.key, alpn: ["http/1.1"])
                },
                logger: logger
            ) { bound in
                do {
                    try addresses.record("http", bound)
                } catch {
                    logger.error("cannot write the address file: \(error)")
                }
            }
            services.append(.init(service: edge))
        }
        if let metrics = configuration.metrics {
            let endpoint = MetricsEndpoint(
                settings: metrics, logger: logger,
                beforeScrape: {
                    // Per-worker load as this frontend sees it (its calls in flight), and the
                    // imbalance max/mean over the ready workers.
                    let loads = view.readyWorkers.keys.map { ($0, clients.outstanding($0)) }
                    for (worker, load) in loads {
                        Gauge(label: "fulcrum_frontend_worker_outstanding", dimensions: [("worker", worker)]).record(load)
                    }
                    let mean = loads.isEmpty ? 0 : Double(loads.reduce(0) { $0 + $1.1 }) / Double(loads.count)
                    let peak = Double(loads.map(\.1).max() ?? 0)
                    Gauge(label: "fulcrum_frontend_routing_imbalance").record(mean > 0 ? peak / mean : 1)
                    Gauge(label: "fulcrum_frontend_ready_workers").record(loads.count)
                    // The admission limit in force (it moves under --admission adaptive) and its use.
                    let held = admission.inFlight
                    Gauge(label: "fulcrum_frontend_admission_limit").record(admission.limit)
                    Gauge(label: "fulcrum_frontend_admission_in_flight").record(held.requests)
                    Gauge(label: "fulcrum_frontend_admission_in_flight_bytes").record(held.bytes)
                },
                onListening: { bound in
                    do {
                        try addresses.record("metrics", bound)
                    } catch {
                        logger.error("cannot write the address file: \(error)")
                    }
                }
            )
            services.append(.init(service: endpoint))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("frontend stopped")
    }

    /// Collects the addresses the listeners bound and writes the address file once all of them
    /// have (with the pid), so a supervisor never reads a partial file.
    private final class BoundAddresses: Sendable {
        private let file: String?
        private let expected: Set<String>
        private let entries: Mutex<[String: String]>

        init(file: String?, expecting expected: Set<String>) {
            self.file = file
            self.expected = expected
            self.entries = Mutex(["pid": String(getpid())])
        }

        /// Records `key` (for example "grpc") and writes the file when every expected key is in.
        func record(_ key: String, _ address: HostPort) throws {
            let complete: [String: String]? = entries.withLock { entries in
                entries[key] = address.description
                return expected.isSubset(of: entries.keys) ? entries : nil
            }
            if let complete, let file {
                try AddressFile.write(complete, to: file)
            }
        }
    }
}

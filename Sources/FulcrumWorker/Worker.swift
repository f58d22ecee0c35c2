import FulcrumKernels
import FulcrumMetrics
import Metrics
import FulcrumProtocol
import FulcrumRuntime
import FulcrumService
import Foundation
import Logging
import ServiceLifecycle

/// A compute-pool member: loads the model repository, serves the inference protocol for the
/// models it hosts, and keeps the balancer informed. `fulcrum-worker` calls `run`.
public enum Worker {
    /// Runs the worker until SIGTERM/SIGINT (or its parent exits, or the balancer drains it),
    /// then stops gracefully: reports DRAINING, finishes in-flight requests, exits.
    public static func run(_ configuration: WorkerConfiguration) async throws {
        var adjusted = configuration
        let logger = Logger(label: "fulcrum.worker")
        BLASThreading.setThreadCount(configuration.threads)
        var placement = DevicePlacement.cpu
        var device: VulkanDeviceInfo?
        if let emulation = configuration.emulation {
            logger.notice("emulated backend (a rehearsal tool): every execution waits \(emulation) and returns zeros")
        } else {
            logger.info("CPU kernels: \(configuration.cpuKernels?.description ?? "OpenBLAS \(BLASThreading.coreName)"), \(configuration.threads) thread(s)")
            if case .vulkan = configuration.backend {
                // Open the device before anything listens: a missing or broken device stops the
                // worker here, with the reason, unless --cpu-fallback asks to serve on the CPU.
                let vulkan = DevicePlacement(backend: configuration.backend)
                do {
                    device = try vulkan.openDefaultDevice()?.info
                    placement = vulkan
                    logger.info("Vulkan backend: \(device.map(\.description) ?? "no device")")
                } catch {
                    guard configuration.cpuFallback else { throw WorkerError(message: "--backend vulkan: \(error.message)") }
                    logger.error("--backend vulkan: \(error.message); serving on the CPU (--cpu-fallback)")
                    adjusted.backend = .cpu
                }
            }
        }
        let configuration = adjusted

        let state = WorkerState(name: configuration.name.isEmpty ? "worker-\(getpid())" : configuration.name)
        let exporters: [any Service]
        do {
            exporters = try TracingSetup.bootstrap(service: "fulcrum-worker", instance: state.id, settings: configuration.tracing, logger: logger)
        } catch {
            throw WorkerError(message: error.description)
        }
        let store = ModelStore(
            repository: ModelRepository(path: configuration.modelRepository, placement: placement), emulation: configuration.emulation, logger: logger
        )
        do {
            try store.loadAll()
        } catch {
            throw WorkerError(message: "cannot read the model repository '\(configuration.modelRepository)': \(error.message)")
        }
        state.phase = .ready

        let advertised = OnceValue<HostPort>()
        let metricsBound = OnceValue<HostPort>()
        let inference = WorkerInferenceService(
            store: store, state: state, limit: MessageLimit(bytes: configuration.maxMessageBytes),
            control: configuration.modelControl, logger: logger)
        let health = HealthService(services: ["inference.GRPCInferenceService"]) { state.isReady }
        let serverTLS = try configuration.tls.map { tls throws(WorkerError) in
            do throws(ClusterTLSError) { return try tls.serverContext() } catch { throw WorkerError(message: error.message) }
        }
        let server = GRPCEdgeServer(
            address: configuration.listen,
            maxMessageBytes: MessageLimit(bytes: configuration.maxMessageBytes).transportBytes,
            services: [inference, health],
            modelInfer: { try await inference.modelInfer($0, metadata: $1) },
            tls: serverTLS,
            // Repository control moves what the pool serves: only the frontends (which pass an
            // admin's call on, token included) and the balancer may ask a worker for it.
            roles: serverTLS == nil ? [:] : Dictionary(uniqueKeysWithValues: ["RepositoryModelLoad", "RepositoryModelUnload"].map {
                ("/inference.GRPCInferenceService/\($0)", [ClusterTLS.Role.frontend, .balancer])
            }),
            revocations: configuration.tls,
            logger: logger
        ) { bound in
            let address = configuration.advertise ?? bound
            advertised.set(address)
            logger.info("worker serving the inference protocol on \(bound) (advertised as \(address)), \(store.served.count) model versions ready")
            if let file = configuration.addressFile {
                var entries = ["grpc": bound.description, "advertise": address.description, "pid": String(getpid())]
                if configuration.metrics != nil { entries["metrics"] = await metricsBound.value.description }
                try AddressFile.write(entries, to: file)
            }
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = exporters.map { .init(service: $0) }
        if configuration.exitWithParent {
            services.append(.init(service: ParentWatch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: server))
        if let tls = configuration.tls { services.append(.init(service: HangupReloader([tls.reloadAction(logger: logger)]))) }
        if let metrics = configuration.metrics {
            let endpoint = MetricsEndpoint(
                settings: metrics, logger: logger,
                beforeScrape: {
                    for served in store.served {
                        let dimensions = [("model", served.name), ("version", served.version)]
                        Gauge(label: "fulcrum_worker_queue_depth", dimensions: dimensions).record(served.scheduler.queueDepth)
                        Gauge(label: "fulcrum_worker_batch_limit", dimensions: dimensions).record(served.scheduler.batchLimit)
                    }
                },
                isReady: { state.isReady },
                onListening: { metricsBound.set($0) }
            )
            services.append(.init(service: endpoint))
        }
        if let balancer = configuration.balancer {
            let link = BalancerLink(
                balancer: balancer, configuration: configuration, advertised: advertised,
                metricsAddress: configuration.metrics == nil ? nil : metricsBound, device: device,
                store: store, state: state, logger: logger
            )
            services.append(.init(service: link, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(30)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("worker stopped")
    }
}

/// A worker start-up failure, with a message an operator can act on.
public struct WorkerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

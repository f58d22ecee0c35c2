import FulcrumKernels
import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

/// The worker's control-plane connection: joins the balancer, then keeps the Report stream open,
/// sending load every `reportInterval` and carrying out directives. Rejoins when the balancer
/// restarts or forgets the worker. On graceful shutdown (or a drain directive) it reports
/// DRAINING, keeps serving for the drain grace period so frontends stop routing here, and returns.
struct BalancerLink: Service {
    let balancer: HostPort
    let configuration: WorkerConfiguration
    let advertised: OnceValue<HostPort>
    /// The bound metrics endpoint, when the worker serves one.
    let metricsAddress: OnceValue<HostPort>?
    /// The Vulkan device the worker opened, reported at join (nil: the CPU).
    let device: VulkanDeviceInfo?
    let store: ModelStore
    let state: WorkerState
    let logger: Logger

    private static let reportInterval: Duration = .milliseconds(250)

    func run() async throws {
        let client = try GRPCTransport.client(balancer, tls: configuration.tls)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            let control = Fulcrum_Control_V1_Balancer.Client(wrapping: client)
            let address = await advertised.value
            let metrics = await metricsAddress?.value
            await withGracefulShutdownHandler {
                await session(control, address: address, metrics: metrics)
            } onGracefulShutdown: {
                if state.phase != .draining {
                    logger.info("stopping: reporting DRAINING to the balancer")
                    state.phase = .draining
                }
            }
        }
    }

    /// Joins and reports until the worker drains; reconnects after failures.
    private func session(
        _ control: Fulcrum_Control_V1_Balancer.Client<HTTP2ClientTransport.Posix>, address: HostPort, metrics: HostPort?
    ) async {
        var warned = false
        while state.phase != .draining {
            do {
                var join = Fulcrum_Control_V1_JoinRequest()
                join.address = address.description
                join.zone = configuration.zone
                join.backend = configuration.backendName
                join.pid = Int32(getpid())
                join.name = configuration.name
                join.models = store.hostedModels
                if let device {
                    join.device.name = device.name
                    join.device.vendor = device.vendor
                    join.device.driver = device.driverInfo.isEmpty ? device.driverVersion : "\(device.driverVersion) (\(device.driverInfo))"
                    join.device.memoryBytes = device.deviceLocalMemoryBytes
                } else {
                    // A CPU worker's "driver" is its kernel library: which OpenBLAS kernels run.
                    join.device.name = configuration.cpuKernels?.features?.modelName ?? "CPU"
                    join.device.vendor = "host"
                    join.device.driver = configuration.cpuKernels?.driver ?? "OpenBLAS \(BLASThreading.coreName)"
                    join.device.memoryBytes = ProcessInfo.processInfo.physicalMemory
                }
                if let metrics { join.metricsAddress = Self.advertisable(metrics, like: address).description }
                let joined = try await control.join(join, options: Self.callOptions(timeout: .seconds(2)))
                state.id = joined.workerID
                logger.info("joined balancer \(balancer) as \(joined.workerID)")
                warned = false
                try await report(control, id: joined.workerID)
                if state.phase == .draining { return }
                logger.warning("report stream to the balancer ended; rejoining")
            } catch {
                if state.phase == .draining { return }
                if !warned {
                    logger.warning("balancer \(balancer) unreachable (\(Self.describe(error))); retrying, still serving")
                    warned = true
                }
            }
            try? await Task.sleep(for: .milliseconds(300))
        }
    }

    private func report(_ control: Fulcrum_Control_V1_Balancer.Client<HTTP2ClientTransport.Posix>, id: String) async throws {
        let drainGrace = configuration.drainGrace
        try await control.report(
            requestProducer: { writer in
                while true {
                    let draining = state.phase == .draining
                    try await writer.write(makeReport(id: id))
                    if draining {
                        try? await Task.sleep(for: drainGrace)
                        return
                    }
                    try await Task.sleep(for: Self.reportInterval)
                }
            },
            onResponse: { response in
                for try await directive in response.messages {
                    handle(directive)
                }
            }
        )
    }

    private func makeReport(id: String) -> Fulcrum_Control_V1_WorkerReport {
        var report = Fulcrum_Control_V1_WorkerReport()
        report.workerID = id
        report.state = state.phase
        report.models = store.hostedModels
        var load = Fulcrum_Control_V1_LoadReport()
        load.models = store.served.map { $0.statistics.takeLoad(name: $0.name, version: $0.version) }
        load.queueDepth = load.models.reduce(0) { $0 + $1.queueDepth }
        load.sentUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        report.load = load
        return report
    }

    private func handle(_ directive: Fulcrum_Control_V1_Directive) {
        switch directive.action {
        case .loadModel(let load):
            logger.info("balancer asks to load '\(load.name)'")
            store.load(load.name)
        case .unloadModel(let unload):
            logger.info("balancer asks to unload '\(unload.name)'")
            _ = store.unload(unload.name)
        case .drain:
            logger.info("balancer asks this worker to drain")
            state.phase = .draining
        case nil:
            break
        }
    }

    private static func callOptions(timeout: Duration) -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        return options
    }

    /// A metrics endpoint bound to every interface is reached at the advertised host.
    static func advertisable(_ bound: HostPort, like advertised: HostPort) -> HostPort {
        ["0.0.0.0", "::", ""].contains(bound.host) ? HostPort(host: advertised.host, port: bound.port) : bound
    }

    private static func describe(_ error: any Error) -> String {
        if let rpc = error as? RPCError { return "\(rpc.code): \(rpc.message)" }
        return "\(error)"
    }
}

import ArgumentParser
import FulcrumCommandLine
import FulcrumKubernetes
import FulcrumMetrics
import FulcrumBalancer
import FulcrumService
import Foundation
import Logging

/// `fulcrum-balancer`: the control plane.
@main
struct BalancerCommand: LayeredCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulcrum-balancer",
        abstract: "The Fulcrum balancer: keeps the compute pool's membership (workers join and report load), pushes pool snapshots to frontends, and answers `fulcrum status`.",
        discussion: layeredSettingsHelp
    )

    @Option(name: .long, help: "Address to bind to.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "gRPC port of the control service; 0 picks a free port.")
    var port: Int = 7000

    @Option(name: .long, help: "Milliseconds a worker may stay silent before it leaves the pool.")
    var leaseMs: Int = 2000

    @Option(name: .long, help: "Who carries out scaling decisions: static (report the desired size only), process (start and stop fulcrum-worker processes on this host), kubernetes (set the worker Deployment's replicas through the API server, with the pod's service account).")
    var scaler: String = "static"

    @Option(name: .long, help: "kubernetes scaler: the worker Deployment's name.")
    var kubernetesDeployment: String = "fulcrum-worker"

    @Option(name: .long, help: "kubernetes scaler: the worker Deployment's namespace (default: the balancer pod's own).")
    var kubernetesNamespace: String?

    @Option(name: .long, help: "Which workers host which models: all (every worker every model) or demand (the balancer loads and unloads models so each is on as many workers as its plan needs, at least one; new replicas go to the least-loaded workers with memory for the weights).")
    var placement: String = "all"

    @Option(name: .long, help: "Fewest workers the autoscaler keeps.")
    var minWorkers: Int = 1

    @Option(name: .long, help: "Most workers the autoscaler asks for.")
    var maxWorkers: Int = 8

    @Option(name: .long, help: "p99 latency target for models whose config sets no fulcrum.latency_target_ms, in milliseconds.")
    var latencyTargetMs: Double = 50

    @Option(name: .long, help: "Share of each worker's best throughput the planner keeps free (0.2: plan for 80% utilisation).")
    var headroom: Double = 0.2

    @Option(name: .long, help: "Network time between frontends and workers added to predicted latencies, in milliseconds.")
    var networkMs: Double = 0

    @Option(name: .long, help: "Seconds the desired size must stay below the current one before a scale-down (one worker at a time).")
    var scaleDownStabilisationS: Double = 30

    @Option(name: .long, help: "Seconds after a scale-up during which no scale-down happens.")
    var scaleUpSettleS: Double = 10

    @Option(name: .long, help: "process scaler: the worker executable (default: fulcrum-worker next to this executable).")
    var workerExecutable: String?

    @Option(name: .long, help: "process scaler: the model repository the workers serve.")
    var modelRepository: String?

    @Option(name: .long, help: "process scaler: compute threads per worker.")
    var workerThreads: Int = 1

    @Option(name: .long, help: "process scaler: one more argument for every worker (repeat; e.g. --worker-arg=--emulate --worker-arg=5+1).")
    var workerArg: [String] = []

    @Option(name: .long, help: "A directory for the balancer's state: the traffic routes (routes.json, read at start, written on every change; without this directory routes are lost when the balancer stops), the learned capacity model (capacity.json: each model's service-curve samples and network times, saved every 5 s and at exit, read at start) and, with the process scaler, its workers (workers.json), so a balancer restarted on it adopts the ones still running instead of starting new ones (`fulcrum up` sets it).")
    var stateDir: String?

    @Option(name: .long, help: "Write the bound address as JSON to this file once listening.")
    var addressFile: String?

    @Flag(name: .long, help: "Stop when the parent process exits (set by `fulcrum up`).")
    var exitWithParent = false





    @OptionGroup(title: "Logging")
    var logging: LoggingOptions

    @OptionGroup(title: "Metrics")
    var metrics: MetricsOptions

    @OptionGroup(title: "Mutual TLS between the tiers")
    var tls: TLSOptions

    @Option(name: .long, help: "Config file of `option-name = value` lines (see above).")
    var config: String?

    static func main() async { await runWithLayeredSettings() }

    func validate() throws {
        _ = try tls.setting(listening: [host])
        guard (0...65535).contains(port) else { throw ValidationError("--port: \(port) is not a port") }
        guard leaseMs >= 100 else { throw ValidationError("--lease-ms must be at least 100") }
        guard ["static", "process", "kubernetes"].contains(scaler) else {
            throw ValidationError("--scaler: '\(scaler)' is not a scaler (static, process, kubernetes)")
        }
        guard minWorkers >= 0, maxWorkers >= max(minWorkers, 1) else {
            throw ValidationError("--min-workers/--max-workers: need 0 ≤ min ≤ max and max ≥ 1 (got \(minWorkers), \(maxWorkers))")
        }
        guard latencyTargetMs > 0 else { throw ValidationError("--latency-target-ms must be positive") }
        guard (0..<1).contains(headroom) else { throw ValidationError("--headroom must be in [0, 1)") }
        guard networkMs >= 0, scaleDownStabilisationS >= 0, scaleUpSettleS >= 0 else {
            throw ValidationError("--network-ms, --scale-down-stabilisation-s and --scale-up-settle-s cannot be negative")
        }
        guard workerThreads >= 1 else { throw ValidationError("--worker-threads must be at least 1") }
        if scaler == "process" {
            guard let modelRepository else { throw ValidationError("--scaler process needs --model-repository for its workers") }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: modelRepository, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--model-repository: '\(modelRepository)' is not a directory")
            }
            guard FileManager.default.isExecutableFile(atPath: workerExecutablePath) else {
                throw ValidationError("--worker-executable: '\(workerExecutablePath)' is not an executable")
            }
        }
    }

    var workerExecutablePath: String {
        if let workerExecutable { return workerExecutable }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("fulcrum-worker").path
    }

    func scalerChoice() throws -> BalancerConfiguration.ScalerChoice {
        if scaler == "kubernetes" {
            let configuration = try KubernetesScaleClient.Configuration.inCluster(
                deployment: kubernetesDeployment, namespace: kubernetesNamespace)
            return .custom(KubernetesScaler(client: try KubernetesScaleClient(configuration: configuration), logger: Logger(label: "fulcrum.balancer")))
        }
        guard scaler == "process", let modelRepository else { return .none }
        let absolute = URL(fileURLWithPath: modelRepository).standardizedFileURL.path
        return .process(
            .init(
                executable: URL(fileURLWithPath: workerExecutablePath),
                arguments: ["--model-repository", absolute, "--host", host == "0.0.0.0" ? "0.0.0.0" : host, "--port", "0",
                            "--threads", String(workerThreads), "--log-level", logging.logLevel] + workerArg,
                stateDirectory: stateDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            ))
    }

    func run() async throws {
        logging.bootstrap()
        guard let placementMode = PlacementMode(rawValue: placement) else {
            throw ValidationError("--placement: '\(placement)' is not all or demand")
        }
        var configuration =
            BalancerConfiguration(
                listen: HostPort(host: host, port: port),
                lease: .milliseconds(leaseMs),
                addressFile: addressFile,
                exitWithParent: exitWithParent,
                capacity: .init(defaultTarget: latencyTargetMs / 1000, headroom: headroom, networkSeconds: networkMs / 1000, maxWorkers: maxWorkers),
                minWorkers: minWorkers,
                maxWorkers: maxWorkers,
                stabilisation: .milliseconds(Int64(scaleDownStabilisationS * 1000)),
                settle: .milliseconds(Int64(scaleUpSettleS * 1000)),
                scaler: try scalerChoice(),
                metrics: metrics.listen(defaultHost: host).map { MetricsSettings(listen: $0, registry: FulcrumMetrics.bootstrap()) }
            )
        configuration.placement = placementMode
        configuration.tls = try tls.setting(listening: [host])
        configuration.stateDirectory = stateDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        try await Balancer.run(configuration)
    }
}

import ArgumentParser
import FulcrumCommandLine
import FulcrumMetrics
import FulcrumFrontend
import FulcrumService
import Foundation
import Logging

/// `fulcrum-frontend`: the public edge.
@main
struct FrontendCommand: LayeredCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulcrum-frontend",
        abstract: "A Fulcrum frontend: serves the open inference protocol (gRPC and HTTP/REST) to clients and forwards predictions to the workers in the balancer's pool.",
        discussion: layeredSettingsHelp
    )

    @Option(name: .long, help: "Address to bind to.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "gRPC port for clients; 0 picks a free port.")
    var grpcPort: Int = 8001

    @Option(name: .long, help: "HTTP/REST port for clients; 0 picks a free port.")
    var httpPort: Int = 8000

    @Flag(name: .long, help: "Serve gRPC only (no HTTP/REST endpoint).")
    var noHttp = false

    @Option(name: .long, help: "host:port of the balancer.")
    var balancer: String = "127.0.0.1:7000"

    @Option(name: .long, help: "Largest request or response message in bytes; larger requests get RESOURCE_EXHAUSTED.")
    var maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes

    @Option(name: .long, help: "Admission limit: predictions held at once (gRPC and HTTP together); more are refused at once with RESOURCE_EXHAUSTED (HTTP 429).")
    var maxInflight: Int = 2048

    @Option(name: .long, help: "Admission limit: bytes of request tensors held at once; more are refused like --max-inflight (default: an eighth of the machine's memory, at most 1 GiB).")
    var maxInflightBytes: Int?

    @Option(name: .long, help: "Open gRPC connections at once; more are closed as they arrive.")
    var maxConnections: Int = EdgeLimits().maxConnections

    @Option(name: .long, help: "Seconds a connection may stay without a call (gRPC) or without traffic (HTTP) before it is closed.")
    var idleTimeoutS: Int = 300

    @Option(name: .long, help: "Seconds within which a gRPC ModelInfer request must arrive in full (and a started HTTP/2 frame must finish, and a new connection send its first frame), and an HTTP request its head and body; slower ones are refused with DEADLINE_EXCEEDED or closed.")
    var requestReadTimeoutS: Int = 30

    @Option(name: .long, help: "A JSON file of API keys ({\"keys\": [{\"key\", \"tenant\", \"models\", \"rate\", \"burst\"}]}): every call but health checks and repository control then needs one ('authorization: Bearer KEY' or 'x-api-key: KEY'); SIGHUP reloads the file. Unset: no keys needed.")
    var apiKeys: String?

    @Option(name: .long, help: "A model repository (Triton's layout) whose pipelines (config.pbtxt with platform \"ensemble\" and ensemble_scheduling) this frontend runs; the workers serve the models their steps call. Read once at start. Unset: no pipelines.")
    var modelRepository: String?

    @Option(name: .long, help: "An id for logs and the balancer's status (default frontend-<pid>).")
    var id: String = ""

    @Option(name: .long, help: "Write the bound addresses as JSON to this file once listening.")
    var addressFile: String?

    @Flag(name: .long, help: "Stop when the parent process exits (set by `fulcrum up`).")
    var exitWithParent = false







    @Option(name: .long, help: ArgumentHelp(TaskExecution.help, valueName: "event-loop|pool"))
    var executor: String = TaskExecution.eventLoop.rawValue

    @Option(name: .long, help: ArgumentHelp(ModelControl.help, valueName: "none|explicit"))
    var modelControl: String = ModelControl.Mode.none.rawValue

    @Option(name: .long, help: "With --model-control explicit: a file whose first line is the admin token (at least 16 bytes) that repository load/unload calls must present.")
    var adminTokenFile: String?

    @OptionGroup(title: "Logging")
    var logging: LoggingOptions

    @OptionGroup(title: "Metrics")
    var metrics: MetricsOptions

    @OptionGroup(title: "Tracing")
    var tracing: TracingOptions

    @OptionGroup(title: "Mutual TLS between the tiers (to the balancer and the workers)")
    var tls: TLSOptions

    @Option(name: .long, help: ArgumentHelp(EdgeTLS.certificateHelp, valueName: "pem"))
    var edgeTlsCert: String?

    @Option(name: .long, help: ArgumentHelp(EdgeTLS.keyHelp, valueName: "pem"))
    var edgeTlsKey: String?

    @Option(name: .long, help: "Config file of `option-name = value` lines (see above).")
    var config: String?

    static func main() async { await runWithLayeredSettings() }

    func validate() throws {
        _ = try modelControlSetting()
        if let balancer = HostPort(parsing: balancer) { _ = try tls.setting(listening: [balancer.host]) }
        guard (edgeTlsCert == nil) == (edgeTlsKey == nil) else { throw ValidationError("--edge-tls-cert and --edge-tls-key go together") }
        if let edgeTlsCert, let edgeTlsKey {
            do throws(ClusterTLSError) { _ = try EdgeTLS.context(certificate: edgeTlsCert, key: edgeTlsKey) } catch {
                throw ValidationError(error.message)
            }
        }
        guard TaskExecution(rawValue: executor) != nil else { throw ValidationError("--executor: '\(executor)' is not event-loop or pool") }
        guard (0...65535).contains(grpcPort) else { throw ValidationError("--grpc-port: \(grpcPort) is not a port") }
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port: \(httpPort) is not a port") }
        guard HostPort(parsing: balancer) != nil else { throw ValidationError("--balancer: '\(balancer)' is not host:port") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        if let apiKeys {
            if let problem = FrontendConfiguration.apiKeysProblem(apiKeys) { throw ValidationError(problem) }
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard idleTimeoutS >= 1, requestReadTimeoutS >= 1 else { throw ValidationError("--idle-timeout-s and --request-read-timeout-s must be at least 1") }
        if let modelRepository {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: modelRepository, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--model-repository: '\(modelRepository)' is not a directory")
            }
        }
        guard maxInflight >= 1 else { throw ValidationError("--max-inflight must be at least 1") }
        if let maxInflightBytes, maxInflightBytes < 1 { throw ValidationError("--max-inflight-bytes must be positive") }
    }

    /// The `--model-control` / `--admin-token-file` pair, read and checked.
    func modelControlSetting() throws -> ModelControl {
        guard let mode = ModelControl.Mode(rawValue: modelControl) else {
            throw ValidationError("--model-control: '\(modelControl)' is not none or explicit")
        }
        do throws(ModelControlError) {
            return try ModelControl(mode: mode, tokenFile: adminTokenFile)
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        logging.bootstrap()
        if !(TaskExecution(rawValue: executor) ?? .pool).adopt() {
            Logger(label: "fulcrum").warning("--executor \(executor): Swift's global executor hook is taken; tasks stay on the cooperative pool")
        }
        var configuration = FrontendConfiguration(
            grpc: HostPort(host: host, port: grpcPort),
            tracing: tracing.settings,
            http: noHttp ? nil : HostPort(host: host, port: httpPort),
            balancer: HostPort(parsing: balancer)!,
            maxMessageBytes: maxMessageBytes,
            id: id,
            addressFile: addressFile,
            exitWithParent: exitWithParent,
            metrics: metrics.listen(defaultHost: host).map { MetricsSettings(listen: $0, registry: FulcrumMetrics.bootstrap()) }
        )
        configuration.modelControl = try modelControlSetting()
        configuration.maxInFlight = maxInflight
        configuration.maxInFlightBytes = maxInflightBytes
        configuration.apiKeysFile = apiKeys
        configuration.modelRepository = modelRepository
        configuration.tls = try tls.setting(listening: [configuration.balancer.host])
        if let edgeTlsCert, let edgeTlsKey {
            configuration.edgeTLS = .init(certificate: edgeTlsCert, key: edgeTlsKey)
        }
        configuration.edgeLimits.maxConnections = maxConnections
        configuration.edgeLimits.idleTimeout = .seconds(Int64(idleTimeoutS))
        configuration.edgeLimits.requestReadTimeout = .seconds(Int64(requestReadTimeoutS))
        if let maxInflightBytes { configuration.edgeLimits.maxArrivingBytes = maxInflightBytes }
        try await Frontend.run(configuration)
    }
}

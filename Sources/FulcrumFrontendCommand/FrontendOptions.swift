import ArgumentParser
import FulcrumCommandLine
import FulcrumFrontend
import FulcrumMetrics
import FulcrumService
import Foundation
import Logging

/// Every option of `fulcrum-frontend`, and starting a frontend from them: the `fulcrum-frontend`
/// executable is this plus `@main`, and a custom frontend (a user's executable with its own
/// processors, examples/custom-frontend) reuses it with `@OptionGroup var options:
/// FrontendOptions` and `options.run(processors: ProcessorKind.builtIn + [...])`, so it takes the
/// same flags, `FULCRUM_*` variables and `--config` files.
public struct FrontendOptions: ParsableArguments {
    public init() {}

    /// The executable's abstract, for `--help`.
    public static let abstract = "A Fulcrum frontend: serves the open inference protocol (gRPC and HTTP/REST) to clients, runs pipelines and processors, and forwards predictions to the workers in the balancer's pool."

    @Option(name: .long, help: "Address to bind to.")
    public var host: String = "127.0.0.1"

    @Option(name: .long, help: "gRPC port for clients; 0 picks a free port.")
    public var grpcPort: Int = 8001

    @Option(name: .long, help: "HTTP/REST port for clients; 0 picks a free port.")
    public var httpPort: Int = 8000

    @Flag(name: .long, help: "Serve gRPC only (no HTTP/REST endpoint).")
    public var noHttp = false

    @Option(name: .long, help: "host:port of the balancer.")
    public var balancer: String = "127.0.0.1:7000"

    @Option(name: .long, help: "Largest request or response message in bytes; larger requests get RESOURCE_EXHAUSTED.")
    public var maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes

    @Option(name: .long, help: "Admission limit: predictions held at once (gRPC and HTTP together); more are refused at once with RESOURCE_EXHAUSTED (HTTP 429).")
    public var maxInflight: Int = 2048

    @Option(name: .long, help: "Admission limit: bytes of request tensors held at once; more are refused like --max-inflight (default: an eighth of the machine's memory, at most 1 GiB).")
    public var maxInflightBytes: Int?

    @Option(name: .long, help: ArgumentHelp("How the request limit is set: adaptive (the default) keeps --max-inflight until, while most answers take more than --admission-tolerance times their model's lowest recent latency, requests in flight rise (or as many calls are refused as answered) three 100 ms intervals in a row — an overload; a closed loop's concurrency does not keep rising — then holds the limit where answers keep their latency, refusing the excess at once, until half a second passes with nothing to refuse; static always keeps --max-inflight.", valueName: "adaptive|static"))
    public var admission: AdmissionMode = .adaptive

    @Option(name: .long, help: "With --admission adaptive (the default): how many times its model's lowest recent latency an answer may take and still count as prompt; the limit falls while fewer than half are (1.1 to 100).")
    public var admissionTolerance: Double = 2.0

    @Option(name: .long, help: "Open gRPC connections at once; more are closed as they arrive.")
    public var maxConnections: Int = EdgeLimits().maxConnections

    @Option(name: .long, help: "Seconds a connection may stay without a call (gRPC) or without traffic (HTTP) before it is closed.")
    public var idleTimeoutS: Int = 300

    @Option(name: .long, help: "Seconds within which a gRPC ModelInfer request must arrive in full (and a started HTTP/2 frame must finish, and a new connection send its first frame), and an HTTP request its head and body; slower ones are refused with DEADLINE_EXCEEDED or closed.")
    public var requestReadTimeoutS: Int = 30

    @Option(name: .long, help: "A JSON file of API keys ({\"keys\": [{\"key\", \"tenant\", \"models\", \"rate\", \"burst\"}]}): every call but health checks and repository control then needs one ('authorization: Bearer KEY' or 'x-api-key: KEY'); SIGHUP reloads the file. Unset: no keys needed.")
    public var apiKeys: String?

    @Option(name: .long, help: "A model repository (Triton's layout) whose pipelines (config.pbtxt with platform \"ensemble\" and ensemble_scheduling) and processors (platform \"fulcrum_tokenizer\", \"fulcrum_pooling\", \"fulcrum_feature_lookup\", \"fulcrum_rank\", \"fulcrum_classify\") this frontend runs; the workers serve the models their steps call. Read once at start. Unset: none.")
    public var modelRepository: String?

    @Option(name: .long, help: ArgumentHelp("Record a sampled share of predictions in this directory: rotating files of length-delimited PredictionRecord protobufs (request id, trace id, tenant, model version and its content hash, raw inputs and outputs, timing, status); `fulcrum log show` prints them as JSON lines, `fulcrum replay` sends them again. Unset: no log.", valueName: "dir"))
    public var predictionLog: String?

    @Option(name: .long, help: ArgumentHelp("With --prediction-log: the share of predictions recorded, in percent (0–100), optionally per model: 10,ranking_mlp=100,simple=0.", valueName: "percent[,model=percent...]"))
    public var predictionLogRate: String = "100"

    @Option(name: .long, help: "With --prediction-log: start a new file when the current one reaches this many MiB.")
    public var predictionLogFileMb: Int = 64

    @Option(name: .long, help: "With --prediction-log: keep at most this many of this frontend's files (the oldest are removed).")
    public var predictionLogFiles: Int = 16

    @Option(name: .long, help: "An id for logs and the balancer's status (default frontend-<pid>).")
    public var id: String = ""

    @Option(name: .long, help: "Write the bound addresses as JSON to this file once listening.")
    public var addressFile: String?

    @Flag(name: .long, help: "Stop when the parent process exits (set by `fulcrum up`).")
    public var exitWithParent = false

    @Option(name: .long, help: ArgumentHelp(TaskExecution.help, valueName: "event-loop|pool"))
    public var executor: String = TaskExecution.eventLoop.rawValue

    @Option(name: .long, help: ArgumentHelp(ModelControl.help, valueName: "none|explicit"))
    public var modelControl: String = ModelControl.Mode.none.rawValue

    @Option(name: .long, help: "With --model-control explicit: a file whose first line is the admin token (at least 16 bytes) that repository load/unload calls must present.")
    public var adminTokenFile: String?

    @OptionGroup(title: "Logging")
    public var logging: LoggingOptions

    @OptionGroup(title: "Metrics")
    public var metrics: MetricsOptions

    @OptionGroup(title: "Tracing")
    public var tracing: TracingOptions

    @OptionGroup(title: "Mutual TLS between the tiers (to the balancer and the workers)")
    public var tls: TLSOptions

    @Option(name: .long, help: ArgumentHelp(EdgeTLS.certificateHelp, valueName: "pem"))
    public var edgeTlsCert: String?

    @Option(name: .long, help: ArgumentHelp(EdgeTLS.keyHelp, valueName: "pem"))
    public var edgeTlsKey: String?

    @Option(name: .long, help: "Config file of `option-name = value` lines (see above).")
    public var config: String?

    public func validate() throws {
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
        _ = try predictionLogSettings()
        guard maxInflight >= 1 else { throw ValidationError("--max-inflight must be at least 1") }
        guard admissionTolerance >= 1.1, admissionTolerance <= 100 else { throw ValidationError("--admission-tolerance must be a number from 1.1 to 100") }
        if let maxInflightBytes, maxInflightBytes < 1 { throw ValidationError("--max-inflight-bytes must be positive") }
    }

    /// The `--prediction-log*` options, checked (nil without --prediction-log).
    public func predictionLogSettings() throws -> PredictionLog.Settings? {
        guard let predictionLog else { return nil }
        var settings = PredictionLog.Settings(directory: predictionLog)
        var sawDefault = false
        for item in predictionLogRate.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard let rate = TrafficRoute.parsePercent(String(parts.last ?? "")), !(parts.count == 2 && parts[0].isEmpty) else {
                throw ValidationError("--prediction-log-rate: '\(item)' is not PERCENT or MODEL=PERCENT (0–100)")
            }
            if parts.count == 2 {
                settings.modelRates[String(parts[0])] = rate
            } else {
                guard !sawDefault else { throw ValidationError("--prediction-log-rate: give the default percentage once") }
                sawDefault = true
                settings.defaultRate = rate
            }
        }
        guard (1...65_536).contains(predictionLogFileMb) else { throw ValidationError("--prediction-log-file-mb must be between 1 and 65536") }
        guard (1...100_000).contains(predictionLogFiles) else { throw ValidationError("--prediction-log-files must be between 1 and 100000") }
        settings.maxFileBytes = predictionLogFileMb << 20
        settings.maxFiles = predictionLogFiles
        return settings
    }

    /// The `--model-control` / `--admin-token-file` pair, read and checked.
    public func modelControlSetting() throws -> ModelControl {
        guard let mode = ModelControl.Mode(rawValue: modelControl) else {
            throw ValidationError("--model-control: '\(modelControl)' is not none or explicit")
        }
        do throws(ModelControlError) {
            return try ModelControl(mode: mode, tokenFile: adminTokenFile)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// Starts the frontend with these options and the processor kinds `processors` (the
    /// built-in ones, plus a custom frontend's own), until SIGTERM/SIGINT.
    public func run(processors: [ProcessorKind] = ProcessorKind.builtIn) async throws {
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
        configuration.admission = admission
        configuration.admissionTolerance = admissionTolerance
        configuration.apiKeysFile = apiKeys
        configuration.modelRepository = modelRepository
        configuration.predictionLog = try predictionLogSettings()
        configuration.processors = processors
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

extension AdmissionMode: ExpressibleByArgument {}

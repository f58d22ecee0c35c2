import ArgumentParser
import FulcrumCommandLine
import FulcrumOperator
import FulcrumService
import Foundation
import Logging

/// `fulcrum`: the operator CLI.
@main
struct FulcrumCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulcrum",
        abstract: "Operate a Fulcrum prediction cluster: start one on this machine, send predictions, inspect the pool.",
        subcommands: [Up.self, InferCommand.self, StatusCommand.self, RouteCommand.self, LogCommand.self, ReplayCommand.self, PlanCommand.self, LoadtestCommand.self, CertsCommand.self]
    )
}

/// Fails with a message and exit code 1 instead of a stack of error types.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as OperatorError {
        FileHandle.standardError.write(Data("fulcrum: \(error.message)\n".utf8))
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("fulcrum: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a balancer, one frontend and N workers as separate processes on this machine, serving a model repository, until SIGINT/SIGTERM.",
        discussion: "The balancer starts the workers itself (its process scaler): it keeps at least --workers of them, restarts one that crashes, and with --max-workers above --workers grows and shrinks the pool with the load (fulcrum status shows each decision and its reason)."
    )

    @Option(name: .long, help: "Model repository in Triton's layout.")
    var modelRepository: String = "examples/models"

    @Option(name: .long, help: "Number of workers.")
    var workers: Int = 2

    @Option(name: .long, help: "Address every process binds to.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "The frontend's gRPC port for clients (0 picks a free port).")
    var grpcPort: Int = 8001

    @Option(name: .long, help: "The frontend's HTTP/REST port for clients (0 picks a free port).")
    var httpPort: Int = 8000

    @Option(name: .long, help: "The balancer's port (0 picks a free port).")
    var balancerPort: Int = 7000

    @Option(name: .long, help: "Largest request or response message in bytes.")
    var maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes

    @Option(name: .long, help: "Compute threads per worker (default: the cores divided between the workers, at least 1).")
    var threadsPerWorker: Int?

    @Option(name: .long, help: "Write the endpoints and process ids as JSON to this file once the cluster is ready.")
    var endpointsFile: String?

    @Option(name: .long, help: "Seconds to wait for the cluster to become ready.")
    var startTimeout: Int = 120

    @Option(name: .long, help: "Log level for every process.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Most workers the autoscaler may grow the pool to (default: --workers, a fixed pool).")
    var maxWorkers: Int?

    @Option(name: .long, help: "Emulate the workers' device: FIXED_MS+PER_SAMPLE_MS per execution (e.g. 5+1), for capacity experiments; outputs are zeros.")
    var emulate: String?

    @Option(name: .long, help: "Every worker's compute backend: cpu, vulkan (SPIR-V kernels on a Vulkan device; see --device), or emulated (a rehearsal tool for capacity experiments: needs --profile or --emulate).")
    var backend: BackendChoice = .cpu

    @Option(name: .long, help: "With --backend emulated: every worker's service-time profile (a `fulcrum plan --profile-out` JSON, or a file holding FIXED_MS+PER_SAMPLE_MS).")
    var profile: String?

    @Option(name: .long, help: "Vulkan device index for --backend vulkan (every worker uses it).")
    var device: Int = 0

    @Option(name: .long, help: "Which workers host which models: all (default: every worker every model) or demand (the balancer places each model on as many workers as its plan needs).")
    var placement: String = "all"

    @Option(name: .long, help: "One more fulcrum-balancer argument (repeat), e.g. --balancer-arg=--latency-target-ms=50.")
    var balancerArg: [String] = []

    @Option(name: .long, help: "One more fulcrum-frontend argument (repeat), e.g. --frontend-arg=--admission=adaptive.")
    var frontendArg: [String] = []

    @Flag(name: .long, help: "Serve Prometheus metrics from every process on free ports (listed in the endpoints file under \"metrics\").")
    var metrics = false

    @Option(name: .long, help: "Record spans of the frontend and every worker to this file, one JSON line each (their --trace-file).")
    var traceFile: String?

    @Option(name: .long, help: "Export the frontend's and every worker's spans to this OpenTelemetry collector (their --otlp-endpoint; not with --trace-file).")
    var otlpEndpoint: String?

    @Option(name: .long, help: ArgumentHelp("How spans reach --otlp-endpoint (their --otlp-protocol).", valueName: "http/protobuf|http/json|grpc"))
    var otlpProtocol: TracingSettings.OTLPProtocol = .httpProtobuf

    @Option(name: .long, help: ArgumentHelp(ModelControl.help + " Passed to the frontend and every worker.", valueName: "none|explicit"))
    var modelControl: String = ModelControl.Mode.none.rawValue

    @Option(name: .long, help: "With --model-control explicit: the admin token file (first line, at least 16 bytes) for the frontend and every worker.")
    var adminTokenFile: String?

    @Option(name: .long, help: "The frontend's API keys file (its --api-keys): every call but health checks and repository control then needs a key; SIGHUP to the frontend reloads it.")
    var apiKeys: String?

    @Option(name: .long, help: ArgumentHelp("The frontend's prediction log directory (its --prediction-log): a sampled share of predictions recorded for `fulcrum log show` and `fulcrum replay`.", valueName: "dir"))
    var predictionLog: String?

    @Option(name: .long, help: ArgumentHelp("With --prediction-log: the share recorded, in percent, optionally per model (10,ranking_mlp=100).", valueName: "percent[,model=percent...]"))
    var predictionLogRate: String?

    @Flag(name: .long, help: "Run the connections between the tiers in plaintext. By default `fulcrum up` makes a throwaway CA and a certificate per service in its state folder and every connection between the balancer, the frontend and the workers is mutual TLS (docs/security.md).")
    var insecure = false

    @Option(name: .long, help: ArgumentHelp(EdgeTLS.certificateHelp + " Passed to the frontend.", valueName: "pem"))
    var edgeTlsCert: String?

    @Option(name: .long, help: ArgumentHelp(EdgeTLS.keyHelp, valueName: "pem"))
    var edgeTlsKey: String?

    func validate() throws {
        guard (edgeTlsCert == nil) == (edgeTlsKey == nil) else { throw ValidationError("--edge-tls-cert and --edge-tls-key go together") }
        if let apiKeys, !FileManager.default.isReadableFile(atPath: apiKeys) {
            throw ValidationError("--api-keys: cannot read '\(apiKeys)'")
        }
        guard let mode = ModelControl.Mode(rawValue: modelControl) else {
            throw ValidationError("--model-control: '\(modelControl)' is not none or explicit")
        }
        do throws(ModelControlError) { _ = try ModelControl(mode: mode, tokenFile: adminTokenFile) } catch { throw ValidationError(error.message) }
        if predictionLogRate != nil && predictionLog == nil { throw ValidationError("--prediction-log-rate needs --prediction-log") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if let maxWorkers, maxWorkers < workers { throw ValidationError("--max-workers (\(maxWorkers)) is below --workers (\(workers))") }
        for (name, port) in [("--grpc-port", grpcPort), ("--http-port", httpPort), ("--balancer-port", balancerPort)] where !(0...65535).contains(port) {
            throw ValidationError("\(name): \(port) is not a port")
        }
        guard Logger.Level(name: logLevel) != nil else { throw ValidationError("--log-level: '\(logLevel)' is not a log level") }
        try backend.validate(profile: profile, emulate: emulate)
        guard device >= 0 else { throw ValidationError("--device must be 0 or more") }
        guard ["all", "demand"].contains(placement) else { throw ValidationError("--placement: '\(placement)' is not all or demand") }
        if traceFile != nil && otlpEndpoint != nil { throw ValidationError(TracingSettings.exclusive) }
    }

    func run() async throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var options = ClusterOptions(
            modelRepository: modelRepository, workers: workers, host: host, grpcPort: grpcPort,
            balancerPort: balancerPort, maxMessageBytes: maxMessageBytes,
            threadsPerWorker: threadsPerWorker ?? max(1, cores / workers),
            endpointsFile: endpointsFile, binDirectory: Self.binDirectory(),
            startTimeout: .seconds(startTimeout), logLevel: logLevel, httpPort: httpPort,
            maxWorkers: maxWorkers, emulate: emulate,
            balancerArguments: balancerArg + (placement == "all" ? [] : ["--placement=\(placement)"]), metrics: metrics
        )
        options.tracing = TracingSettings(file: traceFile, otlpEndpoint: otlpEndpoint, otlpProtocol: otlpProtocol)
        options.backend = backend == .vulkan ? "vulkan" : "cpu"
        options.device = device
        if modelControl == ModelControl.Mode.explicit.rawValue, let adminTokenFile {
            options.modelControlArguments = [
                "--model-control", modelControl, "--admin-token-file", URL(fileURLWithPath: adminTokenFile).standardizedFileURL.path,
            ]
        }
        options.frontendArguments = apiKeys.map { ["--api-keys", URL(fileURLWithPath: $0).standardizedFileURL.path] } ?? []
        if let predictionLog {
            options.frontendArguments += ["--prediction-log", URL(fileURLWithPath: predictionLog).standardizedFileURL.path]
            if let predictionLogRate { options.frontendArguments += ["--prediction-log-rate", predictionLogRate] }
        }
        if let edgeTlsCert, let edgeTlsKey {
            options.frontendArguments += [
                "--edge-tls-cert", URL(fileURLWithPath: edgeTlsCert).standardizedFileURL.path,
                "--edge-tls-key", URL(fileURLWithPath: edgeTlsKey).standardizedFileURL.path,
            ]
            options.edgeTLS = true
        }
        options.frontendArguments += frontendArg
        options.insecure = insecure
        options.profile = profile.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        try await reportingErrors {
            try await Cluster(options: options).run()
        }
    }

    /// The folder of this executable, where the fulcrum-* services are built next to it.
    static func binDirectory() -> String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path).deletingLastPathComponent().path
    }
}

struct InferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Send one prediction and print the outputs and the timing breakdown."
    )

    @Argument(help: "Model name.")
    var model: String

    @Option(name: .long, help: "Inference endpoint (a frontend, or any open inference protocol gRPC server).")
    var url: String = "127.0.0.1:8001"

    @Option(name: .long, help: "Model version (default: the newest).")
    var modelVersion: String = ""

    @Option(name: .long, help: "An input as NAME=v1,v2,... (repeat for each input); datatype and shape come from the model's metadata, batch 1.")
    var input: [String] = []

    @Option(name: .long, help: "Deadline in milliseconds.")
    var timeoutMs: Int = 10000

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("Connect with TLS, trusting the CA in this PEM file (a frontend started with --edge-tls-cert); plaintext without.", valueName: "pem"))
    var tlsCA: String?

    func run() async throws {
        guard let target = HostPort(parsing: url) else { throw ValidationError("--url: '\(url)' is not host:port") }
        if let tlsCA, !FileManager.default.isReadableFile(atPath: tlsCA) { throw ValidationError("--tls-ca: cannot read '\(tlsCA)'") }
        try await reportingErrors {
            print(try await Infer.run(url: target, model: model, version: modelVersion, inputs: input, timeout: .milliseconds(timeoutMs), edgeCA: tlsCA))
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the compute pool as the balancer sees it."
    )

    @OptionGroup var connection: BalancerConnection

    func run() async throws {
        try await connection.call { target, tls, json, timeout in
            try await Status.run(balancer: target, tls: tls, json: json, timeout: timeout)
        }
    }
}

/// The options of the CLI's calls to the balancer's operator API (status, routes).
struct BalancerConnection: ParsableArguments {
    @Option(name: .long, help: "The balancer's address.")
    var balancer: String = "127.0.0.1:7000"

    @Option(name: .long, help: ArgumentHelp(AdminCredentials.directoryHelp, valueName: "dir"))
    var tlsDir: String?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    @Option(name: .long, help: "Deadline in milliseconds.")
    var timeoutMs: Int = 5000

    func validate() throws {
        guard HostPort(parsing: balancer) != nil else { throw ValidationError("--balancer: '\(balancer)' is not host:port") }
    }

    /// Resolves the admin credentials, makes the call and prints what it returns; errors exit 1.
    func call(_ body: (HostPort, ClusterTLS?, Bool, Duration) async throws -> String) async throws {
        guard let target = HostPort(parsing: balancer) else { throw ValidationError("--balancer: '\(balancer)' is not host:port") }
        try await reportingErrors {
            let tls = try AdminCredentials.resolve(balancer: target, directory: tlsDir)
            print(try await body(target, tls, json, .milliseconds(timeoutMs)))
        }
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show how many workers a model needs at each arrival rate, with utilisation and predicted p99.",
        discussion: "The numbers come from the balancer's capacity model (the service-time curve fitted from the workers' batch reports, the model's max batch size and latency target) or from a profile saved with --profile-out. The queueing model and its assumptions are in docs/capacity.md."
    )

    @Argument(help: "Model name.")
    var model: String

    @Option(name: .long, help: "Arrival rates in requests per second, comma-separated (default: around the current rate).")
    var rate: String?

    @Option(name: .long, help: "p99 latency target in milliseconds (default: the model's).")
    var targetMs: Double?

    @Option(name: .long, help: "Most workers to consider.")
    var maxWorkers: Int = 64

    @Option(name: .long, help: "Predict for this fixed pool size instead of finding the smallest that meets the target.")
    var workers: Int?

    @Option(name: .long, help: "The balancer's address.")
    var balancer: String = "127.0.0.1:7000"

    @Option(name: .long, help: ArgumentHelp(AdminCredentials.directoryHelp, valueName: "dir"))
    var tlsDir: String?

    @Option(name: .long, help: "Plan from this saved profile instead of the live cluster.")
    var profile: String?

    @Option(name: [.customLong("profile-out"), .customLong("save-profile")], help: "Save the model's capacity profile (JSON: the fitted s(b), max batch, target) to this file; `fulcrum-worker --backend emulated --profile FILE` replays it.")
    var saveProfile: String?

    @Option(name: .long, help: "Deadline in milliseconds.")
    var timeoutMs: Int = 5000

    func run() async throws {
        var rates: [Double]? = nil
        if let rate {
            let parsed = rate.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ ($0 ?? -1) > 0 }) else {
                throw ValidationError("--rate: '\(rate)' is not a comma-separated list of positive rates")
            }
            rates = parsed.compactMap { $0 }
        }
        if let targetMs, targetMs <= 0 { throw ValidationError("--target-ms must be positive") }
        guard maxWorkers >= 1 else { throw ValidationError("--max-workers must be at least 1") }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        let source: Plan.Source
        if let profile {
            source = .profile(profile)
        } else {
            guard let target = HostPort(parsing: balancer) else { throw ValidationError("--balancer: '\(balancer)' is not host:port") }
            source = .balancer(target, nil)
        }
        try await reportingErrors {
            var source = source
            if case .balancer(let target, _) = source {
                source = .balancer(target, try AdminCredentials.resolve(balancer: target, directory: tlsDir))
            }
            print(
                try await Plan.run(
                    model: model, source: source, rates: rates, targetMs: targetMs, maxWorkers: maxWorkers,
                    workers: workers, saveProfile: saveProfile, timeout: .milliseconds(timeoutMs)))
        }
    }
}

struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Make a cluster CA and one certificate per service role for mutual TLS between the tiers.",
        discussion: """
            Writes ca.pem and, for each role (balancer, frontend, worker, admin), ROLE.pem and ROLE-key.pem \
            (ECDSA P-256; keys mode 0600) to --out. Each service then takes --tls-cert ROLE.pem \
            --tls-key ROLE-key.pem --tls-ca ca.pem; the CLI's status, plan and loadtest take --tls-dir \
            with the admin certificate. The role is the URI spiffe://fulcrum/ROLE in the certificate; the \
            balancer lets only workers join and report, only frontends watch the pool, and only admins read \
            its status. The CA's private key is not written unless --keep-ca-key is given; with it, \
            `fulcrum certs --out NEW --ca-dir OLD` later issues new certificates from the same CA, which \
            running services take on SIGHUP (rotation without a restart). See docs/security.md.
            """
    )

    @Option(name: .long, help: "Folder to write the files to (made with mode 0700 if missing; must not hold a ca.pem yet).")
    var out: String

    @Option(name: .long, help: "DNS names and IP addresses to put in the certificates beside the role (repeat; default localhost, 127.0.0.1, ::1). Peers do not check them: the CA alone vouches for a member.")
    var host: [String] = []

    @Option(name: .long, help: "Days the certificates stay valid.")
    var validityDays: Int = 365

    @Flag(name: .customLong("keep-ca-key"), help: "Also write the CA's private key (ca-key.pem, mode 0600).")
    var keepCAKey = false

    @Option(name: .customLong("ca-dir"), help: ArgumentHelp("Issue the certificates from the CA in this folder (its ca.pem and ca-key.pem, from --keep-ca-key) instead of a new one; ca.pem is copied to --out.", valueName: "folder"))
    var caDir: String?

    func run() async throws {
        try await reportingErrors {
            var options = ClusterCertificates.Options(directory: out)
            if !host.isEmpty { options.hosts = host }
            options.validityDays = validityDays
            options.keepCAKey = keepCAKey
            options.caDirectory = caDir
            if caDir != nil && keepCAKey { throw OperatorError("--keep-ca-key and --ca-dir: the CA's key stays in --ca-dir; it is not copied") }
            try ClusterCertificates.issue(options)
            print("fulcrum: wrote ca.pem and \(options.roles.map { "\($0.rawValue).pem" }.joined(separator: ", ")) (with their keys) to \(out)")
        }
    }
}

import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// `fulcrum up`: starts the balancer and a frontend as separate processes on this machine; the
/// balancer's process scaler starts the workers (and grows or shrinks the pool between
/// `workers` and `maxWorkers`, restarting any that crash). Waits until they serve, prints the
/// endpoints, and supervises until SIGINT or SIGTERM, when it stops every child. A child that
/// fails to start stops the whole cluster with a non-zero exit. A balancer or frontend that
/// exits later is restarted on the same port (the endpoints file is rewritten with its new pid):
/// the workers are not the balancer's to take down — they watch `fulcrum up` itself
/// (`FULCRUM_SUPERVISOR_PID`), keep serving and rejoin, and the restarted balancer adopts them
/// from its `--state-dir`. More than `restartLimit` restarts of one child within
/// `restartWindow` stop the cluster.
public final class Cluster: @unchecked Sendable {
    private let options: ClusterOptions
    private var children: [ChildProcess] = []
    private let temporary: URL
    /// How each child was started, to start it again: name → (executable, arguments).
    private var launches: [String: (executable: URL, arguments: [String], environment: [String: String])] = [:]
    private var restarts: [String: [ContinuousClock.Instant]] = [:]
    private var endpoints: Endpoints?
    /// The cluster's certificates (`ClusterCertificates`), nil with `--insecure`.
    private var certificates: String?
    /// The CLI's record of `certificates` for the balancer's address (`AdminCredentials`).
    private var credentialsRecord: URL?

    static let restartLimit = 5
    static let restartWindow: Duration = .seconds(60)

    public init(options: ClusterOptions) throws {
        self.options = options
        temporary = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-up-\(getpid())")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }

    /// Runs the cluster until a signal arrives (returns normally) or something fails (throws).
    public func run() async throws {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM])
        defer { stopAll() }
        do {
            let endpoints = try await start(cancelledBy: signals)
            self.endpoints = endpoints
            FileHandle.standardOutput.write(Data((endpoints.summary + "\n").utf8))
            try writeEndpoints()
            FileHandle.standardOutput.write(Data("fulcrum: ready\n".utf8))
            try await supervise(until: signals)
        } catch let error as OperatorError where error.message == SignalWaiter.interrupted {
            return
        }
    }

    private func executable(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: options.binDirectory).appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw OperatorError("cannot find \(name) in \(options.binDirectory) (build with `swift build`)")
        }
        return url
    }

    private func spawn(_ name: String, _ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        launches[name] = (executable, arguments, environment)
        let child = try ChildProcess(
            name: name, executable: executable,
            arguments: arguments + ["--log-level", options.logLevel],
            addressFile: temporary.appendingPathComponent("\(name).json").path,
            environment: environment.merging([ParentWatch.supervisorVariable: String(getpid())]) { _, new in new }
        )
        children.removeAll { $0.name == name }
        children.append(child)
        return child
    }

    private func writeEndpoints() throws {
        if let file = options.endpointsFile, let endpoints {
            try endpoints.json.write(to: URL(fileURLWithPath: file), options: .atomic)
        }
    }

    private func start(cancelledBy signals: SignalWaiter) async throws -> Endpoints {
        let balancerBinary = try executable("fulcrum-balancer")
        let workerBinary = try executable("fulcrum-worker")
        let frontendBinary = try executable("fulcrum-frontend")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: options.modelRepository, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw OperatorError("the model repository '\(options.modelRepository)' is not a directory")
        }

        var workerArguments = ["--max-message-bytes", String(options.maxMessageBytes)]
        if let emulate = options.emulate { workerArguments += ["--emulate", emulate] }
        if options.backend != "cpu" { workerArguments += ["--backend", options.backend, "--device", String(options.device)] }
        if let profile = options.profile { workerArguments += ["--backend", "emulated", "--profile", profile] }
        let metricsArguments = options.metrics ? ["--metrics-port", "0"] : []
        var tracingArguments: [String] = []
        if let file = options.tracing.file {
            tracingArguments += ["--trace-file", URL(fileURLWithPath: file).standardizedFileURL.path]
        }
        if let endpoint = options.tracing.otlpEndpoint {
            tracingArguments += ["--otlp-endpoint", endpoint, "--otlp-protocol", options.tracing.otlpProtocol.rawValue]
        }
        workerArguments += metricsArguments + tracingArguments + options.modelControlArguments
        var tlsArguments: (balancer: [String], frontend: [String]) = (["--insecure"], ["--insecure"])
        if options.insecure {
            workerArguments.append("--insecure")
        } else {
            let folder = temporary.appendingPathComponent("tls").path
            var issue = ClusterCertificates.Options(directory: folder)
            issue.hosts = Array(Set(issue.hosts + [options.host]).subtracting(["0.0.0.0", "::"])).sorted()
            try ClusterCertificates.issue(issue)
            certificates = folder
            workerArguments += ClusterTLS.arguments(directory: folder, role: .worker)
            tlsArguments = (ClusterTLS.arguments(directory: folder, role: .balancer), ClusterTLS.arguments(directory: folder, role: .frontend))
        }
        let repository = URL(fileURLWithPath: options.modelRepository).standardizedFileURL.path
        let balancer = try spawn(
            "balancer", balancerBinary,
            [
                "--host", options.host, "--port", String(options.balancerPort),
                "--scaler", "process", "--min-workers", String(options.workers), "--max-workers", String(options.maxWorkers),
                "--model-repository", repository, "--worker-executable", workerBinary.path,
                "--worker-threads", String(options.threadsPerWorker),
                "--state-dir", temporary.appendingPathComponent("balancer-state").path,
            ] + workerArguments.map { "--worker-arg=\($0)" } + metricsArguments + tlsArguments.balancer + options.balancerArguments
        )
        let balancerAddresses = try await signals.race { try await balancer.waitForAddress(timeout: .seconds(30)) }
        let balancerAddress = balancerAddresses["grpc"] ?? ""
        if let certificates, let bound = HostPort(parsing: balancerAddress) {
            credentialsRecord = AdminCredentials.register(bound, directory: certificates)
        }

        let frontend = try spawn("frontend", frontendBinary, [
            "--host", options.host, "--grpc-port", String(options.grpcPort), "--http-port", String(options.httpPort),
            "--balancer", balancerAddress,
            "--max-message-bytes", String(options.maxMessageBytes), "--id", "frontend-1",
            "--model-repository", repository,
        ] + tlsArguments.frontend + metricsArguments + tracingArguments + options.modelControlArguments + options.frontendArguments)

        let frontendAddresses = try await signals.race { try await frontend.waitForAddress(timeout: .seconds(30)) }
        let frontendAddress = frontendAddresses["grpc"] ?? ""
        let pool = try await signals.race { try await self.waitUntilReady(balancer: balancerAddress, frontend: frontendAddress) }

        return Endpoints(
            tlsDirectory: certificates,
            balancer: balancerAddress, grpc: frontendAddress, http: frontendAddresses["http"] ?? "", balancerPID: balancer.pid, frontendPID: frontend.pid,
            workers: pool.workers.map { (name: $0.workerID, address: $0.address, pid: $0.pid) },
            metrics: options.metrics
                ? ["balancer": balancerAddresses["metrics"] ?? "", "frontend": frontendAddresses["metrics"] ?? ""]
                    .merging(pool.workers.map { ($0.workerID, $0.metricsAddress) }, uniquingKeysWith: { a, _ in a })
                : [:]
        )
    }

    /// Polls until `workers` workers are READY in the balancer's pool and the frontend says it is
    /// ready; returns the pool.
    private func waitUntilReady(balancer: String, frontend: String) async throws -> Fulcrum_Control_V1_PoolSnapshot {
        guard let balancerTarget = HostPort(parsing: balancer), let frontendTarget = HostPort(parsing: frontend) else {
            throw OperatorError("a child reported a malformed address")
        }
        let deadline = ContinuousClock.now + options.startTimeout
        let admin = try certificates.map { folder in
            do throws(ClusterTLSError) { return try ClusterTLS(directory: folder, role: .admin) } catch { throw OperatorError(error.message) }
        }
        return try await withGRPCClient(balancerTarget, tls: admin) { balancerClient in
            try await withGRPCClient(frontendTarget, edge: options.edgeTLS ? .ownChild : nil) { frontendClient in
                let control = Fulcrum_Control_V1_Balancer.Client(wrapping: balancerClient)
                let inference = Inference_GRPCInferenceService.Client(wrapping: frontendClient)
                while ContinuousClock.now < deadline {
                    if let failed = children.first(where: { !$0.isRunning }) {
                        throw OperatorError("\(failed.name) exited with status \(failed.process.terminationStatus) while the cluster was starting (its log is above)")
                    }
                    let status = try? await control.status(Fulcrum_Control_V1_StatusRequest())
                    let readyWorkers = status?.pool.workers.filter { $0.state == .ready }.count ?? 0
                    let frontendReady = (try? await inference.serverReady(Inference_ServerReadyRequest()).ready) ?? false
                    if let status, readyWorkers >= options.workers && frontendReady { return status.pool }
                    try await Task.sleep(for: .milliseconds(100))
                }
                throw OperatorError("the cluster did not become ready within \(options.startTimeout)")
            }
        }
    }

    /// Waits for a signal; restarts the balancer or the frontend when one exits (on the port it
    /// had), failing once one needs more than `restartLimit` restarts within `restartWindow`.
    /// (The balancer restarts workers that exit; the frontend routes around them meanwhile.)
    private func supervise(until signals: SignalWaiter) async throws {
        while !signals.fired {
            if let failed = children.first(where: { !$0.isRunning }) {
                try await restart(failed, cancelledBy: signals)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func restart(_ failed: ChildProcess, cancelledBy signals: SignalWaiter) async throws {
        let name = failed.name
        let status = failed.process.terminationStatus
        let now = ContinuousClock.now
        var recent = (restarts[name] ?? []).filter { now - $0 < Self.restartWindow }
        guard recent.count < Self.restartLimit, let launch = launches[name], let endpoints else {
            throw OperatorError("\(name) exited with status \(status) (\(recent.count) restarts in the last \(Self.restartWindow)); stopping the cluster")
        }
        recent.append(now)
        restarts[name] = recent
        FileHandle.standardError.write(Data("fulcrum: \(name) exited with status \(status); restarting it on the same port\n".utf8))
        // The same port as before, so workers, frontends and clients find it again.
        var arguments = launch.arguments
        let bound: String = name == "balancer" ? endpoints.balancer : endpoints.grpc
        let port = HostPort(parsing: bound)?.port ?? 0
        if name == "balancer" {
            Self.replace("--port", with: String(port), in: &arguments)
        } else {
            Self.replace("--grpc-port", with: String(port), in: &arguments)
            if let http = HostPort(parsing: endpoints.http) { Self.replace("--http-port", with: String(http.port), in: &arguments) }
        }
        let child = try spawn(name, launch.executable, arguments, environment: launch.environment)
        do {
            _ = try await signals.race { try await child.waitForAddress(timeout: .seconds(30)) }
        } catch let error as OperatorError where error.message != SignalWaiter.interrupted {
            // Not listening yet (its port may still be held): the next round tries again.
            FileHandle.standardError.write(Data("fulcrum: \(error.message)\n".utf8))
            return
        }
        if name == "balancer" { self.endpoints?.balancerPID = child.pid } else { self.endpoints?.frontendPID = child.pid }
        try writeEndpoints()
        FileHandle.standardOutput.write(Data("fulcrum: \(name) restarted (pid \(child.pid))\n".utf8))
    }

    private static func replace(_ option: String, with value: String, in arguments: inout [String]) {
        if let index = arguments.firstIndex(of: option), index + 1 < arguments.count {
            arguments[index + 1] = value
        } else {
            arguments += [option, value]
        }
    }

    /// Stops children in order (frontend, then the balancer, which drains and stops its
    /// workers): SIGTERM, then SIGKILL after 15 s.
    private func stopAll() {
        let ordered = children.filter { $0.name == "frontend" } + children.filter { $0.name == "balancer" }
        for child in ordered {
            child.terminate()
            let deadline = Date().addingTimeInterval(15)
            while child.isRunning && Date() < deadline { usleep(20_000) }
            child.forceKill()
        }
        if let credentialsRecord { try? FileManager.default.removeItem(at: credentialsRecord) }
        try? FileManager.default.removeItem(at: temporary)
    }
}

/// The cluster's addresses, as printed and as written to `--endpoints-file`.
struct Endpoints {
    /// The cluster's certificate folder (nil: plaintext between the tiers).
    var tlsDirectory: String?
    var balancer: String
    var grpc: String
    var http: String
    var balancerPID: Int32
    var frontendPID: Int32
    var workers: [(name: String, address: String, pid: Int32)]
    /// Prometheus endpoints by service (balancer, frontend, worker ids), when enabled.
    var metrics: [String: String] = [:]

    var summary: String {
        var lines = [
            "fulcrum: balancer  \(balancer)  (pid \(balancerPID))"
                + (tlsDirectory.map { "  mutual TLS, certificates in \($0)" } ?? "  plaintext (--insecure)"),
            "fulcrum: frontend  grpc \(grpc)  http \(http)  (pid \(frontendPID))",
        ]
        for worker in workers {
            lines.append("fulcrum: \(worker.name)  \(worker.address)  (pid \(worker.pid))")
        }
        return lines.joined(separator: "\n")
    }

    var json: Data {
        let object: [String: Any] = [
            "balancer": balancer, "grpc": grpc, "http": http.isEmpty ? NSNull() as Any : http,
            "balancer_pid": Int(balancerPID), "frontend_pid": Int(frontendPID),
            "workers": workers.map { ["name": $0.name, "address": $0.address, "pid": Int($0.pid)] as [String: Any] },
            "metrics": metrics,
            "tls_dir": tlsDirectory.map { $0 as Any } ?? NSNull(),
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
    }
}

import Foundation
import FulcrumService
import Logging

/// The `process` scaler (the default of `fulcrum up`): starts and stops `fulcrum-worker`
/// processes on this host. Each worker binds a free port, joins this balancer and watches its
/// supervisor (`--exit-with-parent`): this balancer, or `fulcrum up` when the balancer runs
/// under it (`FULCRUM_SUPERVISOR_PID`, passed on in the environment), so no worker outlives its
/// supervisor even when that is killed. With a state directory the scaler records its workers
/// (name, pid, start time) in `workers.json` there; a balancer restarted on the same directory
/// adopts the ones still running instead of starting new ones (they rejoin on their own).
/// A worker that exits without being asked to is restarted under the same name. A scale-down
/// sends SIGTERM to the least loaded workers: a worker drains on SIGTERM (reports DRAINING, so
/// frontends stop routing to it; keeps serving for the drain grace period; finishes its
/// in-flight and queued requests; exits).
public actor ProcessScaler: Scaler {
    /// How to start a worker.
    public struct Launch: Sendable {
        public var executable: URL
        /// Arguments every worker gets (model repository, threads, balancer address...).
        public var arguments: [String]
        /// Where `workers.json` is kept across restarts (nil: nowhere, nothing is adopted).
        public var stateDirectory: String?

        public init(executable: URL, arguments: [String], stateDirectory: String? = nil) {
            self.executable = executable
            self.arguments = arguments
            self.stateDirectory = stateDirectory
        }
    }

    private struct Child {
        var name: String
        /// The `Process` when this balancer started it; nil for a worker adopted after a restart.
        var process: Process?
        var identity: ProcessIdentity
        var stopping = false
        var restarts = 0

        var pid: Int32 { identity.pid }
        var isRunning: Bool { process?.isRunning ?? identity.isAlive }
    }

    /// One line of `workers.json`.
    private struct Record: Codable {
        var name: String
        var pid: Int32
        var startTime: UInt64
    }

    nonisolated public var kind: String { "process" }
    private let launch: Launch
    private let balancer: OnceValue<HostPort>
    private let logger: Logger
    private var children: [Child] = []
    private var nextNumber = 1

    /// - Parameter balancer: the balancer's bound address, which workers join (set once it listens).
    public init(launch: Launch, balancer: OnceValue<HostPort>, logger: Logger) {
        self.launch = launch
        self.balancer = balancer
        self.logger = logger
        let (adopted, next) = Self.adopt(launch: launch, logger: logger)
        self.children = adopted
        self.nextNumber = next
    }

    private static func stateFile(_ launch: Launch) -> URL? {
        launch.stateDirectory.map { URL(fileURLWithPath: $0).appendingPathComponent("workers.json") }
    }

    /// The workers a previous balancer recorded that still run this executable under their name.
    private static func adopt(launch: Launch, logger: Logger) -> ([Child], Int) {
        guard let file = stateFile(launch), let data = FileManager.default.contents(atPath: file.path) else { return ([], 1) }
        guard let records = try? JSONDecoder().decode([Record].self, from: data) else {
            logger.warning("ignoring \(file.path): not a list of workers")
            return ([], 1)
        }
        var adopted: [Child] = []
        var next = 1
        for record in records {
            if let number = Int(record.name.dropFirst("worker-".count)), record.name.hasPrefix("worker-") { next = max(next, number + 1) }
            let identity = ProcessIdentity(pid: record.pid, startTime: record.startTime)
            let arguments = identity.arguments
            guard identity.isAlive, let index = arguments.firstIndex(of: "--name"), index + 1 < arguments.count,
                arguments[index + 1] == record.name, arguments.first.map({ $0.hasSuffix(launch.executable.lastPathComponent) }) ?? false
            else { continue }
            logger.notice("adopted \(record.name) (pid \(record.pid)), still running from before this balancer started")
            adopted.append(Child(name: record.name, process: nil, identity: identity))
        }
        return (adopted, next)
    }

    /// Records the running workers for a balancer that restarts on the same state directory.
    private func save() {
        guard let file = Self.stateFile(launch) else { return }
        let records = children.map { Record(name: $0.name, pid: $0.pid, startTime: $0.identity.startTime) }
        do {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONEncoder().encode(records).write(to: file, options: .atomic)
        } catch {
            logger.warning("cannot record the workers in \(file.path): \(error)")
        }
    }

    public func current(pool: Pool) async -> Int? {
        children.filter { !$0.stopping }.count
    }

    public func scale(to desired: Int, pool: Pool) async throws {
        let active = children.filter { !$0.stopping }
        if desired > active.count {
            let address = await balancer.value
            for _ in active.count..<desired {
                let name = "worker-\(nextNumber)"
                nextNumber += 1
                let process = try start(name: name, balancer: address)
                children.append(Child(name: name, process: process, identity: Self.identity(of: process)))
                save()
            }
        } else if desired < active.count {
            // Least loaded first; workers not yet in the pool (still starting) before all.
            let load = Dictionary(pool.workers.map { ($0.pid, $0.outstanding) }, uniquingKeysWith: { first, _ in first })
            let victims = active
                .sorted { (load[$0.pid] ?? -1, $0.name) < (load[$1.pid] ?? -1, $1.name) }
                .prefix(active.count - desired)
                .map(\.name)
            for index in children.indices where victims.contains(children[index].name) {
                children[index].stopping = true
                logger.info("draining \(children[index].name) (pid \(children[index].pid)) to scale down")
                kill(children[index].pid, SIGTERM)
            }
        }
    }

    public func maintain() async {
        guard !children.isEmpty else { return }
        let address = await balancer.value
        var kept: [Child] = []
        var changed = false
        for var child in children {
            if child.isRunning {
                kept.append(child)
                continue
            }
            changed = true
            if child.stopping {
                logger.info("\(child.name) stopped (drained)")
                continue
            }
            child.restarts += 1
            let status = child.process.map { "status \($0.terminationStatus)" } ?? "adopted, status unknown"
            logger.warning("\(child.name) exited unexpectedly (\(status)); restarting it (restart \(child.restarts))")
            do {
                let process = try start(name: child.name, balancer: address)
                child.process = process
                child.identity = Self.identity(of: process)
                kept.append(child)
            } catch {
                logger.error("cannot restart \(child.name): \(error)")
            }
        }
        children = kept
        if changed { save() }
    }

    public func shutdown() async {
        for child in children where child.isRunning {
            kill(child.pid, SIGTERM)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        // Not Task.sleep: this runs during shutdown, possibly in a cancelled task.
        while children.contains(where: { $0.isRunning }), ContinuousClock.now < deadline {
            usleep(50_000)
        }
        for child in children where child.isRunning {
            logger.warning("\(child.name) did not stop in time: killing it")
            kill(child.pid, SIGKILL)
        }
        children.removeAll()
        save()
    }

    /// Process ids of the running workers, by name (for tests and status).
    public var processes: [String: Int32] {
        Dictionary(children.filter { $0.isRunning }.map { ($0.name, $0.pid) }, uniquingKeysWith: { a, _ in a })
    }

    /// The identity of a process just started (its start time read from /proc).
    private static func identity(of process: Process) -> ProcessIdentity {
        ProcessIdentity(pid: process.processIdentifier)
            ?? ProcessIdentity(pid: process.processIdentifier, startTime: 0)
    }

    private func start(name: String, balancer: HostPort) throws -> Process {
        let process = Process()
        process.executableURL = launch.executable
        // A balancer bound to every interface is reached on loopback by its own children.
        let host = ["0.0.0.0", "::", ""].contains(balancer.host) ? "127.0.0.1" : balancer.host
        process.arguments = launch.arguments + [
            "--name", name, "--balancer", HostPort(host: host, port: balancer.port).description, "--exit-with-parent",
        ]
        // The balancer's own certificate must not pass for a worker's: workers get theirs from
        // `--worker-arg` only (ClusterTLS; the balancer lets only worker certificates join).
        var environment = ProcessInfo.processInfo.environment
        for name in ["FULCRUM_TLS_CERT", "FULCRUM_TLS_KEY", "FULCRUM_TLS_CA"] { environment.removeValue(forKey: name) }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.standardError
        try process.run()
        logger.info("started \(name) (pid \(process.processIdentifier))")
        return process
    }
}

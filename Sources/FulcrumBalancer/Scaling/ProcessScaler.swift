import Foundation
import FulcrumService
import FulcrumProtocol
import Logging

/// The `process` scaler (the default of `fulcrum up`): starts and stops `fulcrum-worker`
/// processes on this host. Each worker binds a free port, joins this balancer and watches it
/// (`--exit-with-parent`), so none outlives the balancer even when the balancer is killed.
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

        public init(executable: URL, arguments: [String]) {
            self.executable = executable
            self.arguments = arguments
        }
    }

    private struct Child {
        var name: String
        var process: Process
        var stopping = false
        var restarts = 0
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
    }

    public func current(pool: Fulcrum_Control_V1_PoolSnapshot) async -> Int? {
        children.filter { !$0.stopping }.count
    }

    public func scale(to desired: Int, pool: Fulcrum_Control_V1_PoolSnapshot) async throws {
        let active = children.filter { !$0.stopping }
        if desired > active.count {
            let address = await balancer.value
            for _ in active.count..<desired {
                let name = "worker-\(nextNumber)"
                nextNumber += 1
                children.append(Child(name: name, process: try start(name: name, balancer: address)))
            }
        } else if desired < active.count {
            // Least loaded first; workers not yet in the pool (still starting) before all.
            let load = Dictionary(
                pool.workers.map { (Int32($0.pid), Int($0.lastLoad.queueDepth) + Int($0.lastLoad.inFlight)) },
                uniquingKeysWith: { first, _ in first }
            )
            let victims = active
                .sorted { (load[$0.process.processIdentifier] ?? -1, $0.name) < (load[$1.process.processIdentifier] ?? -1, $1.name) }
                .prefix(active.count - desired)
                .map(\.name)
            for index in children.indices where victims.contains(children[index].name) {
                children[index].stopping = true
                logger.info("draining \(children[index].name) (pid \(children[index].process.processIdentifier)) to scale down")
                kill(children[index].process.processIdentifier, SIGTERM)
            }
        }
    }

    public func maintain() async {
        guard !children.isEmpty else { return }
        let address = await balancer.value
        var kept: [Child] = []
        for var child in children {
            if child.process.isRunning {
                kept.append(child)
                continue
            }
            if child.stopping {
                logger.info("\(child.name) stopped (drained)")
                continue
            }
            child.restarts += 1
            logger.warning("\(child.name) exited unexpectedly (status \(child.process.terminationStatus)); restarting it (restart \(child.restarts))")
            do {
                child.process = try start(name: child.name, balancer: address)
                kept.append(child)
            } catch {
                logger.error("cannot restart \(child.name): \(error)")
            }
        }
        children = kept
    }

    public func shutdown() async {
        for child in children where child.process.isRunning {
            kill(child.process.processIdentifier, SIGTERM)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        // Not Task.sleep: this runs during shutdown, possibly in a cancelled task.
        while children.contains(where: { $0.process.isRunning }), ContinuousClock.now < deadline {
            usleep(50_000)
        }
        for child in children where child.process.isRunning {
            logger.warning("\(child.name) did not stop in time: killing it")
            kill(child.process.processIdentifier, SIGKILL)
        }
        children.removeAll()
    }

    /// Process ids of the running workers, by name (for tests and status).
    public var processes: [String: Int32] {
        Dictionary(children.filter { $0.process.isRunning }.map { ($0.name, $0.process.processIdentifier) }, uniquingKeysWith: { a, _ in a })
    }

    private func start(name: String, balancer: HostPort) throws -> Process {
        let process = Process()
        process.executableURL = launch.executable
        // A balancer bound to every interface is reached on loopback by its own children.
        let host = ["0.0.0.0", "::", ""].contains(balancer.host) ? "127.0.0.1" : balancer.host
        process.arguments = launch.arguments + [
            "--name", name, "--balancer", HostPort(host: host, port: balancer.port).description, "--exit-with-parent",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.standardError
        try process.run()
        logger.info("started \(name) (pid \(process.processIdentifier))")
        return process
    }
}

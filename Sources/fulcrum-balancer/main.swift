import ArgumentParser
import FulcrumBalancer
import FulcrumService
import Foundation
import Logging

/// `fulcrum-balancer`: the control plane.
@main
struct BalancerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulcrum-balancer",
        abstract: "The Fulcrum balancer: keeps the compute pool's membership (workers join and report load), pushes pool snapshots to frontends, and answers `fulcrum status`."
    )

    @Option(name: .long, help: "Address to bind to.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "gRPC port of the control service; 0 picks a free port.")
    var port: Int = 7000

    @Option(name: .long, help: "Milliseconds a worker may stay silent before it leaves the pool.")
    var leaseMs: Int = 2000

    @Option(name: .long, help: "Write the bound address as JSON to this file once listening.")
    var addressFile: String?

    @Flag(name: .long, help: "Stop when the parent process exits (set by `fulcrum up`).")
    var exitWithParent = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(name: logLevel) != nil else { throw ValidationError("--log-level: '\(logLevel)' is not a log level") }
        guard (0...65535).contains(port) else { throw ValidationError("--port: \(port) is not a port") }
        guard leaseMs >= 100 else { throw ValidationError("--lease-ms must be at least 100") }
    }

    func run() async throws {
        LoggingSetup.bootstrap(level: Logger.Level(name: logLevel) ?? .info)
        try await Balancer.run(
            BalancerConfiguration(
                listen: HostPort(host: host, port: port),
                lease: .milliseconds(leaseMs),
                addressFile: addressFile,
                exitWithParent: exitWithParent
            )
        )
    }
}

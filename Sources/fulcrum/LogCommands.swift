import ArgumentParser
import FulcrumOperator
import FulcrumService
import Foundation

/// `fulcrum log show`.
struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Read a frontend's prediction log (--prediction-log).",
        subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print prediction records as JSON lines: ids, time, tenant, model version and content hash, status, latency, timing breakdown, inputs and outputs with their values."
        )

        @Argument(help: "A log file, or a --prediction-log directory (its files in order).")
        var path: String

        @Option(name: .long, help: "Only this model's records.")
        var model: String?

        @Option(name: .long, help: "At most this many records.")
        var limit: Int?

        func run() async throws {
            try await reportingErrors {
                let notes = try await LogShow.run(path, model: model, limit: limit) { print($0) }
                for note in notes { FileHandle.standardError.write(Data("fulcrum: \(note)\n".utf8)) }
            }
        }
    }
}

/// `fulcrum replay`.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send logged predictions to a running cluster again and report how the answers differ from the logged ones.",
        discussion: """
            Each logged prediction that succeeded is sent again (its inputs, parameters and id) to \
            --version, or to the version that answered it when logged; the new answer is compared \
            with the logged one output by output: identical (byte for byte), within --tolerance \
            (largest absolute difference of any element), or changed; the worst cases are listed. \
            Against the same version this proves the model gives the same answers; against a \
            candidate it shows what a rollout would change before any user sees it.
            """
    )

    @Argument(help: "A log file, or a --prediction-log directory.")
    var path: String

    @Option(name: .long, help: "The frontend's gRPC address.")
    var url: String = "127.0.0.1:8001"

    @Option(name: .long, help: "Only this model's records.")
    var model: String?

    @Option(name: .long, help: "Send every record to this version (default: the version that answered it).")
    var version: String = ""

    @Option(name: .long, help: "Requests per second (0: one after another, as fast as answers come).")
    var rate: Double = 0

    @Option(name: .long, help: "Largest absolute difference still counted as 'within tolerance'.")
    var tolerance: Double = 1e-6

    @Option(name: .long, help: "Deadline per request in milliseconds.")
    var timeoutMs: Int = 10000

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("Connect with TLS, trusting the CA in this PEM file (a frontend started with --edge-tls-cert).", valueName: "pem"))
    var tlsCA: String?

    @Option(name: .long, help: "An API key for a frontend started with --api-keys.")
    var apiKey: String?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func validate() throws {
        guard HostPort(parsing: url) != nil else { throw ValidationError("--url: '\(url)' is not host:port") }
        guard rate >= 0, rate.isFinite else { throw ValidationError("--rate must be 0 or more") }
        guard tolerance >= 0, tolerance.isFinite else { throw ValidationError("--tolerance must be 0 or more") }
        guard timeoutMs >= 1 else { throw ValidationError("--timeout-ms must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let options = Replay.Options(
                url: HostPort(parsing: url)!, model: model, version: version, rate: rate, tolerance: tolerance,
                timeout: .milliseconds(timeoutMs), edgeCA: tlsCA, apiKey: apiKey)
            let (summaries, notes) = try await Replay.run(path, options: options)
            for note in notes { FileHandle.standardError.write(Data("fulcrum: \(note)\n".utf8)) }
            print(Replay.report(summaries, tolerance: tolerance, json: json))
        }
    }
}

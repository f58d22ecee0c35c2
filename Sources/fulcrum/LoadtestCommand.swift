import ArgumentParser
import FulcrumLoad
import FulcrumOperator
import FulcrumService
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `fulcrum loadtest`: an open- or closed-loop load test against any open inference protocol
/// gRPC endpoint, writing result.json, summary.md and SVG plots (docs/loadtesting.md).
struct LoadtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test a model: open loop at a rate or schedule, or closed loop at a concurrency; latency from the intended send time.",
        discussion: """
            Open loop (--rate or --schedule) sends on a schedule fixed in advance and measures each request's latency from \
            the time it was meant to start, so a slow server cannot hide its backlog (no coordinated omission). Closed loop \
            (--concurrency) keeps C requests in flight. The report goes to --output: result.json, summary.md, latency.svg, \
            throughput.svg, latency-vs-load.svg (open loop), pool.svg (with --balancer).
            """
    )

    @Argument(help: "Model name.")
    var model: String

    @Option(name: .long, help: "Inference endpoint (a Fulcrum frontend or any open inference protocol gRPC server).")
    var url: String = "127.0.0.1:8001"

    @Option(name: .long, help: "Model version (default: the server's choice).")
    var modelVersion: String = ""

    @Option(name: .long, help: "Open loop: requests per second, constant for --duration.")
    var rate: Double?

    @Option(name: .long, help: "Closed loop: requests kept in flight.")
    var concurrency: Int?

    @Option(name: .long, help: "Open loop: a schedule, inline (RATE@SECONDS or FROM-TO@SECONDS, comma-separated, e.g. 100@10,100-500@20) or a JSON file with a \"schedule\" array of {from,to,seconds} or {rate,seconds}. Overrides --duration.")
    var schedule: String?

    @Option(name: .long, help: "Seconds the test lasts, warm-up included (with --rate or --concurrency).")
    var duration: Double = 10

    @Option(name: .long, help: "Seconds at the start whose requests are not measured.")
    var warmup: Double = 1

    @Option(name: .long, help: "gRPC connections; requests go round-robin over them.")
    var connections: Int = 1

    @Option(name: .long, help: "Batch size of each request (the leading variable dimension).")
    var batch: Int = 1

    @Option(name: .long, help: "Size of any other variable (-1) input dimension.")
    var dimValue: Int?

    @Option(name: .long, help: "Send the requests of this file (perf_analyzer's --input-data JSON: {\"data\": [{INPUT: [values] | {\"content\": [...], \"shape\": [...]} | {\"b64\": ...}}, ...]}), in turn, instead of random inputs.")
    var inputData: String?

    @Flag(name: .long, help: "Open loop: Poisson arrivals instead of evenly spaced ones.")
    var poisson = false

    @Option(name: .long, help: "Seed for Poisson arrivals and random inputs.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Open loop: most requests in flight; arrivals beyond it are dropped and counted.")
    var maxInFlight: Int = 1024

    @Option(name: .long, help: "Deadline of each request in milliseconds.")
    var timeoutMs: Int = 10000

    @Option(name: .long, help: "A Fulcrum balancer (host:port) to sample the pool size from every second.")
    var balancer: String?

    @Option(name: .long, help: ArgumentHelp(AdminCredentials.directoryHelp, valueName: "dir"))
    var tlsDir: String?

    @Option(name: .long, help: "Report folder.")
    var output: String = "loadtest-report"

    func options() throws -> LoadOptions {
        guard let target = HostPort(parsing: url) else { throw ValidationError("--url: '\(url)' is not host:port") }
        let modes = [rate != nil, concurrency != nil, schedule != nil].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("give exactly one of --rate, --schedule or --concurrency") }
        let mode: LoadOptions.Mode
        if let concurrency {
            mode = .closed(concurrency: concurrency, seconds: duration)
        } else if let rate {
            guard rate > 0 else { throw ValidationError("--rate must be positive") }
            mode = .open(schedule: .constant(rate, seconds: duration), poisson: poisson)
        } else {
            mode = .open(schedule: try Self.loadSchedule(schedule ?? ""), poisson: poisson)
        }
        var options = LoadOptions(target: target, model: model, mode: mode)
        options.version = modelVersion
        options.warmup = warmup
        options.connections = connections
        options.batch = batch
        options.dimensionValue = dimValue
        options.inputData = inputData
        options.seed = seed
        options.maxInFlight = maxInFlight
        options.timeout = .milliseconds(timeoutMs)
        if let balancer {
            guard let address = HostPort(parsing: balancer) else { throw ValidationError("--balancer: '\(balancer)' is not host:port") }
            options.balancer = address
            options.balancerTLS = try AdminCredentials.resolve(balancer: address, directory: tlsDir)
        }
        do { try options.validate() } catch let error as LoadError { throw ValidationError(error.message) }
        return options
    }

    /// An inline schedule, or a JSON file holding `{"schedule": [{"from","to","seconds"} | {"rate","seconds"}]}`.
    static func loadSchedule(_ text: String) throws -> RateSchedule {
        guard text.hasSuffix(".json") || FileManager.default.fileExists(atPath: text) else {
            do { return try RateSchedule(parsing: text) } catch let error as LoadError { throw ValidationError(error.message) }
        }
        guard let data = FileManager.default.contents(atPath: text),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let items = object["schedule"] as? [[String: Any]]
        else { throw ValidationError("--schedule \(text): expected a JSON file with a \"schedule\" array") }
        var segments: [RateSchedule.Segment] = []
        for (index, item) in items.enumerated() {
            let number = { (key: String) in (item[key] as? NSNumber)?.doubleValue }
            guard let seconds = number("seconds"), let from = number("rate") ?? number("from"), let to = number("rate") ?? number("to") else {
                throw ValidationError("--schedule \(text): segment \(index) needs \"seconds\" and \"rate\" or \"from\" and \"to\"")
            }
            segments.append(RateSchedule.Segment(from: from, to: to, seconds: seconds))
        }
        return RateSchedule(segments)
    }

    func run() async throws {
        let options = try options()
        let command = CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        let live = isatty(STDERR_FILENO) == 1
        try await reportingErrors {
            do {
                let result = try await LoadGenerator(options: options).run(command: command, progress: live ? Self.printProgress : nil)
                if live { FileHandle.standardError.write(Data("\n".utf8)) }
                try ReportWriter.write(result, to: output)
                print(String(
                    format: "%d requests (%d ok, %d errors, %d dropped), %.1f/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms; generator %.1f µs CPU/request; report in %@",
                    result.requests, result.ok, result.errors, result.dropped, result.achievedRate,
                    Double(result.latencyUs.p50) / 1000, Double(result.latencyUs.p99) / 1000, Double(result.latencyUs.max) / 1000,
                    result.generator.cpuUsPerRequest, output
                ))
            } catch let error as LoadError {
                throw OperatorError(error.message)
            }
        }
    }

    @Sendable static func printProgress(_ progress: LoadGenerator.Progress) {
        let line = String(
            format: "\r%5.0fs  %7d req/s  p50 %8.2f ms  p99 %8.2f ms  errors %d  dropped %d   ",
            progress.elapsed, progress.rate, Double(progress.p50Us) / 1000, Double(progress.p99Us) / 1000, progress.errors, progress.dropped
        )
        FileHandle.standardError.write(Data(line.utf8))
    }
}

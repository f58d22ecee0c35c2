import ArgumentParser
@testable import FulcrumCommandLine
import Testing

/// A service command shaped like the real ones: its own options plus the shared groups.
private struct SampleCommand: LayeredCommand {
    @Option(name: .long) var host: String = "127.0.0.1"
    @Option(name: .long) var backend: BackendChoice = .cpu
    @Option(name: .long) var profile: String?
    @Option(name: .long) var emulate: String?
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var tracing: TracingOptions
    @Option(name: .long) var config: String?

    func validate() throws { try backend.validate(profile: profile, emulate: emulate) }
}

@Suite("shared service options")
struct ServiceOptionsTests {
    @Test("the shared groups' options can come from the environment and config files too")
    func groupsAreLayered() {
        let names = Set(SampleCommand.declaredOptions().map(\.name))
        #expect(names.isSuperset(of: ["host", "backend", "log-level", "log-format", "metrics-port", "metrics-host", "trace-file", "otlp-endpoint"]))
    }

    @Test("defaults, and the values read")
    func parses() throws {
        let plain = try SampleCommand.parse([])
        #expect(plain.logging.logLevel == "info" && plain.logging.logFormat == "text")
        #expect(plain.metrics.listen(defaultHost: "10.0.0.1") == nil)
        #expect(plain.backend == .cpu)
        let set = try SampleCommand.parse(["--host", "10.0.0.1", "--metrics-port", "9100", "--log-format", "json", "--backend", "vulkan"])
        #expect(set.metrics.listen(defaultHost: set.host)?.description == "10.0.0.1:9100")
        #expect(set.backend == .vulkan)
        let elsewhere = try SampleCommand.parse(["--metrics-port", "0", "--metrics-host", "0.0.0.0"])
        #expect(elsewhere.metrics.listen(defaultHost: "127.0.0.1")?.host == "0.0.0.0")
    }

    @Test("bad values are refused with the option named", arguments: [
        (["--log-level", "loud"], "--log-level: 'loud' is not a log level"),
        (["--log-format", "xml"], "--log-format: 'xml' is not text or json"),
        (["--metrics-port", "70000"], "--metrics-port: 70000 is not a port"),
        (["--backend", "emulated"], "--backend emulated needs exactly one of --profile FILE and --emulate FIXED_MS+PER_SAMPLE_MS"),
        (["--backend", "emulated", "--profile", "p.json", "--emulate", "5+1"], "--backend emulated needs exactly one"),
        (["--profile", "p.json"], "--profile is for --backend emulated"),
        (["--backend", "tpu"], "tpu"),
    ])
    func refuses(arguments: [String], message: String) {
        do {
            _ = try SampleCommand.parse(arguments)
            Issue.record("\(arguments) parsed")
        } catch {
            #expect(SampleCommand.message(for: error).contains(message), "\(SampleCommand.message(for: error))")
        }
    }

    @Test("--emulate alone needs no --backend emulated, and a profile goes with emulated")
    func emulationCombinations() throws {
        _ = try SampleCommand.parse(["--emulate", "5+1"])
        _ = try SampleCommand.parse(["--backend", "emulated", "--emulate", "5+1"])
        _ = try SampleCommand.parse(["--backend", "emulated", "--profile", "p.json"])
    }
}

import ArgumentParser
import FulcrumService
import Logging

/// `--log-level` and `--log-format`: how every service logs.
public struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    @Option(name: .long, help: "Log format on standard error: text (human-readable lines) or json (one JSON object a line, with trace_id and span_id inside a traced request).")
    public var logFormat: String = "text"

    public init() {}

    public func validate() throws {
        guard Logger.Level(name: logLevel) != nil else { throw ValidationError("--log-level: '\(logLevel)' is not a log level") }
        guard LoggingSetup.Format(rawValue: logFormat) != nil else { throw ValidationError("--log-format: '\(logFormat)' is not text or json") }
    }

    /// Sets up swift-log for the process (once, before the first logger).
    public func bootstrap() {
        LoggingSetup.bootstrap(level: Logger.Level(name: logLevel) ?? .info, format: LoggingSetup.Format(rawValue: logFormat) ?? .text)
    }
}

/// `--metrics-port` and `--metrics-host`: where a service serves Prometheus metrics.
public struct MetricsOptions: ParsableArguments {
    @Option(name: .long, help: "Port for Prometheus metrics at http://HOST:PORT/metrics; 0 picks a free port; unset serves none.")
    public var metricsPort: Int?

    @Option(name: .long, help: "Address to bind the metrics endpoint to (default: --host).")
    public var metricsHost: String?

    public init() {}

    public func validate() throws {
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port: \(metricsPort) is not a port") }
    }

    /// The metrics endpoint's address, nil when none is served; `host` is the service's own.
    public func listen(defaultHost host: String) -> HostPort? {
        metricsPort.map { HostPort(host: metricsHost ?? host, port: $0) }
    }
}

/// `--trace-file`, `--otlp-endpoint` and `--otlp-protocol`: where the frontend and the workers send
/// finished spans.
public struct TracingOptions: ParsableArguments {
    @Option(name: .long, help: "Append every finished span (W3C trace context) to this file as one JSON line each; unset writes none. Incoming traceparent headers are passed on either way. Not with --otlp-endpoint.")
    public var traceFile: String?

    @Option(name: .long, help: "Export finished spans to this OpenTelemetry collector (swift-otel, batched): for http/protobuf and http/json the full URL, used as given (http://127.0.0.1:4318/v1/traces); for grpc the collector's address (http://127.0.0.1:4317). OTEL_* variables (sampler, headers, certificates) apply.")
    public var otlpEndpoint: String?

    @Option(name: .long, help: ArgumentHelp("How spans reach --otlp-endpoint.", valueName: "http/protobuf|http/json|grpc"))
    public var otlpProtocol: TracingSettings.OTLPProtocol = .httpProtobuf

    public init() {}

    public func validate() throws {
        if traceFile != nil && otlpEndpoint != nil { throw ValidationError(TracingSettings.exclusive) }
    }

    public var settings: TracingSettings { TracingSettings(file: traceFile, otlpEndpoint: otlpEndpoint, otlpProtocol: otlpProtocol) }
}

extension TracingSettings.OTLPProtocol: ExpressibleByArgument {}

/// What runs a worker's models (`--backend`), checked by ArgumentParser in `fulcrum-worker` and
/// `fulcrum up` alike.
public enum BackendChoice: String, CaseIterable, Sendable, ExpressibleByArgument {
    /// OpenBLAS and SIMD kernels.
    case cpu
    /// SPIR-V kernels on a Vulkan device.
    case vulkan
    /// A rehearsal tool, not a backend: every execution waits a service-time profile.
    case emulated

    /// Checks the options that go with the choice: `--backend emulated` needs exactly one of
    /// `--profile` and `--emulate`, and `--profile` is for `--backend emulated` only.
    public func validate(profile: String?, emulate: String?) throws {
        if self == .emulated {
            guard (profile == nil) != (emulate == nil) else {
                throw ValidationError("--backend emulated needs exactly one of --profile FILE and --emulate FIXED_MS+PER_SAMPLE_MS")
            }
        } else if profile != nil {
            throw ValidationError("--profile is for --backend emulated (a rehearsal tool); with --backend \(rawValue) the models run for real")
        }
    }
}

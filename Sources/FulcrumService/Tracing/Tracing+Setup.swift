import Foundation
import GRPCCore
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// Where a service sends its spans. `--otlp-endpoint` exports them to an OpenTelemetry collector
/// through swift-otel; `--trace-file` appends them to a JSON-lines file (Fulcrum's own small
/// tracer, for rehearsals and tests). With neither, swift-otel still propagates the caller's
/// `traceparent` to the next hop and records nothing.
public struct TracingSettings: Sendable, Equatable {
    /// The OTLP encodings a collector takes (`--otlp-protocol`, the values of
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`).
    public enum OTLPProtocol: String, Sendable, CaseIterable {
        case httpProtobuf = "http/protobuf"
        case httpJSON = "http/json"
        case grpc
    }

    /// Append finished spans to this file as JSON lines.
    public var file: String?
    /// The OTLP collector: the full URL for HTTP (`http://HOST:4318/v1/traces`, used as given),
    /// the server's address for gRPC (`http://HOST:4317`).
    public var otlpEndpoint: String?
    /// How spans reach `otlpEndpoint`.
    public var otlpProtocol: OTLPProtocol

    /// Why `--trace-file` and `--otlp-endpoint` are refused together: one process has one tracer.
    public static let exclusive =
        "--trace-file and --otlp-endpoint cannot be combined: choose one (a collector can write spans to a file with its own file exporter)"

    public init(file: String? = nil, otlpEndpoint: String? = nil, otlpProtocol: OTLPProtocol = .httpProtobuf) {
        self.file = file
        self.otlpEndpoint = otlpEndpoint
        self.otlpProtocol = otlpProtocol
    }
}

/// Installs the process's tracer (swift-distributed-tracing's `InstrumentationSystem`).
public enum TracingSetup {
    private static let done = Mutex(false)

    /// Bootstraps tracing for `service`/`instance` once per process and returns the services the
    /// caller must run in its `ServiceGroup` (swift-otel's span processor and exporter). A second
    /// call in the same process (tests) keeps the first set-up and returns nothing.
    ///
    /// swift-otel reads the `OTEL_*` environment over these settings (sampler, headers,
    /// certificates, batch sizes, `OTEL_EXPORTER_OTLP_*`); `OTEL_SDK_DISABLED=true` installs no
    /// tracer at all, so not even `traceparent` is passed on.
    public static func bootstrap(
        service: String, instance: String, settings: TracingSettings, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(TracingError) -> [any Service] {
        if settings.file != nil && settings.otlpEndpoint != nil {
            throw TracingError(TracingSettings.exclusive)
        }
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return [] }
        if let file = settings.file {
            InstrumentationSystem.bootstrap(SpanTracer(service: service, instance: instance, exporter: try SpanFileExporter(path: file)))
            logger.info("tracing: recording spans to file \(file) (W3C traceparent)")
            return []
        }
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" {
            logger.notice("tracing: OTEL_SDK_DISABLED=true; no tracer, traceparent is not passed on")
            return []
        }
        do {
            let backend = try OTel.makeTracingBackend(configuration: otelConfiguration(service: service, instance: instance, settings: settings, logger: logger))
            InstrumentationSystem.bootstrap(backend.factory)
            if let endpoint = settings.otlpEndpoint {
                logger.info("tracing: exporting spans with OTLP \(settings.otlpProtocol.rawValue) to \(endpoint) (W3C traceparent)")
            }
            return [backend.service]
        } catch {
            throw TracingError("tracing: \(error)")
        }
    }
}

extension TracingSetup {
    /// swift-otel's configuration for these settings (before its `OTEL_*` overrides): traces only,
    /// the service's name and instance id as resource attributes, exported to the collector, or,
    /// without one, sampled only where the caller sampled and exported nowhere.
    public static func otelConfiguration(service: String, instance: String, settings: TracingSettings, logger: Logger) -> OTel.Configuration {
        var configuration = OTel.Configuration.default
        configuration.serviceName = service
        configuration.resourceAttributes["service.instance.id"] = instance
        configuration.diagnosticLogger = .custom(logger)
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        if let endpoint = settings.otlpEndpoint {
            configuration.traces.exporter = .otlp
            configuration.traces.otlpExporter.endpoint = endpoint
            switch settings.otlpProtocol {
            case .httpProtobuf: configuration.traces.otlpExporter.protocol = .httpProtobuf
            case .httpJSON: configuration.traces.otlpExporter.protocol = .httpJSON
            case .grpc: configuration.traces.otlpExporter.protocol = .grpc
            }
        } else {
            // Propagation only: a trace the caller samples stays sampled for the next hop, and a
            // trace that starts here is not sampled (nothing would record it).
            configuration.traces.exporter = .none
            configuration.traces.sampler = .parentBasedAlwaysOff
        }
        return configuration
    }
}

extension InstrumentationContext {
    /// The trace id (32 hex digits) of the current span, from whichever tracer made it.
    public var traceID: String? {
        otelTraceID ?? traceContext?.traceID
    }

    /// Whether the current span's trace is sampled (recorded by this hop and the next).
    public var isTraceSampled: Bool {
        otelIsSampled || traceContext?.sampled == true
    }
}

/// Reads `traceparent`/`tracestate` from gRPC request metadata.
public struct GRPCMetadataExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: Metadata) -> String? {
        carrier[stringValues: key].first(where: { _ in true })
    }
}

/// Writes `traceparent`/`tracestate` into outgoing gRPC metadata.
public struct GRPCMetadataInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
        carrier.replaceOrAddString(value, forKey: key)
    }
}

extension InstrumentationContext {
    /// The context of a caller as its gRPC metadata carries it (`traceparent`), or top level.
    public static func extracted(from metadata: Metadata) -> InstrumentationContext {
        var context = InstrumentationContext.topLevel
        InstrumentationSystem.instrument.extract(metadata, into: &context, using: GRPCMetadataExtractor())
        return context
    }

    /// gRPC metadata carrying this context to the next hop.
    public var grpcMetadata: Metadata {
        var metadata = Metadata()
        InstrumentationSystem.instrument.inject(self, into: &metadata, using: GRPCMetadataInjector())
        return metadata
    }
}

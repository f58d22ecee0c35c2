import GRPCCore
import Logging
import ServiceLifecycle
import Synchronization
import Tracing

/// Where a service sends its spans (`--trace-file`, `--otlp-endpoint`); both unset records
/// nothing but still propagates `traceparent` from callers to the next hop.
public struct TracingSettings: Sendable, Equatable {
    /// Append finished spans to this file as JSON lines.
    public var file: String?
    /// POST finished spans to this OTLP/HTTP JSON endpoint (`http://HOST:4318/v1/traces`).
    public var otlpEndpoint: String?

    public init(file: String? = nil, otlpEndpoint: String? = nil) {
        self.file = file
        self.otlpEndpoint = otlpEndpoint
    }
}

/// Installs `SpanTracer` as the process's tracer (swift-distributed-tracing's
/// `InstrumentationSystem`).
public enum TracingSetup {
    private static let done = Mutex(false)

    /// Bootstraps tracing for `service`/`instance` once per process and returns the services the
    /// caller must run in its `ServiceGroup` (the OTLP exporter's sender). A second call in the
    /// same process (tests) keeps the first set-up and returns nothing.
    public static func bootstrap(
        service: String, instance: String, settings: TracingSettings, logger: Logger
    ) throws(TracingError) -> [any Service] {
        var exporters: [any SpanExporter] = []
        var services: [any Service] = []
        if let file = settings.file {
            exporters.append(try SpanFileExporter(path: file))
        }
        if let endpoint = settings.otlpEndpoint {
            let otlp = try OTLPExporter(endpoint: endpoint, service: service, instance: instance, logger: logger)
            exporters.append(otlp)
            services.append(otlp)
        }
        let exporter: (any SpanExporter)? = exporters.isEmpty ? nil : exporters.count == 1 ? exporters[0] : SpanExporters(exporters)
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return [] }
        InstrumentationSystem.bootstrap(SpanTracer(service: service, instance: instance, exporter: exporter))
        if exporter != nil {
            let targets = [settings.file.map { "file \($0)" }, settings.otlpEndpoint.map { "OTLP \($0)" }].compactMap { $0 }
            logger.info("tracing: recording spans to \(targets.joined(separator: " and ")) (W3C traceparent)")
        }
        return services
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

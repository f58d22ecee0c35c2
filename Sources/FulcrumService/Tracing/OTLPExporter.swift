import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Sends finished spans to an OpenTelemetry collector with OTLP/HTTP in its JSON encoding
/// (`POST <endpoint>` with `{"resourceSpans": …}`, e.g. `http://collector:4318/v1/traces`),
/// in batches once a second and once more at shutdown. It runs as a service of the process's
/// `ServiceGroup`. The buffer is bounded (`capacity` spans): when the collector is slow or gone,
/// newer spans are dropped and counted rather than held, and the request path never waits.
public final class OTLPExporter: SpanExporter, Service {
    /// The collector's traces URL.
    public let endpoint: String
    private let service: String
    private let instance: String
    private let capacity: Int
    private let interval: Duration
    private let logger: Logger
    private let buffer = Mutex<(spans: [FinishedSpan], dropped: Int)>(([], 0))

    public init(endpoint: String, service: String, instance: String, capacity: Int = 8192, interval: Duration = .seconds(1), logger: Logger) throws(TracingError) {
        guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw TracingError("--otlp-endpoint: '\(endpoint)' is not an http(s) URL (for example http://127.0.0.1:4318/v1/traces)")
        }
        self.endpoint = endpoint
        self.service = service
        self.instance = instance
        self.capacity = capacity
        self.interval = interval
        self.logger = logger
    }

    public func export(_ span: FinishedSpan) {
        buffer.withLock { b in
            if b.spans.count < capacity {
                b.spans.append(span)
            } else {
                b.dropped += 1
            }
        }
    }

    /// Batches go out from `run`; nothing to do synchronously.
    public func flush() {}

    public func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: interval)
            failing = await send(with: client, failing: failing)
        }
        _ = await send(with: client, failing: failing)
        try? await client.shutdown()
    }

    /// Posts what is buffered; returns whether the collector is failing (logged once per streak).
    private func send(with client: HTTPClient, failing: Bool) async -> Bool {
        let (spans, dropped) = buffer.withLock { b in
            defer { b = ([], 0) }
            return b
        }
        if dropped > 0 {
            logger.warning("tracing: dropped \(dropped) spans (the OTLP buffer of \(capacity) was full)")
        }
        guard !spans.isEmpty else { return failing }
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: Self.payload(spans, service: service, instance: instance)))
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard (200..<300).contains(response.status.code) else {
                if !failing { logger.warning("tracing: the collector at \(endpoint) answered \(response.status.code); \(spans.count) spans lost") }
                return true
            }
            if failing { logger.info("tracing: the collector at \(endpoint) accepts spans again") }
            return false
        } catch {
            if !failing { logger.warning("tracing: cannot send spans to \(endpoint): \(error); \(spans.count) spans lost") }
            return true
        }
    }

    /// An `ExportTraceServiceRequest` in OTLP/JSON for `spans` of one process.
    static func payload(_ spans: [FinishedSpan], service: String, instance: String) -> String {
        let resource = FinishedSpan.otlpAttributes([
            ("service.name", .string(service)), ("service.instance.id", .string(instance)),
        ])
        return """
            {"resourceSpans":[{"resource":{"attributes":\(resource)},"scopeSpans":[{"scope":{"name":"fulcrum"},"spans":[\
            \(spans.map(\.otlpJSON).joined(separator: ","))]}]}]}
            """
    }
}

import FulcrumService
import Foundation
import GRPCCore
import Logging
import OTel
import Synchronization
import Testing
import Tracing

@Suite struct TraceContextTests {
    @Test func parsesAndPrintsTraceparent() throws {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = try #require(TraceContext(traceparent: value, tracestate: "congo=t61rcWkgMzE"))
        #expect(context.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.spanID == "00f067aa0ba902b7")
        #expect(context.sampled)
        #expect(context.state == "congo=t61rcWkgMzE")
        #expect(context.traceparent == value)
        let unsampled = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
        #expect(!unsampled.sampled)
    }

    @Test func ignoresWhatTheSpecificationSaysToIgnore() {
        for value in [
            "", "00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 has 4 fields
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01",  // not hex
        ] {
            #expect(TraceContext(traceparent: value) == nil, "\(value)")
        }
        // A later version is read by its first four fields.
        #expect(TraceContext(traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds") != nil)
    }

    @Test func newIDsAreHexOfTheRightLengthAndNotZero() {
        for _ in 0..<100 {
            let trace = TraceContext.newTraceID(), span = TraceContext.newSpanID()
            #expect(trace.count == 32 && span.count == 16)
            #expect(TraceContext(traceparent: "00-\(trace)-\(span)-01") != nil)
        }
    }
}

/// Collects what a tracer exports.
private final class Collected: SpanExporter {
    let spans = Mutex<[FinishedSpan]>([])
    func export(_ span: FinishedSpan) { spans.withLock { $0.append(span) } }
    func flush() {}
    var all: [FinishedSpan] { spans.withLock { $0 } }
}

@Suite struct SpanTracerTests {
    private func incoming(_ traceparent: String) -> InstrumentationContext {
        var metadata = Metadata()
        metadata.addString(traceparent, forKey: "traceparent")
        var context = InstrumentationContext.topLevel
        SpanTracer(service: "s", instance: "i", exporter: nil).extract(metadata, into: &context, using: GRPCMetadataExtractor())
        return context
    }

    @Test func childSpansContinueTheCallersTraceAndInjectThemselves() throws {
        let collected = Collected()
        let tracer = SpanTracer(service: "fulcrum-frontend", instance: "frontend-1", exporter: collected)
        let parent = incoming("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        let server = tracer.startSpan("ModelInfer", context: parent, ofKind: .server)
        server.attributes["fulcrum.model"] = "simple"
        let client = tracer.startSpan("forward", context: server.context, ofKind: .client)
        var outgoing = Metadata()
        tracer.inject(client.context, into: &outgoing, using: GRPCMetadataInjector())
        let sent = try #require(outgoing[stringValues: "traceparent"].first(where: { _ in true }))
        let clientTrace = try #require(client.context.traceContext)
        #expect(sent == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(clientTrace.spanID)-01")
        client.end()
        server.end()
        server.end()  // a second end exports nothing more
        let spans = collected.all
        #expect(spans.map(\.name) == ["forward", "ModelInfer"])
        #expect(spans.allSatisfy { $0.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(spans[1].parentSpanID == "00f067aa0ba902b7" && spans[1].kind == "server")
        #expect(spans[0].parentSpanID == spans[1].spanID && spans[0].kind == "client")
        #expect(spans[1].attributes.map(\.key) == ["fulcrum.model"] && spans[1].attributes[0].value == .string("simple"))
        #expect(spans[1].service == "fulcrum-frontend" && spans[1].instance == "frontend-1")
    }

    @Test func unsampledTracesPropagateButRecordNothing() {
        let collected = Collected()
        let tracer = SpanTracer(service: "s", instance: "i", exporter: collected)
        let span = tracer.startSpan("x", context: incoming("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), ofKind: .server)
        #expect(!span.isRecording)
        #expect(span.context.traceContext?.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(span.context.traceContext?.sampled == false)
        span.end()
        #expect(collected.all.isEmpty)
    }

    @Test func aSpanWithoutParentStartsATraceSampledOnlyWithAnExporter() {
        let withExporter = SpanTracer(service: "s", instance: "i", exporter: Collected())
        let without = SpanTracer(service: "s", instance: "i", exporter: nil)
        let a = withExporter.startSpan("a", context: .topLevel, ofKind: .server)
        let b = without.startSpan("b", context: .topLevel, ofKind: .server)
        #expect(a.isRecording && a.context.traceContext?.sampled == true)
        #expect(!b.isRecording && b.context.traceContext != nil)
        #expect(a.context.traceContext?.traceID != b.context.traceContext?.traceID)
    }

    @Test func finishedSpansWriteJSONLines() throws {
        let collected = Collected()
        let tracer = SpanTracer(service: "fulcrum-worker", instance: "worker-1", exporter: collected)
        let span = tracer.startSpan(
            "compute \"quoted\"\n", context: .topLevel, ofKind: .internal, at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: 1_000_000))
        span.attributes["fulcrum.batch_size"] = 8
        span.attributes["ok"] = true
        span.recordError(TracingError("boom"))
        span.setStatus(SpanStatus(code: .error, message: "boom"))
        span.end(at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: 3_500_000))
        let finished = try #require(collected.all.first)

        let line = try #require(try JSONSerialization.jsonObject(with: Data(finished.jsonLine.utf8)) as? [String: Any])
        #expect(line["name"] as? String == "compute \"quoted\"\n")
        #expect(line["durationUs"] as? Int == 2500)
        #expect(line["status"] as? String == "error")
        #expect((line["attributes"] as? [String: Any])?["fulcrum.batch_size"] as? Int == 8)
        #expect((line["events"] as? [[String: Any]])?.first?["name"] as? String == "exception")

    }

    @Test func jsonLogLinesAreOneObjectEach() throws {
        let line = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 1_700_000_000.25), level: .warning, label: "fulcrum.worker", source: "FulcrumWorker",
            message: "a \"message\"\nwith a newline", metadata: ["trace_id": "abc", "n": .stringConvertible(3), "list": ["x", "y"]])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2023-11-14T22:13:20.250Z")
        #expect(object["level"] as? String == "warning" && object["label"] as? String == "fulcrum.worker")
        #expect(object["message"] as? String == "a \"message\"\nwith a newline")
        #expect(object["trace_id"] as? String == "abc" && object["n"] as? String == "3")
        #expect(object["list"] as? [String] == ["x", "y"])
    }
}

/// swift-otel's tracer as `TracingSetup` configures it (created here, not bootstrapped, so the
/// process-wide tracer stays untouched).
@Suite struct OTelTracingTests {
    private let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"

    private func tracer(_ settings: TracingSettings) throws -> some Tracer {
        try OTel.makeTracingBackend(
            configuration: TracingSetup.otelConfiguration(service: "fulcrum-worker", instance: "worker-1", settings: settings, logger: Logger(label: "test"))
        ).factory
    }

    private func propagated<T: Tracer>(by tracer: T, from traceparent: String) throws -> (span: T.Span, sent: String) {
        var metadata = Metadata()
        metadata.addString(traceparent, forKey: "traceparent")
        var parent = InstrumentationContext.topLevel
        tracer.extract(metadata, into: &parent, using: GRPCMetadataExtractor())
        let span = tracer.startSpan("ModelInfer", context: parent, ofKind: .server)
        var outgoing = Metadata()
        tracer.inject(span.context, into: &outgoing, using: GRPCMetadataInjector())
        return (span, try #require(outgoing[stringValues: "traceparent"].first(where: { _ in true })))
    }

    @Test func withoutACollectorTheCallersTraceIsPassedOnWithItsSampling() throws {
        let tracer = try tracer(TracingSettings())
        for flags in ["01", "00"] {
            let (span, sent) = try propagated(by: tracer, from: "\(caller)-\(flags)")
            #expect(span.context.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
            #expect(span.context.isTraceSampled == (flags == "01"))
            let fields = sent.split(separator: "-")
            #expect(fields.count == 4 && fields[0] == "00" && fields[1] == "4bf92f3577b34da6a3ce929d0e0e4736")
            #expect(fields[2] != "00f067aa0ba902b7" && fields[2].count == 16, "the next hop's parent is this span")
            #expect(fields[3] == Substring(flags))
            span.end()
        }
    }

    @Test func withoutACollectorATraceStartedHereIsNotSampled() throws {
        let tracer = try tracer(TracingSettings())
        let a = tracer.startSpan("a", context: .topLevel, ofKind: .server)
        let b = tracer.startSpan("b", context: .topLevel, ofKind: .server)
        #expect(a.context.traceID?.count == 32 && a.context.traceID != b.context.traceID)
        #expect(!a.context.isTraceSampled && !a.isRecording)
        a.end()
        b.end()
    }

    @Test func aCollectorSamplesNewTracesAndGetsTheChosenProtocol() throws {
        let grpc = TracingSettings(otlpEndpoint: "http://127.0.0.1:4317", otlpProtocol: .grpc)
        let configuration = TracingSetup.otelConfiguration(service: "fulcrum-frontend", instance: "frontend-1", settings: grpc, logger: Logger(label: "test"))
        #expect(configuration.traces.otlpExporter.protocol == .grpc)
        #expect(configuration.traces.otlpExporter.endpoint == "http://127.0.0.1:4317")
        #expect(configuration.serviceName == "fulcrum-frontend" && configuration.resourceAttributes["service.instance.id"] == "frontend-1")
        #expect(!configuration.metrics.enabled && !configuration.logs.enabled)
        let http = TracingSetup.otelConfiguration(
            service: "s", instance: "i", settings: TracingSettings(otlpEndpoint: "http://127.0.0.1:4318/v1/traces"), logger: Logger(label: "test"))
        #expect(http.traces.otlpExporter.protocol == .httpProtobuf)
        let span = try tracer(TracingSettings(otlpEndpoint: "http://127.0.0.1:9/v1/traces")).startSpan("root", context: .topLevel, ofKind: .server)
        #expect(span.isRecording && span.context.isTraceSampled)
        span.end()
    }

    @Test func logLinesInsideASpanCarryItsTraceID() throws {
        let tracer = try tracer(TracingSettings())
        let (span, _) = try propagated(by: tracer, from: "\(caller)-01")
        let provider = try #require(LoggingSetup.traceMetadataProvider)
        let metadata = InstrumentationContext.withValue(span.context) { provider.get() }
        #expect(metadata["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(metadata["span_id"]?.description.count == 16)
        #expect(provider.get()["trace_id"] == nil, "no span, no trace id")
        span.end()
    }

    @Test func fileAndCollectorTogetherAreRefused() {
        let settings = TracingSettings(file: "/tmp/spans.jsonl", otlpEndpoint: "http://127.0.0.1:4318/v1/traces")
        #expect(throws: TracingError.self) {
            _ = try TracingSetup.bootstrap(service: "s", instance: "i", settings: settings, logger: Logger(label: "test"))
        }
    }
}

import Synchronization
import Tracing

/// The tracer of `--trace-file` (swift-distributed-tracing's `Tracer`): W3C `traceparent`
/// propagation, and spans handed to a `SpanExporter` (the JSON-lines file) when they end. Every
/// other set-up, OTLP export and propagation alone, is swift-otel's tracer (`TracingSetup`).
///
/// A span continues the trace of its parent context (extracted from an incoming `traceparent`, or
/// the current span in this task) and keeps its `sampled` flag; a span without a parent starts a
/// new trace, sampled when an exporter is configured. The context is always propagated, even
/// when nothing is recorded here, so a caller's trace id reaches every hop. Without an exporter
/// a span costs two random ids and a small allocation; nothing is written.
public final class SpanTracer: Tracer, Sendable {
    public typealias Span = RecordedSpan

    /// The `service.name` every span carries (`fulcrum-frontend`, `fulcrum-worker`).
    public let service: String
    /// An id for this process within the service (frontend or worker id).
    public let instance: String
    private let exporter: (any SpanExporter)?

    public init(service: String, instance: String, exporter: (any SpanExporter)?) {
        self.service = service
        self.instance = instance
        self.exporter = exporter
    }

    /// The header names of the W3C Trace Context specification.
    public static let traceparentKey = "traceparent"
    public static let tracestateKey = "tracestate"

    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: Self.traceparentKey, from: carrier),
            let parsed = TraceContext(traceparent: value, tracestate: extractor.extract(key: Self.tracestateKey, from: carrier))
        else { return }
        context.traceContext = parsed
    }

    public func inject<Carrier, Inject: Injector>(
        _ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let trace = context.traceContext else { return }
        injector.inject(trace.traceparent, forKey: Self.traceparentKey, into: &carrier)
        if let state = trace.state, !state.isEmpty {
            injector.inject(state, forKey: Self.tracestateKey, into: &carrier)
        }
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> InstrumentationContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> RecordedSpan {
        var spanContext = context()
        let parent = spanContext.traceContext
        let trace = TraceContext(
            traceID: parent?.traceID ?? TraceContext.newTraceID(),
            spanID: TraceContext.newSpanID(),
            sampled: parent?.sampled ?? (exporter != nil),
            state: parent?.state
        )
        spanContext.traceContext = trace
        return RecordedSpan(
            name: operationName, kind: kind, context: spanContext, parentSpanID: parent?.spanID,
            start: instant().nanosecondsSinceEpoch, tracer: self,
            recording: trace.sampled && exporter != nil
        )
    }

    @available(*, deprecated)
    public func forceFlush() {
        exporter?.flush()
    }

    /// Called by a recording span when it ends.
    func finished(_ span: FinishedSpan) {
        exporter?.export(span)
    }
}

/// A span of `SpanTracer`: attributes, events and status collected until `end`, then exported
/// once as a `FinishedSpan` (when the trace is sampled and an exporter is configured).
public final class RecordedSpan: Span, Sendable {
    public let context: InstrumentationContext
    private let kind: SpanKind
    private let parentSpanID: String?
    private let start: UInt64
    private let tracer: SpanTracer
    public let isRecording: Bool
    private let state: Mutex<State>

    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var events: [SpanEvent] = []
        var status: SpanStatus? = nil
        var ended = false
    }

    init(name: String, kind: SpanKind, context: InstrumentationContext, parentSpanID: String?, start: UInt64, tracer: SpanTracer, recording: Bool) {
        self.context = context
        self.kind = kind
        self.parentSpanID = parentSpanID
        self.start = start
        self.tracer = tracer
        self.isRecording = recording
        self.state = Mutex(State(name: name))
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set {
            guard isRecording else { return }
            state.withLock { $0.attributes = newValue }
        }
    }

    public func setStatus(_ status: SpanStatus) {
        guard isRecording else { return }
        state.withLock { $0.status = status }
    }

    public func addEvent(_ event: SpanEvent) {
        guard isRecording else { return }
        state.withLock { $0.events.append(event) }
    }

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        guard isRecording else { return }
        var eventAttributes = attributes
        eventAttributes["exception.message"] = "\(error)"
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: eventAttributes))
    }

    /// Links are not exported by this tracer.
    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let finished: State? = state.withLock { s in
            guard !s.ended else { return nil }
            s.ended = true
            return s
        }
        guard isRecording, let finished, let trace = context.traceContext else { return }
        tracer.finished(
            FinishedSpan(
                service: tracer.service, instance: tracer.instance, name: finished.name, kind: kind,
                traceID: trace.traceID, spanID: trace.spanID, parentSpanID: parentSpanID,
                start: start, end: instant().nanosecondsSinceEpoch,
                attributes: finished.attributes, events: finished.events, status: finished.status
            ))
    }
}

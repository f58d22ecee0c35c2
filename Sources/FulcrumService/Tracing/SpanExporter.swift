import Tracing

/// Where `SpanTracer` sends the spans that end (`SpanFileExporter`, or a test's collector).
/// `export` is called on the request's own task and must not block for long.
public protocol SpanExporter: Sendable {
    /// Takes one finished span.
    func export(_ span: FinishedSpan)
    /// Writes out whatever is buffered.
    func flush()
}

/// A span as it ended: ids, timing, attributes, events and status, in plain values.
public struct FinishedSpan: Sendable, Equatable {
    /// An attribute value as OpenTelemetry types it.
    public enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
    }

    /// One event inside the span (an error, for example).
    public struct Event: Sendable, Equatable {
        public var name: String
        public var time: UInt64
        public var attributes: [(key: String, value: Value)]

        public static func == (a: Event, b: Event) -> Bool {
            a.name == b.name && a.time == b.time && a.attributes.elementsEqual(b.attributes) { $0.key == $1.key && $0.value == $1.value }
        }
    }

    public var service: String
    public var instance: String
    public var name: String
    /// `server`, `client`, `internal`, `producer` or `consumer`.
    public var kind: String
    public var traceID: String
    public var spanID: String
    public var parentSpanID: String?
    /// Nanoseconds since the Unix epoch.
    public var start: UInt64
    public var end: UInt64
    /// In the order they were set, sorted by key.
    public var attributes: [(key: String, value: Value)]
    public var events: [Event]
    /// True when the span's status is an error.
    public var failed: Bool
    public var statusMessage: String?

    public static func == (a: FinishedSpan, b: FinishedSpan) -> Bool {
        a.service == b.service && a.instance == b.instance && a.name == b.name && a.kind == b.kind
            && a.traceID == b.traceID && a.spanID == b.spanID && a.parentSpanID == b.parentSpanID
            && a.start == b.start && a.end == b.end && a.events == b.events && a.failed == b.failed
            && a.statusMessage == b.statusMessage
            && a.attributes.elementsEqual(b.attributes) { $0.key == $1.key && $0.value == $1.value }
    }

    init(
        service: String, instance: String, name: String, kind: SpanKind, traceID: String, spanID: String,
        parentSpanID: String?, start: UInt64, end: UInt64, attributes: SpanAttributes, events: [SpanEvent], status: SpanStatus?
    ) {
        self.service = service
        self.instance = instance
        self.name = name
        self.kind = Self.name(of: kind)
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.start = start
        self.end = max(start, end)
        self.attributes = Self.values(attributes)
        self.events = events.map { Event(name: $0.name, time: $0.nanosecondsSinceEpoch, attributes: Self.values($0.attributes)) }
        self.failed = status?.code == .error
        self.statusMessage = status?.message
    }

    private static func name(of kind: SpanKind) -> String {
        switch kind {
        case .server: "server"
        case .client: "client"
        case .producer: "producer"
        case .consumer: "consumer"
        default: "internal"
        }
    }

    private static func values(_ attributes: SpanAttributes) -> [(key: String, value: Value)] {
        var out: [(key: String, value: Value)] = []
        attributes.forEach { key, attribute in
            let value: Value
            switch attribute {
            case .int32(let v): value = .int(Int64(v))
            case .int64(let v): value = .int(v)
            case .double(let v): value = .double(v)
            case .bool(let v): value = .bool(v)
            case .string(let v): value = .string(v)
            default: value = .string("\(attribute)")
            }
            out.append((key, value))
        }
        return out.sorted { $0.key < $1.key }
    }
}

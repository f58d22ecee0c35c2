import Tracing

/// A W3C Trace Context (`traceparent`, version 00): the trace a span belongs to, the span's own
/// id and whether the trace is sampled. Carried between processes in the `traceparent` header
/// (gRPC metadata or HTTP) and inside a process in an `InstrumentationContext`.
public struct TraceContext: Sendable, Hashable {
    /// 16 bytes, as 32 lower-case hex digits; never all zeros.
    public var traceID: String
    /// 8 bytes, as 16 lower-case hex digits; never all zeros.
    public var spanID: String
    /// The `sampled` bit of trace-flags: the caller records this trace.
    public var sampled: Bool
    /// The vendor part (`tracestate`), passed on unchanged.
    public var state: String?

    public init(traceID: String, spanID: String, sampled: Bool, state: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
        self.state = state
    }

    /// Parses a `traceparent` value. Returns nil for anything the specification says to ignore
    /// (wrong lengths, upper-case or non-hex digits, all-zero ids, version ff); a version newer
    /// than 00 is read by its first four fields, as the specification asks.
    public init?(traceparent value: String, tracestate: String? = nil) {
        let fields = value.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count >= 4 else { return nil }
        let version = fields[0], trace = fields[1], span = fields[2], flags = fields[3]
        guard version.count == 2, Self.isHex(version), version != "ff",
            trace.count == 32, Self.isHex(trace), trace.contains(where: { $0 != "0" }),
            span.count == 16, Self.isHex(span), span.contains(where: { $0 != "0" }),
            flags.count == 2, Self.isHex(flags), let flagBits = UInt8(flags, radix: 16)
        else { return nil }
        if version == "00" && fields.count != 4 { return nil }
        self.init(traceID: String(trace), spanID: String(span), sampled: flagBits & 1 == 1, state: tracestate)
    }

    /// The `traceparent` value: `00-<trace id>-<span id>-<flags>`.
    public var traceparent: String {
        "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")"
    }

    /// A new random trace id (16 bytes).
    public static func newTraceID() -> String { randomHex(bytes: 16) }

    /// A new random span id (8 bytes).
    public static func newSpanID() -> String { randomHex(bytes: 8) }

    private static func randomHex(bytes: Int) -> String {
        var text = ""
        text.reserveCapacity(bytes * 2)
        repeat {
            text = ""
            for _ in 0..<(bytes / 8) {
                let digits = String(QuickRandom.next(), radix: 16)
                text += String(repeating: "0", count: 16 - digits.count) + digits
            }
        } while !text.contains(where: { $0 != "0" })
        return text
    }

    private static func isHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// The key under which a process keeps the current span's `TraceContext`.
public enum TraceContextKey: InstrumentationContextKey {
    public typealias Value = TraceContext
    public static var nameOverride: String? { "trace-context" }
}

extension InstrumentationContext {
    /// The W3C trace context of the current span, if any.
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }
}

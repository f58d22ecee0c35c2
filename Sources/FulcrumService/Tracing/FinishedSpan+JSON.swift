/// The two JSON forms of a finished span: one line of `--trace-file` and one span of an OTLP/HTTP
/// JSON export (OpenTelemetry's `opentelemetry.proto.trace.v1.Span` in its JSON mapping: ids as
/// hex, 64-bit integers as strings, enums as numbers).
extension FinishedSpan {
    /// A self-contained JSON object (no newline): service, instance, ids, name, kind, start/end in
    /// Unix nanoseconds, duration in µs, attributes as an object, events, status.
    public var jsonLine: String {
        var fields: [String] = [
            "\"service\":\(JSONText.string(service))",
            "\"instance\":\(JSONText.string(instance))",
            "\"traceId\":\(JSONText.string(traceID))",
            "\"spanId\":\(JSONText.string(spanID))",
        ]
        if let parentSpanID { fields.append("\"parentSpanId\":\(JSONText.string(parentSpanID))") }
        fields += [
            "\"name\":\(JSONText.string(name))",
            "\"kind\":\(JSONText.string(kind))",
            "\"startTimeUnixNano\":\(start)",
            "\"endTimeUnixNano\":\(end)",
            "\"durationUs\":\((end - start) / 1000)",
            "\"attributes\":{\(attributes.map { "\(JSONText.string($0.key)):\(Self.plain($0.value))" }.joined(separator: ","))}",
            "\"status\":\(JSONText.string(failed ? "error" : "ok"))",
        ]
        if let statusMessage { fields.append("\"statusMessage\":\(JSONText.string(statusMessage))") }
        if !events.isEmpty {
            let list = events.map { event in
                "{\"name\":\(JSONText.string(event.name)),\"timeUnixNano\":\(event.time),\"attributes\":{\(event.attributes.map { "\(JSONText.string($0.key)):\(Self.plain($0.value))" }.joined(separator: ","))}}"
            }
            fields.append("\"events\":[\(list.joined(separator: ","))]")
        }
        return "{\(fields.joined(separator: ","))}"
    }

    /// The span as an OTLP/JSON `Span` object.
    public var otlpJSON: String {
        let kindNumber: Int
        switch kind {
        case "server": kindNumber = 2
        case "client": kindNumber = 3
        case "producer": kindNumber = 4
        case "consumer": kindNumber = 5
        default: kindNumber = 1
        }
        var fields: [String] = [
            "\"traceId\":\(JSONText.string(traceID))",
            "\"spanId\":\(JSONText.string(spanID))",
        ]
        if let parentSpanID { fields.append("\"parentSpanId\":\(JSONText.string(parentSpanID))") }
        fields += [
            "\"name\":\(JSONText.string(name))",
            "\"kind\":\(kindNumber)",
            "\"startTimeUnixNano\":\"\(start)\"",
            "\"endTimeUnixNano\":\"\(end)\"",
            "\"attributes\":\(Self.otlpAttributes(attributes))",
        ]
        if !events.isEmpty {
            let list = events.map { "{\"timeUnixNano\":\"\($0.time)\",\"name\":\(JSONText.string($0.name)),\"attributes\":\(Self.otlpAttributes($0.attributes))}" }
            fields.append("\"events\":[\(list.joined(separator: ","))]")
        }
        var status = "\"code\":\(failed ? 2 : 0)"
        if let statusMessage { status += ",\"message\":\(JSONText.string(statusMessage))" }
        fields.append("\"status\":{\(status)}")
        return "{\(fields.joined(separator: ","))}"
    }

    /// OTLP/JSON `KeyValue` list.
    static func otlpAttributes(_ attributes: [(key: String, value: Value)]) -> String {
        let list = attributes.map { key, value -> String in
            let typed: String
            switch value {
            case .string(let v): typed = "{\"stringValue\":\(JSONText.string(v))}"
            case .int(let v): typed = "{\"intValue\":\"\(v)\"}"
            case .double(let v): typed = "{\"doubleValue\":\(JSONText.number(v))}"
            case .bool(let v): typed = "{\"boolValue\":\(v)}"
            }
            return "{\"key\":\(JSONText.string(key)),\"value\":\(typed)}"
        }
        return "[\(list.joined(separator: ","))]"
    }

    private static func plain(_ value: Value) -> String {
        switch value {
        case .string(let v): JSONText.string(v)
        case .int(let v): "\(v)"
        case .double(let v): JSONText.number(v)
        case .bool(let v): "\(v)"
        }
    }
}

/// Minimal JSON text for values written by hand (strings escaped per RFC 8259).
enum JSONText {
    static func string(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A finite number as JSON; NaN and infinities (not JSON) as null.
    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "null"
    }
}

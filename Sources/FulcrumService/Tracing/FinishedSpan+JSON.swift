/// A finished span as one line of `--trace-file`.
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

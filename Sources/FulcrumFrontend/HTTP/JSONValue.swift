/// A parsed JSON document, as the HTTP edge reads and writes it. Integers keep their exact
/// value (`int`/`uint`), so INT64 and UINT64 tensors survive the trip; objects serialize with
/// sorted keys, so answers are deterministic. Parse with `JSONParser`; write with `serialized`.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer literal that fits in Int64.
    case int(Int64)
    /// A non-negative integer literal above Int64.max.
    case uint(UInt64)
    /// A literal with a fraction or exponent (or an integer too large for UInt64).
    case double(Double)
    /// A 32-bit float, written in its shortest form ("0.1", not "0.10000000149011612").
    case float(Float)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The member `key` of an object, or nil.
    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// A short name of the value's kind, for error messages.
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .uint, .double, .float: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// The value as an Int64 when it is an integer (or an integral double) in range.
    var int64: Int64? {
        switch self {
        case .int(let v): v
        case .uint(let v): Int64(exactly: v)
        case .double(let v): Int64(exactly: v)
        case .float(let v): Int64(exactly: v)
        default: nil
        }
    }

    /// The value as a Double when it is a number.
    var number: Double? {
        switch self {
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        case .double(let v): v
        case .float(let v): Double(v)
        default: nil
        }
    }

    /// The document as compact JSON text (UTF-8). NaN and infinities are written as the bare
    /// tokens `NaN`, `Infinity` and `-Infinity`, which Python's and rapidjson's readers accept.
    var serialized: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    /// Appends the compact JSON text of the value to `out`.
    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let v): out.append(contentsOf: (v ? "true" : "false").utf8)
        case .int(let v): out.append(contentsOf: String(v).utf8)
        case .uint(let v): out.append(contentsOf: String(v).utf8)
        case .double(let v): Self.writeNumber(v.isFinite ? v.description : Self.nonFinite(Double(v)), to: &out)
        case .float(let v): Self.writeNumber(v.isFinite ? v.description : Self.nonFinite(Double(v)), to: &out)
        case .string(let v): Self.writeString(v, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func nonFinite(_ value: Double) -> String {
        value.isNaN ? "NaN" : (value < 0 ? "-Infinity" : "Infinity")
    }

    /// Swift writes integral doubles as "2.0" and large ones as "1e+20": both are valid JSON.
    private static func writeNumber(_ text: String, to out: inout [UInt8]) {
        out.append(contentsOf: text.utf8)
    }

    private static func writeString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Reads a `TextMessage` against a schema the caller spells out field by field, producing
/// errors that name the file, line, field and message type.
///
/// Usage: `try reader.forEach { field throws(RuntimeError) in switch field.name { ... default: throw reader.unknown(field) } }`.
/// Singular fields given twice are refused, as protobuf's text parser does.
struct TextMessageReader {
    let message: TextMessage
    let typeName: String
    let file: String
    let repeated: Set<String>

    init(_ message: TextMessage, typeName: String, file: String, repeated: Set<String> = []) {
        self.message = message
        self.typeName = typeName
        self.file = file
        self.repeated = repeated
    }

    /// Calls `body` for each field in order; refuses a singular field written twice.
    func forEach(_ body: (TextMessage.Field) throws(RuntimeError) -> Void) throws(RuntimeError) {
        var seen: [String: Int] = [:]
        for field in message.fields {
            if !repeated.contains(field.name), let first = seen[field.name] {
                throw error(field, "field '\(field.name)' in \(typeName) is given more than once (first on line \(first))")
            }
            seen[field.name] = seen[field.name] ?? field.line
            try body(field)
        }
    }

    func error(_ field: TextMessage.Field, _ text: String) -> RuntimeError {
        RuntimeError(code: .invalidConfiguration, message: "\(file):\(field.line): \(text)")
    }

    /// The error for a field this message type does not have.
    func unknown(_ field: TextMessage.Field, unsupported: Set<String> = []) -> RuntimeError {
        if unsupported.contains(field.name) {
            return error(field, "field '\(field.name)' in \(typeName) is not supported by Fulcrum")
        }
        return error(field, "unknown field '\(field.name)' in \(typeName)")
    }

    // MARK: Scalars

    private func scalar(_ field: TextMessage.Field, _ expected: String) throws(RuntimeError) -> TextMessage.Scalar {
        guard case .scalar(let s) = field.value else {
            throw error(field, "field '\(field.name)' in \(typeName): expected \(expected), found a message")
        }
        return s
    }

    func message(_ field: TextMessage.Field) throws(RuntimeError) -> TextMessage {
        guard case .message(let m) = field.value else {
            throw error(field, "field '\(field.name)' in \(typeName): expected a message '{ ... }'")
        }
        return m
    }

    func string(_ field: TextMessage.Field) throws(RuntimeError) -> String {
        let s = try scalar(field, "a quoted string")
        guard s.kind == .string else {
            throw error(field, "field '\(field.name)': expected a quoted string, found '\(s.text)'")
        }
        return s.text
    }

    func integer<T: FixedWidthInteger>(_ field: TextMessage.Field, as type: T.Type = T.self) throws(RuntimeError) -> T {
        let s = try scalar(field, "an integer")
        guard s.kind == .number, let value = Self.parseInteger(s.text, as: T.self) else {
            let range = "\(T.min)...\(T.max)"
            throw error(field, "field '\(field.name)': '\(s.text)' is not an integer in \(range)")
        }
        return value
    }

    func int(_ field: TextMessage.Field) throws(RuntimeError) -> Int {
        try integer(field, as: Int.self)
    }

    func bool(_ field: TextMessage.Field) throws(RuntimeError) -> Bool {
        let s = try scalar(field, "true or false")
        switch s.text {
        case "true", "True", "t", "1": return true
        case "false", "False", "f", "0": return false
        default: throw error(field, "field '\(field.name)': '\(s.text)' is not a bool (true, false)")
        }
    }

    /// An enum value by identifier (or its number, as protobuf's text format also allows).
    func enumeration<T>(_ field: TextMessage.Field, _ values: [(String, T)]) throws(RuntimeError) -> T {
        let s = try scalar(field, "an enum value")
        if s.kind == .identifier, let match = values.first(where: { $0.0 == s.text }) {
            return match.1
        }
        if s.kind == .number, let index = Int(s.text), values.indices.contains(index) {
            return values[index].1
        }
        let names = values.map(\.0).joined(separator: ", ")
        throw error(field, "field '\(field.name)': '\(s.text)' is not one of \(names)")
    }

    static func parseInteger<T: FixedWidthInteger>(_ text: String, as type: T.Type) -> T? {
        var body = Substring(text)
        var negative = false
        if body.hasPrefix("-") {
            negative = true
            body = body.dropFirst()
        } else if body.hasPrefix("+") {
            body = body.dropFirst()
        }
        var radix = 10
        if body.lowercased().hasPrefix("0x") {
            radix = 16
            body = body.dropFirst(2)
        }
        guard !body.isEmpty, let magnitude = UInt64(body, radix: radix) else { return nil }
        if negative {
            guard T.isSigned, magnitude <= UInt64(T.max) + 1 else { return magnitude == 0 ? 0 : nil }
            return 0 &- T(truncatingIfNeeded: magnitude)
        }
        return T(exactly: magnitude)
    }
}

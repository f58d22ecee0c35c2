/// A parsed protobuf text-format message: its fields in order, each with the line it came from.
///
/// Schema-free: `TextFormatParser` builds this tree and the schema-aware readers
/// (`ModelConfiguration+Parsing.swift`) check names and types, so every error can name a line.
struct TextMessage {
    /// One `name: value` or `name { ... }` occurrence. A list `name: [a, b]` is expanded into
    /// one field per element, as protobuf treats it.
    struct Field {
        var name: String
        var line: Int
        var value: Value
    }

    /// A field's value.
    enum Value {
        /// A scalar token: identifier (enum value, bool), number or string.
        case scalar(Scalar)
        /// A nested message.
        case message(TextMessage)
    }

    /// A scalar token with its source text.
    struct Scalar {
        enum Kind { case identifier, number, string }
        var kind: Kind
        var text: String
        var line: Int
    }

    var fields: [Field] = []
    var line: Int = 1
}

/// Parses protobuf text format (config.pbtxt) into a `TextMessage`, with line numbers.
///
/// Accepts `#` comments, `key: value`, `key { ... }` and `key: { ... }` (also `< ... >`),
/// lists `key: [a, b]` (scalars or messages), repeated fields written several times, enum
/// identifiers, single- or double-quoted strings with C escapes (adjacent strings concatenate),
/// integers (decimal, hex, negative), floats, and optional `,` or `;` between fields.
/// Errors are `.invalidConfiguration` and read `file:line: what was wrong`.
struct TextFormatParser {
    private enum Token: Equatable {
        case identifier(String)
        case number(String)
        case string(String)
        case symbol(Character)
        case end
    }

    private let file: String
    private var tokens: [(token: Token, line: Int)] = []
    private var position = 0
    /// Messages open now; deeper nesting than `maximumDepth` is refused (each level recurses).
    private var depth = 0
    static let maximumDepth = 64

    /// Tokenizes `text`; throws on an unterminated string or a character that cannot start a token.
    init(text: String, file: String) throws(RuntimeError) {
        self.file = file
        self.tokens = try Self.tokenize(Array(text.unicodeScalars), file: file)
    }

    /// Parses the whole input as the fields of one top-level message.
    mutating func parse() throws(RuntimeError) -> TextMessage {
        var message = TextMessage(fields: [], line: 1)
        try parseFields(into: &message, closing: nil)
        return message
    }

    // MARK: Parser

    private var current: (token: Token, line: Int) { tokens[position] }

    private mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    private func error(_ line: Int, _ text: String) -> RuntimeError {
        RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): \(text)")
    }

    private static func describe(_ token: Token) -> String {
        switch token {
        case .identifier(let s): "'\(s)'"
        case .number(let s): "'\(s)'"
        case .string(let s): "string \"\(s)\""
        case .symbol(let c): "'\(c)'"
        case .end: "end of file"
        }
    }

    private mutating func parseFields(into message: inout TextMessage, closing: Character?)
        throws(RuntimeError)
    {
        while true {
            let (token, line) = current
            switch token {
            case .end:
                if let closing {
                    throw error(line, "expected '\(closing)' to close the message opened on line \(message.line), found end of file")
                }
                return
            case .symbol(let c) where c == closing:
                advance()
                return
            case .identifier(let name):
                advance()
                try parseFieldValue(name: name, line: line, into: &message)
                if case .symbol(let c) = current.token, c == "," || c == ";" { advance() }
            default:
                throw error(line, "expected a field name, found \(Self.describe(token))")
            }
        }
    }

    private mutating func parseFieldValue(name: String, line: Int, into message: inout TextMessage)
        throws(RuntimeError)
    {
        var hadColon = false
        if current.token == .symbol(":") {
            hadColon = true
            advance()
        }
        switch current.token {
        case .symbol("{"), .symbol("<"):
            let nested = try parseMessage()
            message.fields.append(.init(name: name, line: line, value: .message(nested)))
        case .symbol("["):
            let openLine = current.line
            advance()
            if current.token == .symbol("]") {
                advance()
                return
            }
            while true {
                let elementLine = current.line
                let value: TextMessage.Value
                switch current.token {
                case .symbol("{"), .symbol("<"): value = .message(try parseMessage())
                default:
                    guard hadColon else {
                        throw error(current.line, "field '\(name)': a list of scalars needs ':' before '['")
                    }
                    value = .scalar(try parseScalar(field: name))
                }
                message.fields.append(.init(name: name, line: elementLine, value: value))
                switch current.token {
                case .symbol(","): advance()
                case .symbol("]"):
                    advance()
                    return
                default:
                    throw error(current.line, "field '\(name)': expected ',' or ']' in the list opened on line \(openLine), found \(Self.describe(current.token))")
                }
            }
        default:
            guard hadColon else {
                throw error(line, "field '\(name)': expected ':' or '{' after the field name, found \(Self.describe(current.token))")
            }
            let scalar = try parseScalar(field: name)
            message.fields.append(.init(name: name, line: line, value: .scalar(scalar)))
        }
    }

    private mutating func parseMessage() throws(RuntimeError) -> TextMessage {
        let line = current.line
        guard depth < Self.maximumDepth else {
            throw error(line, "messages are nested more than \(Self.maximumDepth) deep")
        }
        depth += 1
        defer { depth -= 1 }
        let closing: Character = current.token == .symbol("<") ? ">" : "}"
        advance()
        var message = TextMessage(fields: [], line: line)
        try parseFields(into: &message, closing: closing)
        return message
    }

    private mutating func parseScalar(field: String) throws(RuntimeError) -> TextMessage.Scalar {
        let (token, line) = current
        switch token {
        case .identifier(let s):
            advance()
            return .init(kind: .identifier, text: s, line: line)
        case .number(let s):
            advance()
            return .init(kind: .number, text: s, line: line)
        case .string(var s):
            advance()
            while case .string(let more) = current.token {  // "a" "b" concatenates
                s += more
                advance()
            }
            return .init(kind: .string, text: s, line: line)
        case .symbol("-"):
            advance()
            if case .identifier(let s) = current.token, ["inf", "infinity", "nan"].contains(s.lowercased()) {
                advance()
                return .init(kind: .number, text: "-" + s, line: line)
            }
            throw error(line, "field '\(field)': expected a number after '-'")
        default:
            throw error(line, "field '\(field)': expected a value, found \(Self.describe(token))")
        }
    }

    // MARK: Tokenizer

    private static func tokenize(_ s: [Unicode.Scalar], file: String) throws(RuntimeError) -> [(token: Token, line: Int)] {
        var result: [(token: Token, line: Int)] = []
        var i = 0
        var line = 1
        func fail(_ text: String) -> RuntimeError {
            RuntimeError(code: .invalidConfiguration, message: "\(file):\(line): \(text)")
        }
        func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_"
        }
        func isIdentifierPart(_ c: Unicode.Scalar) -> Bool {
            isIdentifierStart(c) || (c >= "0" && c <= "9") || c == "." || c == "/"
        }
        func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
        while i < s.count {
            let c = s[i]
            switch c {
            case "\n":
                line += 1
                i += 1
            case " ", "\t", "\r", "\u{0B}", "\u{0C}":
                i += 1
            case "#":
                while i < s.count && s[i] != "\n" { i += 1 }
            case "{", "}", "[", "]", ":", ",", ";", "<", ">":
                result.append((.symbol(Character(c)), line))
                i += 1
            case "\"", "'":
                let quote = c
                let startLine = line
                i += 1
                var bytes: [UInt8] = []
                var closed = false
                while i < s.count {
                    let d = s[i]
                    if d == quote {
                        closed = true
                        i += 1
                        break
                    }
                    if d == "\n" { break }
                    if d == "\\" {
                        i += 1
                        guard i < s.count else { break }
                        let e = s[i]
                        i += 1
                        switch e {
                        case "n": bytes.append(10)
                        case "t": bytes.append(9)
                        case "r": bytes.append(13)
                        case "a": bytes.append(7)
                        case "b": bytes.append(8)
                        case "f": bytes.append(12)
                        case "v": bytes.append(11)
                        case "\\", "'", "\"", "?": bytes.append(UInt8(e.value))
                        case "x", "X":
                            var value: UInt32 = 0
                            var digits = 0
                            while i < s.count, digits < 2, let h = UInt32(String(s[i]), radix: 16) {
                                value = value * 16 + h
                                digits += 1
                                i += 1
                            }
                            guard digits > 0 else { throw fail("invalid \\x escape in string") }
                            bytes.append(UInt8(value))
                        case "0"..."7":
                            var value = e.value - 48
                            var digits = 1
                            while i < s.count, digits < 3, s[i] >= "0", s[i] <= "7" {
                                value = value * 8 + (s[i].value - 48)
                                digits += 1
                                i += 1
                            }
                            guard value < 256 else { throw fail("invalid octal escape in string") }
                            bytes.append(UInt8(value))
                        default:
                            throw fail("invalid escape '\\\(e)' in string")
                        }
                        continue
                    }
                    bytes.append(contentsOf: Array(String(d).utf8))
                    i += 1
                }
                guard closed else {
                    line = startLine
                    throw fail("unterminated string")
                }
                result.append((.string(String(decoding: bytes, as: UTF8.self)), startLine))
            case "-", "+", ".", "0"..."9":
                // Numbers: optional sign, digits, '.', exponent, hex, and float suffix 'f'.
                var j = i
                if s[j] == "-" || s[j] == "+" {
                    j += 1
                    if j < s.count, isIdentifierStart(s[j]) {  // -inf, -nan
                        result.append((.symbol("-"), line))
                        i = j
                        continue
                    }
                }
                guard j < s.count, isDigit(s[j]) || (s[j] == "." && j + 1 < s.count && isDigit(s[j + 1])) else {
                    throw fail("unexpected character '\(c)'")
                }
                while j < s.count, isIdentifierPart(s[j]) || ((s[j] == "-" || s[j] == "+") && (s[j - 1] == "e" || s[j - 1] == "E") && !(String(s[i..<j].map(Character.init)).lowercased().hasPrefix("0x"))) {
                    j += 1
                }
                result.append((.number(String(String.UnicodeScalarView(s[i..<j]))), line))
                i = j
            default:
                guard isIdentifierStart(c) else {
                    throw fail("unexpected character '\(c)'")
                }
                var j = i
                while j < s.count, isIdentifierPart(s[j]) { j += 1 }
                result.append((.identifier(String(String.UnicodeScalarView(s[i..<j]))), line))
                i = j
            }
        }
        result.append((.end, line))
        return result
    }
}

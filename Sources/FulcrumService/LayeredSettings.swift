import Foundation

/// Settings for a service executable from three layers, merged into one argument list before
/// parsing: command-line flags first, then `FULCRUM_<NAME>` environment variables, then a
/// config file of `name = value` lines (`--config FILE` or `FULCRUM_CONFIG`).
///
/// The merge only adds `--name value` for options the command line does not already set, so the
/// argument parser validates every layer the same way and `--help` stays the one reference. A
/// config file key the command does not know is an error (with file and line); an environment
/// variable the command does not know is ignored, because the environment is shared with other
/// tools (`FULCRUM_BIN_DIR`, for one).
public struct LayeredSettings: Sendable {
    /// One option the command accepts, by its long name without dashes (`model-repository`).
    public struct Option: Sendable, Hashable {
        public var name: String
        /// A flag takes no value: `true`/`false` in the environment or file.
        public var isFlag: Bool

        public init(name: String, isFlag: Bool) {
            self.name = name
            self.isFlag = isFlag
        }

        /// `model-repository` → `FULCRUM_MODEL_REPOSITORY`.
        public var environmentName: String {
            "FULCRUM_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        }
    }

    public static let configOptionName = "config"

    public var options: [Option]

    public init(options: [Option]) {
        self.options = options
    }

    /// The argument list to parse: `arguments` followed by the values the other layers supply.
    /// - Parameter readFile: reads the config file's text (injected for tests).
    public func merge(
        arguments: [String],
        environment: [String: String],
        readFile: (String) throws -> String
    ) throws(SettingsError) -> [String] {
        let given = Self.namesGiven(in: arguments)
        var merged = arguments
        var configPath: String?
        if let index = arguments.lastIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) {
            if arguments[index].hasPrefix("--config=") {
                configPath = String(arguments[index].dropFirst("--config=".count))
            } else if index + 1 < arguments.count {
                configPath = arguments[index + 1]
            }
        } else if let fromEnvironment = environment["FULCRUM_CONFIG"], !fromEnvironment.isEmpty {
            configPath = fromEnvironment
            merged += ["--config", fromEnvironment]
        }
        var fileValues: [String: String] = [:]
        if let configPath {
            let text: String
            do {
                text = try readFile(configPath)
            } catch {
                throw SettingsError("cannot read config file '\(configPath)': \(error)")
            }
            fileValues = try parseFile(text, path: configPath)
        }
        for option in options where option.name != Self.configOptionName && !given.contains(option.name) {
            let source: (value: String, origin: String)
            if let value = environment[option.environmentName] {
                source = (value, option.environmentName)
            } else if let value = fileValues[option.name] {
                source = (value, "\(configPath ?? "config"): \(option.name)")
            } else {
                continue
            }
            if option.isFlag {
                switch source.value.lowercased() {
                case "1", "true", "yes", "on": merged.append("--\(option.name)")
                case "", "0", "false", "no", "off": break
                default: throw SettingsError("\(source.origin): '\(source.value)' is not true or false")
                }
            } else {
                merged += ["--\(option.name)", source.value]
            }
        }
        return merged
    }

    /// `name = value` lines; `#` starts a comment; values may be double-quoted (a TOML subset).
    func parseFile(_ text: String, path: String) throws(SettingsError) -> [String: String] {
        let known = Dictionary(options.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var values: [String: String] = [:]
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = Self.strippingComment(rawLine).trimmingWhitespace()
            if line.isEmpty { continue }
            let location = "\(path):\(offset + 1)"
            guard let equals = line.firstIndex(of: "=") else {
                throw SettingsError("\(location): expected 'name = value', found '\(line)'")
            }
            let key = line[..<equals].trimmingWhitespace().replacingOccurrences(of: "_", with: "-")
            var value = line[line.index(after: equals)...].trimmingWhitespace()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            guard let option = known[key], key != Self.configOptionName else {
                throw SettingsError("\(location): unknown setting '\(key)' (run with --help for the list)")
            }
            guard values[option.name] == nil else {
                throw SettingsError("\(location): '\(key)' is set twice")
            }
            values[option.name] = value
        }
        return values
    }

    static func namesGiven(in arguments: [String]) -> Set<String> {
        var names = Set<String>()
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let body = argument.dropFirst(2)
            names.insert(String(body.split(separator: "=", maxSplits: 1).first ?? body))
        }
        return names
    }

    private static func strippingComment(_ line: Substring) -> Substring {
        var inQuotes = false
        for index in line.indices {
            switch line[index] {
            case "\"": inQuotes.toggle()
            case "#" where !inQuotes: return line[..<index]
            default: continue
            }
        }
        return line
    }
}

public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}

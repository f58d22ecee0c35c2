import ArgumentParser
import Foundation
import FulcrumService

/// A service command whose options may also come from `FULCRUM_<NAME>` environment variables and
/// a `--config FILE` of `name = value` lines (precedence: flags, environment, file). Conforming
/// commands declare `@Option var config: String?` and call `runWithLayeredSettings()` from
/// `static func main()`.
public protocol LayeredCommand: AsyncParsableCommand {}

extension LayeredCommand {
    /// Parses the merged arguments and runs the command, exiting like ArgumentParser's `main()`.
    public static func runWithLayeredSettings() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let merged: [String]
        do {
            merged = try LayeredSettings(options: declaredOptions()).merge(
                arguments: arguments,
                environment: ProcessInfo.processInfo.environment,
                readFile: { try String(contentsOfFile: $0, encoding: .utf8) }
            )
        } catch {
            exit(withError: ValidationError(error.description))
        }
        await main(merged)
    }

    /// The command's long options and flags, read from ArgumentParser's own description of it.
    static func declaredOptions() -> [LayeredSettings.Option] {
        guard let dump = try? JSONDecoder().decode(HelpDump.self, from: Data(_dumpHelp().utf8)) else { return [] }
        return (dump.command.arguments ?? []).compactMap { argument in
            guard argument.kind == "option" || argument.kind == "flag",
                let long = argument.names?.first(where: { $0.kind == "long" })?.name,
                long != "help", long != "version"
            else { return nil }
            return LayeredSettings.Option(name: long, isFlag: argument.kind == "flag")
        }
    }

    /// Text for a command's `discussion`: how the layers work, in every service's `--help`.
    public static var layeredSettingsHelp: String {
        """
        Every option can also be set in the environment as FULCRUM_<OPTION> (upper case, dashes \
        as underscores: --model-repository is FULCRUM_MODEL_REPOSITORY; flags take true/false) or \
        in a config file given with --config FILE (or FULCRUM_CONFIG) as `option-name = value` \
        lines. A flag on the command line wins over the environment, which wins over the file; \
        the defaults shown apply when no layer sets an option.
        """
    }
}

/// The part of ArgumentParser's JSON description of a command that names its options.
private struct HelpDump: Decodable {
    struct Command: Decodable { var arguments: [Argument]? }
    struct Argument: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        var kind: String
        var names: [Name]?
    }
    var command: Command
}

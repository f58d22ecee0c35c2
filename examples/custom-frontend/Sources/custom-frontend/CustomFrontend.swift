import ArgumentParser
import FulcrumCommandLine
import FulcrumFrontend
import FulcrumFrontendCommand

/// Fulcrum's frontend — every option of `fulcrum-frontend`, its `FULCRUM_*` variables and
/// `--config` files — with the threshold processor registered beside the built-in ones.
@main
struct CustomFrontend: LayeredCommand {
    static let configuration = CommandConfiguration(
        commandName: "custom-frontend",
        abstract: "Fulcrum's frontend with a custom processor (fulcrum_threshold).",
        discussion: layeredSettingsHelp
    )

    @OptionGroup
    var options: FrontendOptions

    static func main() async { await runWithLayeredSettings() }

    func run() async throws {
        try await options.run(processors: ProcessorKind.builtIn + [ThresholdProcessor.kind])
    }
}

import ArgumentParser
import FulcrumCommandLine
import FulcrumFrontendCommand

/// `fulcrum-frontend`: the public edge (its options: FulcrumFrontendCommand/FrontendOptions.swift).
@main
struct FrontendCommand: LayeredCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulcrum-frontend",
        abstract: FrontendOptions.abstract,
        discussion: layeredSettingsHelp
    )

    @OptionGroup
    var options: FrontendOptions

    static func main() async { await runWithLayeredSettings() }

    func run() async throws { try await options.run() }
}

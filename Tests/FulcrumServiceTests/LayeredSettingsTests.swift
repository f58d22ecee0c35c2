import FulcrumService
import Testing

@Suite struct LayeredSettingsTests {
    let settings = LayeredSettings(options: [
        .init(name: "model-repository", isFlag: false),
        .init(name: "port", isFlag: false),
        .init(name: "balancer", isFlag: false),
        .init(name: "exit-with-parent", isFlag: true),
        .init(name: "config", isFlag: false),
    ])

    func noFile(_ path: String) throws -> String { throw SettingsError("no file \(path)") }

    @Test func environmentNamesAreUpperCaseWithUnderscores() {
        #expect(LayeredSettings.Option(name: "model-repository", isFlag: false).environmentName == "FULCRUM_MODEL_REPOSITORY")
    }

    @Test func flagsWinOverEnvironmentWhichWinsOverFile() throws {
        let file = """
            # worker settings
            port = 9000
            balancer = "10.0.0.1:7000"   # the control plane
            model_repository = /srv/models
            """
        let merged = try settings.merge(
            arguments: ["--port", "8001", "--config", "/etc/fulcrum/worker.conf"],
            environment: ["FULCRUM_PORT": "1", "FULCRUM_BALANCER": "10.0.0.2:7000", "FULCRUM_BIN_DIR": "/ignored"],
            readFile: { path in
                #expect(path == "/etc/fulcrum/worker.conf")
                return file
            }
        )
        #expect(merged == [
            "--port", "8001", "--config", "/etc/fulcrum/worker.conf",
            "--model-repository", "/srv/models", "--balancer", "10.0.0.2:7000",
        ])
    }

    @Test func equalsFormOnTheCommandLineCountsAsGiven() throws {
        let merged = try settings.merge(arguments: ["--port=5"], environment: ["FULCRUM_PORT": "6"], readFile: noFile)
        #expect(merged == ["--port=5"])
    }

    @Test func configFileFromTheEnvironment() throws {
        let merged = try settings.merge(
            arguments: [],
            environment: ["FULCRUM_CONFIG": "/c"],
            readFile: { _ in "exit-with-parent = true\n" }
        )
        #expect(merged == ["--config", "/c", "--exit-with-parent"])
    }

    @Test func flagsTakeBooleans() throws {
        #expect(try settings.merge(arguments: [], environment: ["FULCRUM_EXIT_WITH_PARENT": "false"], readFile: noFile) == [])
        #expect(try settings.merge(arguments: [], environment: ["FULCRUM_EXIT_WITH_PARENT": "1"], readFile: noFile) == ["--exit-with-parent"])
        #expect(throws: SettingsError.self) {
            try settings.merge(arguments: [], environment: ["FULCRUM_EXIT_WITH_PARENT": "maybe"], readFile: noFile)
        }
    }

    @Test func fileErrorsNameTheLine() {
        for (text, expected) in [
            ("port = 1\nthreads = 4\n", "/c:2: unknown setting 'threads'"),
            ("port 1\n", "/c:1: expected 'name = value'"),
            ("port = 1\nport = 2\n", "/c:2: 'port' is set twice"),
        ] {
            do {
                _ = try settings.merge(arguments: ["--config", "/c"], environment: [:], readFile: { _ in text })
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
    }

    @Test func unreadableFileIsAnError() {
        #expect(throws: SettingsError.self) {
            try settings.merge(arguments: ["--config=/missing"], environment: [:], readFile: noFile)
        }
    }
}

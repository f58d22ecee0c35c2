import Foundation
import FulcrumService
import GRPCCore
import Testing

@testable import FulcrumFrontend

@Suite struct APIKeysTests {
    private func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-keys-\(UUID().uuidString).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private let table = """
        {"keys": [
          {"key": "acme-0123456789abcdef", "tenant": "acme", "models": ["ranking_mlp"], "rate": 2, "burst": 2},
          {"key": "ops-0123456789abcdefgh", "tenant": "ops"}
        ]}
        """

    private func code(_ body: () throws -> Void) -> RPCError.Code? {
        do {
            try body()
            return nil
        } catch {
            return (error as? RPCError)?.code
        }
    }

    @Test func keysModelsAndRates() throws {
        let path = try file(table)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let keys = try APIKeys(file: path)
        #expect(keys.tenants == ["acme", "ops"])
        #expect(code { _ = try keys.authorize(nil, model: "ranking_mlp") } == .unauthenticated)
        #expect(code { _ = try keys.authorize("wrong-0123456789abcdef", model: "ranking_mlp") } == .unauthenticated)
        #expect(code { _ = try keys.authorize("acme-0123456789abcdef", model: "simple") } == .permissionDenied)
        #expect(code { _ = try keys.authorize("acme-0123456789abcdef", model: "") } == .permissionDenied, "every model needs '*'")
        #expect(try keys.authorize("acme-0123456789abcdef", model: "ranking_mlp") == "acme")
        #expect(try keys.authorize("acme-0123456789abcdef", model: nil) == "acme")
        // The burst of 2 is spent: the third call within a moment is over the rate.
        do {
            try keys.authorize("acme-0123456789abcdef", model: "ranking_mlp")
            Issue.record("a call past the burst was admitted")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) == APIKeys.quotaRejection)
            #expect(error.message.contains("tenant 'acme' is over its rate of 2 requests/s"))
        }
        // No rate: unlimited; no models: every model.
        for _ in 0..<100 { try keys.authorize("ops-0123456789abcdefgh", model: "anything") }
        #expect(try keys.authorize("ops-0123456789abcdefgh", model: "") == "ops")
    }

    @Test func credentialsFromEitherHeader() {
        #expect(APIKeys.credential(authorization: "Bearer abc", apiKey: nil) == "abc")
        #expect(APIKeys.credential(authorization: "bearer  abc ", apiKey: "x") == "abc")
        #expect(APIKeys.credential(authorization: "Basic abc", apiKey: "k") == "k")
        #expect(APIKeys.credential(authorization: nil, apiKey: nil) == nil)
    }

    @Test func reloadSwapsTheTableAndABadFileKeepsTheOldOne() throws {
        let path = try file(table)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let keys = try APIKeys(file: path)
        try #"{"keys": [{"key": "new-0123456789abcdefg", "tenant": "new"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        try keys.reload()
        #expect(keys.tenants == ["new"])
        #expect(code { _ = try keys.authorize("ops-0123456789abcdefgh", model: nil) } == .unauthenticated)
        try "not json".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: APIKeysError.self) { try keys.reload() }
        #expect(keys.tenants == ["new"])
    }

    @Test func malformedFilesSayWhatIsWrong() throws {
        let cases: [(String, String)] = [
            (#"{"keys": [{"key": "short", "tenant": "t"}]}"#, "at least 16"),
            (#"{"keys": [{"key": "0123456789abcdefgh"}]}"#, "'tenant'"),
            (#"{"keys": [{"key": "0123456789abcdefgh", "tenant": "t", "rate": -1}]}"#, "'rate'"),
            (#"{"keys": [{"key": "0123456789abcdefgh", "tenant": "t", "models": []}]}"#, "'models'"),
            (#"{"keys": [{"key": "0123456789abcdefgh", "tenant": "t", "extra": 1}]}"#, "unknown field 'extra'"),
            (#"{"keys": [{"key": "0123456789abcdefgh", "tenant": "t"}, {"key": "0123456789abcdefgh", "tenant": "u"}]}"#, "twice"),
            (#"[]"#, "is not JSON of the form"),
        ]
        for (json, fragment) in cases {
            let path = try file(json)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let problem = FrontendConfiguration.apiKeysProblem(path)
            #expect(problem?.contains(fragment) == true, "\(json): \(problem ?? "accepted")")
        }
    }
}

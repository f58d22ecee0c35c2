import Foundation
import GRPCCore
import Testing

@testable import FulcrumService

@Suite struct ModelControlTests {
    private func tokenFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-token-\(UUID().uuidString)").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func offByDefaultRefusesEveryCallWithFailedPrecondition() {
        for authorization in [nil, "Bearer anything-at-all-here"] {
            #expect(throws: RPCError.self) { try ModelControl.disabled.authorize(authorization, model: "m", load: true) }
            do {
                try ModelControl.disabled.authorize(authorization, model: "m", load: false)
            } catch {
                #expect(error.code == .failedPrecondition)
                #expect(error.message.contains("cannot unload model 'm'"))
                #expect(error.message.contains("--model-control explicit"))
            }
        }
        #expect(ModelControl.disabled.forwardingMetadata.isEmpty)
    }

    @Test func explicitAcceptsOnlyTheToken() throws {
        let path = try tokenFile("  0123456789abcdef-token \nsecond line ignored\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let control = try ModelControl(mode: .explicit, tokenFile: path)
        try control.authorize("Bearer 0123456789abcdef-token", model: "m", load: true)
        try control.authorize("bearer   0123456789abcdef-token  ", model: "m", load: false)
        for wrong in [nil, "", "Bearer", "Bearer ", "Basic 0123456789abcdef-token", "Bearer 0123456789abcdef-toke",
            "Bearer 0123456789abcdef-token-", "Bearer 0123456789abcdef-tokeN", "0123456789abcdef-token"]
        {
            do {
                try control.authorize(wrong, model: "m", load: true)
                Issue.record("'\(wrong ?? "nil")' was accepted")
            } catch {
                #expect(error.code == .permissionDenied)
                #expect(!error.message.contains("0123456789abcdef"), "the message must not echo the token")
            }
        }
        var metadata = Metadata()
        metadata.addString("Bearer 0123456789abcdef-token", forKey: "authorization")
        try control.authorize(metadata, model: "m", load: true)
        try control.authorize(control.forwardingMetadata, model: "m", load: true)
    }

    @Test func explicitNeedsAReadableLongEnoughToken() throws {
        #expect(throws: ModelControlError.self) { try ModelControl(mode: .explicit, tokenFile: nil) }
        #expect(throws: ModelControlError.self) { try ModelControl(mode: .explicit, tokenFile: "/nonexistent/fulcrum-token") }
        let short = try tokenFile("short\n")
        defer { try? FileManager.default.removeItem(atPath: short) }
        #expect(throws: ModelControlError.self) { try ModelControl(mode: .explicit, tokenFile: short) }
        #expect(try ModelControl(mode: .none, tokenFile: nil).mode == .none)
    }

    @Test func comparisonIsExact() {
        #expect(ModelControl.equal(Array("abc".utf8), Array("abc".utf8)))
        #expect(!ModelControl.equal(Array("abc".utf8), Array("abd".utf8)))
        #expect(!ModelControl.equal(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!ModelControl.equal([], Array("a".utf8)))
        #expect(ModelControl.equal([], []))
    }
}

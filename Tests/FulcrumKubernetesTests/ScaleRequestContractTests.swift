import Foundation
import FulcrumKubernetes
import NIOHTTP1
import Testing

/// The exact HTTP requests the Kubernetes scaler makes, checked against a local server standing
/// in for the API server (there is no API server on the development machines).
@Suite("Scale subresource request contract")
struct ScaleRequestContractTests {
    @Test("replicas() sends GET .../scale with the bearer token and reads spec and status")
    func getRequest() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.ok, APIServerAnswers.scale) }) { server in
            let replicas = try await withClient(testConfiguration(server.baseURL)) { try await $0.replicas() }
            #expect(replicas.spec == 5)
            #expect(replicas.status == 3)

            let requests = server.requests
            try #require(requests.count == 1)
            let request = requests[0]
            #expect(request.method == .GET)
            #expect(request.uri == APIServerAnswers.path)
            #expect(request.headers["Authorization"] == ["Bearer test-token"])
            #expect(request.headers["Accept"] == ["application/json"])
            #expect(request.headers["Content-Type"].isEmpty)
            #expect(request.body.isEmpty)
        }
    }

    @Test("setReplicas(n) sends PATCH .../scale with a merge patch of exactly spec.replicas")
    func patchRequest() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.ok, APIServerAnswers.scale) }) { server in
            try await withClient(testConfiguration(server.baseURL)) { try await $0.setReplicas(7) }

            let requests = server.requests
            try #require(requests.count == 1)
            let request = requests[0]
            let expectedBody = Array(#"{"spec":{"replicas":7}}"#.utf8)
            #expect(request.method == .PATCH)
            #expect(request.uri == APIServerAnswers.path)
            #expect(request.headers["Authorization"] == ["Bearer test-token"])
            #expect(request.headers["Content-Type"] == ["application/merge-patch+json"])
            #expect(request.headers["Accept"] == ["application/json"])
            #expect(request.headers["Content-Length"] == ["\(expectedBody.count)"])
            #expect(request.body == expectedBody)
        }
    }

    @Test("setReplicas(0) scales to zero, and a Scale without spec.replicas reads as 0")
    func zeroReplicas() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.ok, APIServerAnswers.scaledToZero) }) { server in
            let replicas = try await withClient(testConfiguration(server.baseURL)) { client in
                try await client.setReplicas(0)
                return try await client.replicas()
            }
            #expect(replicas.spec == 0)
            #expect(replicas.status == 0)
            #expect(server.requests.map(\.method) == [.PATCH, .GET])
            #expect(server.requests.first?.body == Array(#"{"spec":{"replicas":0}}"#.utf8))
        }
    }

    @Test("A negative replica count is refused before anything is sent")
    func negativeReplicas() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.ok, APIServerAnswers.scale) }) { server in
            let error = try await #require(throws: KubernetesError.self) {
                try await withClient(testConfiguration(server.baseURL)) { try await $0.setReplicas(-1) }
            }
            #expect(error.code == .invalidArgument)
            #expect(server.requests.isEmpty)
        }
    }

    @Test("The token file is read again for every request (projected tokens rotate)")
    func tokenReread() async throws {
        try await withTemporaryDirectory { directory in
            let tokenFile = try write("first-token\n", to: "token", in: directory)
            try await RecordingHTTPServer.with(respond: { _, _ in .json(.ok, APIServerAnswers.scale) }) { server in
                try await withClient(testConfiguration(server.baseURL, token: .file(tokenFile))) { client in
                    _ = try await client.replicas()
                    try write("second-token\n", to: "token", in: directory)
                    try await client.setReplicas(4)

                    try FileManager.default.removeItem(atPath: tokenFile)
                    let error = try await #require(throws: KubernetesError.self) { try await client.replicas() }
                    #expect(error.code == .unreadableCredentials)
                    #expect(error.message.contains(tokenFile))
                }
                #expect(server.requests.map { $0.headers["Authorization"] } == [["Bearer first-token"], ["Bearer second-token"]])
            }
        }
    }
}

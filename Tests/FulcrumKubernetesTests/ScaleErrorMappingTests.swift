import FulcrumKubernetes
import NIOHTTP1
import Testing

/// How the API server's refusals reach the balancer: the HTTP status and the Kubernetes Status
/// message, with a single retry for 409 Conflict.
@Suite("Scale subresource error mapping")
struct ScaleErrorMappingTests {
    @Test("403 carries the status, the reason and the Status message, and is not retried")
    func forbidden() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.forbidden, APIServerAnswers.forbidden) }) { server in
            let error = try await #require(throws: KubernetesError.self) {
                try await withClient(testConfiguration(server.baseURL)) { try await $0.setReplicas(3) }
            }
            #expect(error.code == .apiError)
            #expect(error.httpStatus == 403)
            #expect(error.reason == "Forbidden")
            #expect(error.message == APIServerAnswers.forbiddenMessage)
            #expect(error.request == "PATCH \(APIServerAnswers.path)")
            #expect(error.description.contains("HTTP 403 Forbidden"))
            #expect(error.description.hasPrefix("PATCH \(APIServerAnswers.path): HTTP 403 Forbidden: deployments.apps"))
            #expect(error.description.hasSuffix("(grant the pod's service account get and patch on deployments/scale in API group apps)"))
            #expect(server.requests.count == 1)
        }
    }

    @Test("404 names the missing Deployment")
    func notFound() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.notFound, APIServerAnswers.notFound) }) { server in
            let error = try await #require(throws: KubernetesError.self) {
                try await withClient(testConfiguration(server.baseURL)) { try await $0.replicas() }
            }
            #expect(error.code == .apiError)
            #expect(error.httpStatus == 404)
            #expect(error.reason == "NotFound")
            #expect(error.message == #"deployments.apps "fulcrum-worker" not found"#)
            #expect(error.request == "GET \(APIServerAnswers.path)")
            #expect(server.requests.count == 1)
        }
    }

    @Test("A 409 Conflict is retried once with the same request, and then succeeds")
    func conflictRetried() async throws {
        try await RecordingHTTPServer.with(respond: { _, index in
            index == 0 ? .json(.conflict, APIServerAnswers.conflict) : .json(.ok, APIServerAnswers.scale)
        }) { server in
            try await withClient(testConfiguration(server.baseURL)) { try await $0.setReplicas(6) }
            let requests = server.requests
            try #require(requests.count == 2)
            for request in requests {
                #expect(request.method == .PATCH)
                #expect(request.uri == APIServerAnswers.path)
                #expect(request.body == Array(#"{"spec":{"replicas":6}}"#.utf8))
            }
        }
    }

    @Test("A second 409 Conflict is thrown after exactly two requests")
    func conflictTwice() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.conflict, APIServerAnswers.conflict) }) { server in
            let error = try await #require(throws: KubernetesError.self) {
                try await withClient(testConfiguration(server.baseURL)) { try await $0.setReplicas(6) }
            }
            #expect(error.httpStatus == 409)
            #expect(error.reason == "Conflict")
            #expect(error.message.hasPrefix("Operation cannot be fulfilled"))
            #expect(server.requests.count == 2)
        }
    }

    @Test("An answer that is not a Status object keeps its text, or the reason phrase when empty")
    func nonStatusBodies() async throws {
        try await RecordingHTTPServer.with(respond: { _, index in
            index == 0 ? CannedResponse(status: .badGateway, body: "upstream connect error\n") : CannedResponse(status: .internalServerError, body: "")
        }) { server in
            try await withClient(testConfiguration(server.baseURL)) { client in
                let first = try await #require(throws: KubernetesError.self) { try await client.replicas() }
                #expect(first.httpStatus == 502)
                #expect(first.message == "upstream connect error")
                #expect(first.reason == nil)

                let second = try await #require(throws: KubernetesError.self) { try await client.replicas() }
                #expect(second.httpStatus == 500)
                #expect(second.message == "Internal Server Error")
            }
        }
    }

    @Test("A 2xx answer that is not a Scale is an invalid response")
    func notAScale() async throws {
        try await RecordingHTTPServer.with(respond: { _, _ in .json(.ok, #"{"kind":"Deployment","spec":{"replicas":"two"}}"#) }) { server in
            let error = try await #require(throws: KubernetesError.self) {
                try await withClient(testConfiguration(server.baseURL)) { try await $0.replicas() }
            }
            #expect(error.code == .invalidResponse)
        }
    }

    @Test("An unreachable API server is a transport error naming it")
    func unreachable() async throws {
        // A port that was just listening and is now closed.
        let server = try await RecordingHTTPServer.start(respond: { _, _ in .json(.ok, "{}") })
        let url = server.baseURL
        try await server.stop()

        // The HTTP client retries failed connections until the request timeout.
        var configuration = testConfiguration(url)
        configuration.requestTimeout = .seconds(1)
        let error = try await #require(throws: KubernetesError.self) {
            try await withClient(configuration) { try await $0.replicas() }
        }
        #expect(error.code == .transport)
        #expect(error.message.contains(url))
        #expect(error.underlying != nil)
    }

    @Test("Invalid configuration values are refused naming the key", arguments: [
        ("ftp://10.0.0.1", "ml", "fulcrum-worker", "apiServer"),
        ("http://127.0.0.1:1", "ML_prod", "fulcrum-worker", "namespace"),
        ("http://127.0.0.1:1", "ml", "workers/../secrets", "deployment"),
        ("http://127.0.0.1:1", "ml", "", "deployment"),
    ])
    func invalidConfiguration(apiServer: String, namespace: String, deployment: String, key: String) throws {
        let configuration = KubernetesScaleClient.Configuration(
            apiServer: apiServer,
            namespace: namespace,
            deployment: deployment,
            token: .value("t")
        )
        let error = try #require(throws: KubernetesError.self) { try KubernetesScaleClient(configuration: configuration) }
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.hasPrefix(key))
    }
}

import Foundation
import FulcrumKubernetes
import NIOSSL
import Testing

/// `Configuration.inCluster` from a service-account directory and environment made up in the test,
/// and the TLS trust it sets up, against a local HTTPS server.
@Suite("In-cluster configuration and TLS")
struct InClusterConfigurationTests {
    typealias Configuration = KubernetesScaleClient.Configuration

    @Test("Reads the service host and port, the token and CA paths, and the pod's namespace")
    func inCluster() async throws {
        try await withTemporaryDirectory { directory in
            let tokenFile = try write("token-1\n", to: "token", in: directory)
            let caFile = try write(TestCertificates.caCertificate, to: "ca.crt", in: directory)
            try write("ml\n", to: "namespace", in: directory)

            let configuration = try Configuration.inCluster(
                deployment: "fulcrum-worker",
                serviceAccountDirectory: directory.path,
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
            )
            #expect(configuration.apiServer == "https://10.96.0.1:443")
            #expect(configuration.namespace == "ml")
            #expect(configuration.deployment == "fulcrum-worker")
            #expect(configuration.token == .file(tokenFile))
            #expect(configuration.caCertificateFile == caFile)
        }
    }

    @Test("Brackets an IPv6 service host, and a given namespace wins over (and needs no) namespace file")
    func ipv6AndExplicitNamespace() async throws {
        try await withTemporaryDirectory { directory in
            try write("token-1", to: "token", in: directory)
            try write(TestCertificates.caCertificate, to: "ca.crt", in: directory)

            let configuration = try Configuration.inCluster(
                deployment: "fulcrum-worker",
                namespace: "serving",
                serviceAccountDirectory: directory.path,
                environment: ["KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "6443"]
            )
            #expect(configuration.apiServer == "https://[fd00:10:96::1]:6443")
            #expect(configuration.namespace == "serving")
        }
    }

    @Test("Outside a pod the error names every missing piece")
    func notInCluster() async throws {
        try await withTemporaryDirectory { directory in
            let error = try #require(throws: KubernetesError.self) {
                try Configuration.inCluster(
                    deployment: "fulcrum-worker",
                    serviceAccountDirectory: directory.path,
                    environment: [:]
                )
            }
            #expect(error.code == .notInCluster)
            #expect(error.message.contains("KUBERNETES_SERVICE_HOST"))
            #expect(error.message.contains("KUBERNETES_SERVICE_PORT"))
            #expect(error.message.contains(directory.appendingPathComponent("token").path))
            #expect(error.message.contains(directory.appendingPathComponent("ca.crt").path))
            #expect(error.message.contains(directory.appendingPathComponent("namespace").path))
        }
    }

    @Test("An empty token file counts as missing; a bad port is named")
    func emptyTokenAndBadPort() async throws {
        try await withTemporaryDirectory { directory in
            try write("\n", to: "token", in: directory)
            try write(TestCertificates.caCertificate, to: "ca.crt", in: directory)
            try write("ml", to: "namespace", in: directory)
            let environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "https"]

            let empty = try #require(throws: KubernetesError.self) {
                try Configuration.inCluster(deployment: "w", serviceAccountDirectory: directory.path, environment: environment)
            }
            #expect(empty.message.contains("token"))
            #expect(!empty.message.contains("KUBERNETES_SERVICE"))

            try write("token-1", to: "token", in: directory)
            let port = try #require(throws: KubernetesError.self) {
                try Configuration.inCluster(deployment: "w", serviceAccountDirectory: directory.path, environment: environment)
            }
            #expect(port.message.contains("KUBERNETES_SERVICE_PORT"))
        }
    }

    @Test("In-cluster end to end over HTTPS: trusts the mounted CA and sends the mounted token")
    func httpsWithMountedCA() async throws {
        try await withTemporaryDirectory { directory in
            try write("mounted-token\n", to: "token", in: directory)
            try write(TestCertificates.caCertificate, to: "ca.crt", in: directory)
            try write("ml\n", to: "namespace", in: directory)

            try await RecordingHTTPServer.with(tls: try Self.serverTLS(), respond: { _, _ in .json(.ok, APIServerAnswers.scale) }) { server in
                let configuration = try Configuration.inCluster(
                    deployment: "fulcrum-worker",
                    serviceAccountDirectory: directory.path,
                    environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "\(server.port)"]
                )
                let replicas = try await withClient(configuration) { try await $0.replicas() }
                #expect(replicas.spec == 5)
                #expect(replicas.status == 3)
                #expect(server.requests.map(\.uri) == [APIServerAnswers.path])
                #expect(server.requests.first?.headers["Authorization"] == ["Bearer mounted-token"])
            }
        }
    }

    @Test("With a CA file set, a server certificate from another CA is refused before any request")
    func untrustedServer() async throws {
        try await withTemporaryDirectory { directory in
            let caFile = try write(TestCertificates.unrelatedCACertificate, to: "ca.crt", in: directory)
            try await RecordingHTTPServer.with(tls: try Self.serverTLS(), respond: { _, _ in .json(.ok, APIServerAnswers.scale) }) { server in
                var configuration = testConfiguration(server.baseURL)
                configuration.caCertificateFile = caFile
                // The HTTP client retries failed connections until the request timeout.
                configuration.requestTimeout = .seconds(1)
                let error = try await #require(throws: KubernetesError.self) {
                    try await withClient(configuration) { try await $0.replicas() }
                }
                #expect(error.code == .transport)
                #expect(error.description.contains("CERTIFICATE_VERIFY_FAILED"))
                #expect(server.requests.isEmpty)
            }
        }
    }

    @Test("A CA file with no certificate is refused when the client is made")
    func unreadableCA() async throws {
        try await withTemporaryDirectory { directory in
            var configuration = testConfiguration("https://127.0.0.1:6443")
            configuration.caCertificateFile = try write("not a certificate\n", to: "ca.crt", in: directory)
            let error = try #require(throws: KubernetesError.self) { try KubernetesScaleClient(configuration: configuration) }
            #expect(error.code == .unreadableCredentials)
            #expect(error.message.contains("ca.crt"))
        }
    }

    /// The test server's TLS: the certificate signed by the test CA, for 127.0.0.1.
    static func serverTLS() throws -> NIOSSLContext {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(TestCertificates.serverCertificate.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(TestCertificates.serverPrivateKey.utf8), format: .pem))
        )
        return try NIOSSLContext(configuration: configuration)
    }
}

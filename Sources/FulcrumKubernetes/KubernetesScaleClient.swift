import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Reads and sets the replica count of one Deployment through the API server's scale
/// subresource (`/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`), the way `kubectl
/// scale` does; the Kubernetes scaler of the balancer carries out its decisions with it.
///
/// Each call is one HTTPS request (two when the first meets a 409 Conflict) with a freshly read
/// bearer token. Redirects are not followed, so the token only goes to the configured server;
/// answers are bounded to 1 MiB. The owner calls `shutdown()` once it is done: the client holds
/// pooled connections until then.
public final class KubernetesScaleClient: Sendable {
    /// What this client talks to, as given (validated by `init`).
    public let configuration: Configuration

    private let http: HTTPClient
    private let scaleURL: String
    private let timeout: TimeAmount

    /// The largest answer read; a scale object or a status is well under a kilobyte.
    static let maximumResponseBytes = 1 << 20

    /// Validates the configuration and loads the CA certificates (when a CA file is set, only
    /// they are trusted). Throws `KubernetesError` naming the bad key or unreadable file.
    public init(configuration: Configuration) throws {
        try configuration.validate()
        if case .file(let path) = configuration.token, !FileManager.default.isReadableFile(atPath: path) {
            throw KubernetesError(.unreadableCredentials, "cannot read the token file \(path)")
        }

        var tls: TLSConfiguration? = nil
        if let caFile = configuration.caCertificateFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw KubernetesError(
                    .unreadableCredentials,
                    "cannot load CA certificates from \(caFile): \(error)",
                    underlying: error
                )
            }
            guard !certificates.isEmpty else {
                throw KubernetesError(.unreadableCredentials, "no PEM certificate in the CA file \(caFile)")
            }
            var client = TLSConfiguration.makeClientConfiguration()
            client.trustRoots = .certificates(certificates)
            client.additionalTrustRoots = []
            client.certificateVerification = .fullVerification
            tls = client
        }

        let (seconds, attoseconds) = configuration.requestTimeout.components
        let timeout = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let httpConfiguration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: timeout, read: timeout),
            decompression: .disabled
        )

        var base = configuration.apiServer
        while base.hasSuffix("/") { base.removeLast() }
        self.configuration = configuration
        self.scaleURL = base + configuration.scalePath
        self.timeout = timeout
        // Created last: an HTTPClient must be shut down, so nothing may throw after this.
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
    }

    /// The Deployment's desired (`spec`) and current (`status`) replica counts, from
    /// `GET .../scale`.
    public func replicas() async throws -> (spec: Int, status: Int) {
        let body = try await send(.GET, body: nil)
        let scale: ScaleObject
        do {
            scale = try JSONDecoder().decode(ScaleObject.self, from: Data(body.readableBytesView))
        } catch {
            throw KubernetesError(
                .invalidResponse,
                "the answer is not a Scale object: \(error)",
                request: "GET \(configuration.scalePath)",
                underlying: error
            )
        }
        if let kind = scale.kind, kind != "Scale" {
            throw KubernetesError(
                .invalidResponse,
                "expected kind Scale, got \(kind)",
                request: "GET \(configuration.scalePath)"
            )
        }
        return (scale.spec?.replicas ?? 0, scale.status?.replicas ?? 0)
    }

    /// Sets the Deployment's desired replica count with
    /// `PATCH .../scale` and the merge patch `{"spec":{"replicas":N}}`. The Deployment
    /// controller then starts or stops pods; this returns once the API server has accepted it.
    public func setReplicas(_ n: Int) async throws {
        guard n >= 0, n <= Int(Int32.max) else {
            throw KubernetesError(.invalidArgument, "replicas must be between 0 and \(Int32.max), got \(n)")
        }
        _ = try await send(.PATCH, body: #"{"spec":{"replicas":\#(n)}}"#)
    }

    /// Closes the pooled connections. Call once, after the last request.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// Sends one request to the scale subresource and returns the body of a 2xx answer. A 409
    /// Conflict (a concurrent writer) is retried once; any other non-2xx answer is thrown as
    /// `.apiError` with the Kubernetes `Status` message.
    private func send(_ method: HTTPMethod, body: String?) async throws -> ByteBuffer {
        let label = "\(method.rawValue) \(configuration.scalePath)"
        var attempt = 1
        while true {
            let (status, answer) = try await sendOnce(method, body: body, label: label)
            if (200..<300).contains(status) { return answer }
            if status == 409 && attempt == 1 {
                attempt += 1
                continue
            }
            throw Self.apiError(status: status, body: answer, request: label)
        }
    }

    private func sendOnce(_ method: HTTPMethod, body: String?, label: String) async throws -> (Int, ByteBuffer) {
        var request = HTTPClientRequest(url: scaleURL)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(try bearerToken())")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "fulcrum-balancer")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/merge-patch+json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        do {
            let response = try await http.execute(request, timeout: timeout)
            let answer = try await response.body.collect(upTo: Self.maximumResponseBytes)
            return (Int(response.status.code), answer)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw KubernetesError(
                .transport,
                "cannot reach the API server at \(configuration.apiServer): \(error)",
                request: label,
                underlying: error
            )
        }
    }

    /// The token to send now; a token file is read on every call.
    private func bearerToken() throws -> String {
        switch configuration.token {
        case .value(let token):
            return token
        case .file(let path):
            guard let token = Configuration.readTrimmed(path) else {
                throw KubernetesError(.unreadableCredentials, "cannot read the token file \(path)")
            }
            guard !token.isEmpty else {
                throw KubernetesError(.unreadableCredentials, "the token file \(path) is empty")
            }
            return token
        }
    }

    /// A non-2xx answer as an error; the message is the `Status` object's when the body is one,
    /// else the start of the body, else the HTTP reason phrase.
    static func apiError(status: Int, body: ByteBuffer, request: String) -> KubernetesError {
        let data = Data(body.readableBytesView)
        let statusObject = try? JSONDecoder().decode(StatusObject.self, from: data)
        let message: String
        if let text = statusObject?.message, !text.isEmpty {
            message = text
        } else if !data.isEmpty {
            message = String(String(decoding: data.prefix(200), as: UTF8.self))
                .trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            message = HTTPResponseStatus(statusCode: status).reasonPhrase
        }
        return KubernetesError(
            .apiError,
            message,
            request: request,
            httpStatus: status,
            reason: statusObject?.reason.flatMap { $0.isEmpty ? nil : $0 }
        )
    }
}

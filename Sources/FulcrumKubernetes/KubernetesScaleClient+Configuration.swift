import Foundation

extension KubernetesScaleClient {
    /// Which Deployment to scale and how to reach and authenticate to its API server.
    ///
    /// In a pod, `inCluster(deployment:namespace:)` fills it the way client-go's in-cluster
    /// config does; elsewhere (tests, a balancer outside the cluster) build it by hand.
    public struct Configuration: Sendable {
        /// Where the bearer token comes from.
        public enum Token: Sendable, Hashable {
            /// A fixed token, sent as it is.
            case value(String)
            /// A file read before every request (surrounding whitespace trimmed). Projected
            /// service-account tokens are rotated by the kubelet, so a token read once at start
            /// would expire under a long-running balancer.
            case file(String)
        }

        /// The API server, scheme, host and port, e.g. `https://10.96.0.1:443`. `http` is
        /// accepted for tests; the token then travels in clear.
        public var apiServer: String
        /// The namespace of the worker Deployment.
        public var namespace: String
        /// The name of the worker Deployment.
        public var deployment: String
        /// The bearer token sent as `Authorization: Bearer <token>`.
        public var token: Token
        /// A PEM file of the CA certificates to trust. When set, only these are trusted (not the
        /// system roots); when nil, the system roots are used for `https`.
        public var caCertificateFile: String?
        /// The most one request may take, connecting included. Failed connection attempts
        /// (refused, TLS verification) are retried with backoff until then, so an unreachable
        /// or untrusted API server is reported after this long, with the last attempt's error.
        public var requestTimeout: Duration

        /// A configuration from explicit values.
        public init(
            apiServer: String,
            namespace: String,
            deployment: String,
            token: Token,
            caCertificateFile: String? = nil,
            requestTimeout: Duration = .seconds(10)
        ) {
            self.apiServer = apiServer
            self.namespace = namespace
            self.deployment = deployment
            self.token = token
            self.caCertificateFile = caCertificateFile
            self.requestTimeout = requestTimeout
        }

        /// Where Kubernetes mounts the pod's service-account token, CA and namespace.
        public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

        /// The configuration of a balancer running in a pod: the API server from
        /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` (an IPv6 host is bracketed),
        /// the token file `token` (re-read on every request), the CA `ca.crt`, and — unless
        /// `namespace` is given — the pod's own namespace from the file `namespace`, all in
        /// `serviceAccountDirectory`.
        ///
        /// Throws `KubernetesError` with code `.notInCluster` naming everything that is missing
        /// when this does not look like a pod; reads only small files, no network.
        ///
        /// - Parameters:
        ///   - deployment: the worker Deployment's name.
        ///   - namespace: its namespace; nil for the pod's own.
        ///   - serviceAccountDirectory: where the service-account files are; injectable for tests.
        ///   - environment: the process environment; injectable for tests.
        public static func inCluster(
            deployment: String,
            namespace: String? = nil,
            serviceAccountDirectory: String = Configuration.serviceAccountDirectory,
            environment: [String: String] = ProcessInfo.processInfo.environment,
            requestTimeout: Duration = .seconds(10)
        ) throws -> Configuration {
            var missing: [String] = []
            let host = environment["KUBERNETES_SERVICE_HOST"].flatMap { $0.isEmpty ? nil : $0 }
            let port = environment["KUBERNETES_SERVICE_PORT"].flatMap { $0.isEmpty ? nil : $0 }
            if host == nil { missing.append("environment variable KUBERNETES_SERVICE_HOST") }
            if port == nil { missing.append("environment variable KUBERNETES_SERVICE_PORT") }

            let directory = URL(fileURLWithPath: serviceAccountDirectory, isDirectory: true)
            let tokenFile = directory.appendingPathComponent("token").path
            let caFile = directory.appendingPathComponent("ca.crt").path
            let namespaceFile = directory.appendingPathComponent("namespace").path

            if readTrimmed(tokenFile)?.isEmpty ?? true { missing.append("service-account token \(tokenFile)") }
            if !FileManager.default.isReadableFile(atPath: caFile) { missing.append("CA certificate \(caFile)") }
            var resolvedNamespace = namespace
            if resolvedNamespace == nil {
                resolvedNamespace = readTrimmed(namespaceFile).flatMap { $0.isEmpty ? nil : $0 }
                if resolvedNamespace == nil { missing.append("namespace file \(namespaceFile) (or pass the namespace)") }
            }

            guard let host, let port, let resolvedNamespace, missing.isEmpty else {
                throw KubernetesError(
                    .notInCluster,
                    "not running in a Kubernetes pod, missing: \(missing.joined(separator: ", "))"
                )
            }
            guard let portNumber = Int(port), (1...65535).contains(portNumber) else {
                throw KubernetesError(.notInCluster, "KUBERNETES_SERVICE_PORT is not a port number: \(port)")
            }
            let authority = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            return Configuration(
                apiServer: "https://\(authority):\(portNumber)",
                namespace: resolvedNamespace,
                deployment: deployment,
                token: .file(tokenFile),
                caCertificateFile: caFile,
                requestTimeout: requestTimeout
            )
        }

        /// `/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale`.
        var scalePath: String {
            "/apis/apps/v1/namespaces/\(namespace)/deployments/\(deployment)/scale"
        }

        /// Checks what the API server cannot check for us before anything is sent.
        func validate() throws {
            guard let url = URL(string: apiServer), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", url.host != nil
            else {
                throw KubernetesError(
                    .invalidConfiguration,
                    "apiServer must be an http or https URL with a host, got \"\(apiServer)\""
                )
            }
            // Namespaces are DNS labels and Deployment names DNS subdomains; neither may hold a
            // character that would need escaping in the path.
            for (key, value, limit) in [("namespace", namespace, 63), ("deployment", deployment, 253)] {
                guard Self.isDNSName(value), value.utf8.count <= limit else {
                    throw KubernetesError(
                        .invalidConfiguration,
                        "\(key) must be a lowercase DNS name of at most \(limit) characters, got \"\(value)\""
                    )
                }
            }
            guard requestTimeout > .zero else {
                throw KubernetesError(.invalidConfiguration, "requestTimeout must be positive, got \(requestTimeout)")
            }
        }

        private static func isDNSName(_ value: String) -> Bool {
            let bytes = Array(value.utf8)
            guard let first = bytes.first, let last = bytes.last else { return false }
            func alphanumeric(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
            return alphanumeric(first) && alphanumeric(last)
                && bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
        }

        /// The file's contents without surrounding whitespace, or nil when it cannot be read.
        static func readTrimmed(_ path: String) -> String? {
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}

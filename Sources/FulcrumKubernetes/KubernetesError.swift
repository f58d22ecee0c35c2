/// Why a call to the Kubernetes API server failed, in words the balancer can log as they are.
///
/// `code` says what kind of failure it was; `message` is for people. For an answer outside 2xx
/// (`code == .apiError`), `httpStatus` is the HTTP status and `message` is the `message` of the
/// Kubernetes `Status` object the API server sent, for example
/// `deployments.apps "fulcrum-worker" is forbidden: User "system:serviceaccount:ml:fulcrum" cannot patch resource "deployments/scale" ...`.
public struct KubernetesError: Error, CustomStringConvertible {
    /// What kind of failure this is. Extensible: match on the constants, not on the name.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Not running in a Kubernetes pod: the service environment variables or the mounted
        /// service-account files are missing (`message` names which).
        public static let notInCluster = Code("notInCluster")
        /// A configuration value is unusable (`message` names the key).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// An argument is out of range (a negative replica count).
        public static let invalidArgument = Code("invalidArgument")
        /// The token file or the CA certificate file could not be read or is empty.
        public static let unreadableCredentials = Code("unreadableCredentials")
        /// The API server answered with a status outside 2xx; see `httpStatus` and `reason`.
        public static let apiError = Code("apiError")
        /// The API server answered 2xx but not with the object expected.
        public static let invalidResponse = Code("invalidResponse")
        /// The API server could not be reached: connection, TLS, or timeout (`underlying`).
        public static let transport = Code("transport")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong; for `.apiError` exactly the Kubernetes `Status.message` when there was one.
    public var message: String
    /// The request that failed, as `METHOD /path`, when there was one.
    public var request: String?
    /// The HTTP status of the answer (`.apiError` only).
    public var httpStatus: Int?
    /// The Kubernetes `Status.reason` (`Forbidden`, `NotFound`, `Conflict`, ...) when given.
    public var reason: String?
    /// The error from the HTTP or TLS layer (`.transport`) or the decoder (`.invalidResponse`).
    public var underlying: (any Error)?

    /// Makes an error; `message` should say what to do about it where that is known.
    public init(
        _ code: Code,
        _ message: String,
        request: String? = nil,
        httpStatus: Int? = nil,
        reason: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.request = request
        self.httpStatus = httpStatus
        self.reason = reason
        self.underlying = underlying
    }

    /// One line for the log: the request, the status and reason, the message and a hint for
    /// the statuses whose fix is always the same.
    public var description: String {
        var parts: [String] = []
        if let request { parts.append(request) }
        if let httpStatus {
            parts.append(reason.map { "HTTP \(httpStatus) \($0)" } ?? "HTTP \(httpStatus)")
        } else {
            parts.append(code.description)
        }
        parts.append(message)
        let line = parts.joined(separator: ": ")
        return hint.map { "\(line) \($0)" } ?? line
    }

    private var hint: String? {
        switch httpStatus {
        case 401: "(the service-account token was rejected: is it mounted and unexpired?)"
        case 403: "(grant the pod's service account get and patch on deployments/scale in API group apps)"
        case 404: "(check the deployment name and namespace)"
        default: nil
        }
    }
}

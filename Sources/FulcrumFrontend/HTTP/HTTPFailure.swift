import FulcrumService
import GRPCCore
import Hummingbird

/// A failed HTTP call as the client sees it: a status and a message, answered as
/// `{"error": "<message>"}` (the open inference protocol's error body, which tritonclient reads).
/// Every error the HTTP edge answers passes through here; `init(_: RPCError)` is the one place
/// where gRPC codes become HTTP statuses, following the protocol's table.
struct HTTPFailure: Error, Equatable, CustomStringConvertible {
    var status: HTTPResponse.Status
    var message: String
    /// Seconds for a `Retry-After` header (a refusal under load), if any.
    var retryAfter: Int? = nil

    init(status: HTTPResponse.Status, message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    /// Maps a gRPC status as the protocol says: NOT_FOUND 404, INVALID_ARGUMENT 400,
    /// UNAVAILABLE 503, UNIMPLEMENTED 501, INTERNAL 500, PERMISSION_DENIED 403, UNAUTHENTICATED
    /// 401, everything else 400. RESOURCE_EXHAUSTED is 429 with `Retry-After` when it is a refusal
    /// under load (`fulcrum-rejected` set: the frontend's admission limit, a worker's full
    /// queue), otherwise 413 (a size limit).
    init(_ error: RPCError) {
        if error.code == .resourceExhausted {
            if error.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) != nil {
                self.init(status: .tooManyRequests, message: error.message, retryAfter: 1)
            } else {
                self.init(status: .contentTooLarge, message: error.message)
            }
            return
        }
        self.init(status: Self.status(for: error.code), message: error.message)
    }

    /// The HTTP status for a gRPC status code.
    static func status(for code: RPCError.Code) -> HTTPResponse.Status {
        switch code {
        case .notFound: .notFound
        case .invalidArgument: .badRequest
        case .unavailable: .serviceUnavailable
        case .unimplemented: .notImplemented
        case .internalError: .internalServerError
        case .permissionDenied: .forbidden
        case .unauthenticated: .unauthorized
        default: .badRequest
        }
    }

    /// A malformed request (400).
    static func badRequest(_ message: String) -> HTTPFailure {
        HTTPFailure(status: .badRequest, message: message)
    }

    /// The error body, `{"error": message}`.
    var body: [UInt8] {
        JSONValue.object(["error": .string(message)]).serialized
    }

    var description: String { "\(status.code) \(message)" }
}

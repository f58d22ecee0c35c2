import GRPCCore
import Hummingbird
import HTTPTypes
import Logging
import NIOCore

/// Turns every error a route throws (and the router's own "no such route") into the protocol's
/// error answer, `{"error": "..."}` with the mapped status, so clients never see Hummingbird's
/// own error format or a bare 500.
struct HTTPFailureMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The largest body accepted, named in the 413 message.
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let failure = Self.failure(for: error, method: request.method, path: request.uri.path, maxBodyBytes: maxBodyBytes)
            if failure.status.code >= 500 {
                context.logger.warning("HTTP \(request.method) \(request.uri.path): \(failure)")
            }
            return Self.response(failure)
        }
    }

    /// The client-visible failure for an error thrown while answering `method path`.
    static func failure(for error: any Error, method: HTTPRequest.Method, path: String, maxBodyBytes: Int) -> HTTPFailure {
        switch error {
        case let failure as HTTPFailure:
            return failure
        case let error as RPCError:
            return HTTPFailure(error)
        case is NIOTooManyBytesError:
            return HTTPFailure(status: .contentTooLarge, message: "the request body is larger than the HTTP limit of \(maxBodyBytes) bytes (set from --max-message-bytes, with room for tensors written as JSON text)")
        case let error as HTTPError where error.status == .notFound:
            return HTTPFailure(status: .notFound, message: "no route for \(method) \(path)")
        case let error as HTTPError:
            return HTTPFailure(status: error.status, message: error.body ?? error.status.reasonPhrase)
        case let error as any HTTPResponseError:
            return HTTPFailure(status: error.status, message: "\(error)")
        default:
            return HTTPFailure(status: .internalServerError, message: "\(error)")
        }
    }

    /// The JSON error response for `failure`.
    static func response(_ failure: HTTPFailure) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let seconds = failure.retryAfter { headers[.retryAfter] = String(seconds) }
        return Response(status: failure.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: failure.body)))
    }
}

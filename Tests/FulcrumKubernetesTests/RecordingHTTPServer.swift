import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// One request exactly as the test server decoded it off the wire.
struct RecordedRequest: Sendable {
    var method: HTTPMethod
    /// The request target: path and query.
    var uri: String
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// What the test server answers to one request.
struct CannedResponse: Sendable {
    var status: HTTPResponseStatus
    var body: String

    /// A JSON answer.
    static func json(_ status: HTTPResponseStatus, _ body: String) -> CannedResponse {
        CannedResponse(status: status, body: body)
    }
}

/// A minimal HTTP/1.1 server on 127.0.0.1 and a free port, standing in for the API server: it
/// records every request (method, target, headers, body bytes) and answers each with what
/// `respond` returns for it and its index (0 for the first request). Plain HTTP unless a TLS
/// context is given.
final class RecordingHTTPServer: Sendable {
    private let channel: any Channel
    private let recorder: Recorder

    /// The port the server listens on.
    let port: Int

    /// `http://127.0.0.1:PORT` (or https with TLS).
    let baseURL: String

    /// Every request received so far, in order.
    var requests: [RecordedRequest] { recorder.requests.withLock { $0 } }

    private init(channel: any Channel, recorder: Recorder, port: Int, scheme: String) {
        self.channel = channel
        self.recorder = recorder
        self.port = port
        self.baseURL = "\(scheme)://127.0.0.1:\(port)"
    }

    /// Starts a server; the caller stops it with `stop()`.
    static func start(
        tls: NIOSSLContext? = nil,
        respond: @escaping @Sendable (RecordedRequest, Int) -> CannedResponse
    ) async throws -> RecordingHTTPServer {
        let recorder = Recorder(respond: respond)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.configureHTTPServerPipeline()
                    try pipeline.addHandler(RecordingHandler(recorder: recorder))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let port = channel.localAddress?.port else { throw ServerError.noPort }
        return RecordingHTTPServer(channel: channel, recorder: recorder, port: port, scheme: tls == nil ? "http" : "https")
    }

    /// Stops listening (connections the client still pools close when the client shuts down).
    func stop() async throws {
        try await channel.close()
    }

    /// Runs `body` with a started server and stops it afterwards, whether `body` throws or not.
    static func with<T>(
        tls: NIOSSLContext? = nil,
        respond: @escaping @Sendable (RecordedRequest, Int) -> CannedResponse,
        _ body: (RecordingHTTPServer) async throws -> T
    ) async throws -> T {
        let server = try await start(tls: tls, respond: respond)
        do {
            let result = try await body(server)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    enum ServerError: Error { case noPort }

    /// The requests so far and the answering function, shared by every connection.
    final class Recorder: Sendable {
        let requests = Mutex<[RecordedRequest]>([])
        let respond: @Sendable (RecordedRequest, Int) -> CannedResponse

        init(respond: @escaping @Sendable (RecordedRequest, Int) -> CannedResponse) {
            self.respond = respond
        }

        func record(_ request: RecordedRequest) -> CannedResponse {
            let index = requests.withLock { requests in
                requests.append(request)
                return requests.count - 1
            }
            return respond(request, index)
        }
    }

    /// Collects one request's parts and writes the canned answer with a Content-Length.
    private final class RecordingHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let recorder: Recorder
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(recorder: Recorder) { self.recorder = recorder }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let response = recorder.record(
                    RecordedRequest(method: head.method, uri: head.uri, headers: head.headers, body: body)
                )
                let bytes = ByteBuffer(string: response.body)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(bytes.readableBytes)")
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
                    promise: nil
                )
                context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                self.head = nil
            }
        }
    }
}

import FulcrumProtocol
import FulcrumService
import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 connection from the frontend to a worker, carrying unary ModelInfer calls on raw
/// frames: a call is a HEADERS and a DATA frame on a new stream, its answer the response's
/// HEADERS, DATA and trailers. It sits after a `NIOHTTP2Handler` in frame mode (no stream
/// multiplexer), so a call costs no channel, pipeline, task or promise of its own — the cost that
/// grpc-swift's client spends per call (docs/performance.md). It therefore does the inbound flow
/// control a multiplexer would: a large stream window asked for in SETTINGS, the connection
/// window raised once, and both replenished as response bytes are read.
///
/// Confined to its channel's event loop (hence `@unchecked Sendable`): `WorkerLink` calls it
/// only there.
final class WorkerStreams: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// How a call ends.
    typealias Completion = (Result<Inference_ModelInferResponse, RPCError>) -> Void

    /// The per-stream window this client asks for, and the connection window it keeps open.
    static let window = 16 << 20

    /// HTTP/2 stream ids are 31-bit and odd for a client; past this the connection is retired.
    static let lastStreamID = Int32.max - 2

    private let authority: String
    private let maxMessageBytes: Int
    private var context: ChannelHandlerContext?
    private var nextStreamID: Int32 = 1
    private var streams: [Int32: Call] = [:]
    private var connectionConsumed = 0
    private var needsFlush = false
    /// Why the connection takes no new calls (closed, GOAWAY, ids used up); nil while it does.
    private(set) var retired: String?

    private struct Call {
        var completion: Completion
        var body: ByteBuffer?
        var sawHeaders = false
        var consumed = 0
        var timer: Scheduled<Void>?
    }

    init(authority: String, maxMessageBytes: Int) {
        self.authority = authority
        self.maxMessageBytes = maxMessageBytes
    }

    /// The SETTINGS this client sends: a large stream window, no server push.
    static var settings: HTTP2Settings {
        [HTTP2Setting(parameter: .initialWindowSize, value: window), HTTP2Setting(parameter: .enablePush, value: 0)]
    }

    /// Calls in flight on this connection.
    var inFlight: Int { streams.count }

    /// Whether new calls may start here.
    var accepting: Bool { retired == nil && context != nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        deferredFlush = DeferredFlush(loop: context.eventLoop) { [weak self] in self?.flush() }
        if context.channel.isActive { openWindow(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        openWindow(context)
        context.fireChannelActive()
    }

    private func openWindow(_ context: ChannelHandlerContext) {
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: Self.window))), promise: nil)
    }

    /// Starts a ModelInfer call: `message` is the framed request (`GRPCWire.frame`), `metadata`
    /// extra headers (trace context), `timeout` the caller's remaining deadline, sent as
    /// `grpc-timeout` and enforced here too. `completion` runs exactly once, on this loop.
    func start(message: ByteBuffer, metadata: [(String, String)], timeout: Duration?, completion: @escaping Completion) {
        guard let context, retired == nil else {
            completion(.failure(RPCError(code: .unavailable, message: "the connection to the worker is closed: \(retired ?? "not open")")))
            return
        }
        let id = nextStreamID
        nextStreamID += 2
        if nextStreamID > Self.lastStreamID { retired = "stream ids used up" }
        var headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": "/inference.GRPCInferenceService/ModelInfer",
            ":authority": authority, "content-type": "application/grpc", "te": "trailers",
        ]
        var timer: Scheduled<Void>? = nil
        if let timeout {
            headers.add(name: "grpc-timeout", value: GRPCWire.timeoutHeader(timeout))
            let nanos = timeout.components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let delay = nanos.overflow ? Int64.max : nanos.partialValue &+ timeout.components.attoseconds / 1_000_000_000
            timer = context.eventLoop.scheduleTask(in: .nanoseconds(max(0, delay))) { [self] in
                self.fail(id, RPCError(code: .deadlineExceeded, message: "the worker did not answer within the request's deadline"), reset: .cancel)
            }
        }
        for (name, value) in metadata { headers.add(name: name, value: value) }
        streams[id] = Call(completion: completion, timer: timer)
        let streamID = HTTP2StreamID(id)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: headers)))), promise: nil)
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(message), endStream: true)))), promise: nil)
        needsFlush = true
    }

    /// Flushes what `start` wrote (a read burst flushes by itself).
    func flush() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Flushes once the event loop has run what is already queued on it, so the calls that the
    /// same burst of client requests starts leave in one write (inside a read of this
    /// connection, `channelReadComplete` flushes).
    func flushSoon() {
        if !reading, needsFlush { deferredFlush?.schedule() }
    }
    private var deferredFlush: DeferredFlush?

    /// Abandons a call (its caller was cancelled): CANCELLED to the caller, RST_STREAM to the worker.
    func cancel(_ id: Int32) {
        fail(id, RPCError(code: .cancelled, message: "the call was cancelled"), reset: .cancel)
    }

    /// The id the next `start` uses, so a caller can name its call to `cancel`.
    var upcomingStreamID: Int32 { nextStreamID }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        let frame = unwrapInboundIn(data)
        let id = Int32(frame.streamID)
        switch frame.payload {
        case .headers(let h):
            guard streams[id] != nil else { return }
            if !streams[id]!.sawHeaders {
                streams[id]!.sawHeaders = true
                if let status = h.headers.first(name: ":status"), status != "200" {
                    fail(id, GRPCWire.status(httpStatus: status), reset: h.endStream ? nil : .cancel)
                    return
                }
                // A trailers-only response: the status is in this one block.
                if h.endStream { finish(id, trailers: h.headers) }
            } else {
                guard h.endStream else {
                    fail(id, RPCError(code: .internalError, message: "the worker sent a second header block that does not end the stream"), reset: .protocolError)
                    return
                }
                finish(id, trailers: h.headers)
            }
        case .data(let d):
            let bytes = d.data.readableBytes
            connectionConsumed += bytes
            if connectionConsumed >= Self.window / 2 {
                context.write(
                    wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: connectionConsumed))),
                    promise: nil)
                connectionConsumed = 0
                needsFlush = true
            }
            guard streams[id] != nil, case .byteBuffer(var buffer) = d.data else { return }
            guard streams[id]!.sawHeaders else {
                fail(id, RPCError(code: .internalError, message: "the worker sent data before headers"), reset: .protocolError)
                return
            }
            let held = (streams[id]!.body?.readableBytes ?? 0) + bytes
            guard held <= maxMessageBytes + GRPCWire.prefixBytes else {
                fail(id, RPCError(code: .resourceExhausted, message: "the worker's response exceeds the limit of \(maxMessageBytes) bytes"), reset: .cancel)
                return
            }
            if streams[id]!.body == nil {
                streams[id]!.body = buffer
            } else {
                streams[id]!.body!.writeBuffer(&buffer)
            }
            streams[id]!.consumed += bytes
            if d.endStream {
                // The stream ended without trailers: no status was sent.
                finish(id, trailers: [:])
            } else if streams[id]!.consumed >= Self.window / 2 {
                let increment = streams[id]!.consumed
                streams[id]!.consumed = 0
                context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
                needsFlush = true
            }
        case .rstStream(let code):
            let error =
                code == .refusedStream
                ? RPCError(code: .unavailable, message: "the worker refused the stream")
                : RPCError(code: .unavailable, message: "the worker reset the stream (\(code))")
            fail(id, error, reset: nil)
        case .goAway(let lastStreamID, _, _):
            retired = "the worker sent GOAWAY"
            let last = Int32(lastStreamID)
            for streamID in streams.keys where streamID > last {
                fail(streamID, RPCError(code: .unavailable, message: "the worker is going away"), reset: nil)
            }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        retired = retired ?? "the connection closed"
        for id in Array(streams.keys) {
            fail(id, RPCError(code: .unavailable, message: "the connection to the worker closed"), reset: nil)
        }
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream-level protocol error fails that stream; anything else closes the connection
        // (and `channelInactive` fails every call on it).
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            fail(Int32(streamError.streamID), RPCError(code: .internalError, message: "HTTP/2 stream error from the worker: \(streamError)"), reset: nil)
            return
        }
        retired = retired ?? "connection error: \(error)"
        context.close(promise: nil)
    }

    /// Ends a call that the worker finished, by its trailers.
    private func finish(_ id: Int32, trailers: HPACKHeaders) {
        guard let call = streams.removeValue(forKey: id) else { return }
        call.timer?.cancel()
        if let error = GRPCWire.status(in: trailers) {
            call.completion(.failure(error))
            return
        }
        do {
            let response = try GRPCWire.decodeSingle(Inference_ModelInferResponse.self, from: call.body, maxMessageBytes: maxMessageBytes)
            call.completion(.success(response))
        } catch {
            call.completion(.failure(error))
        }
    }

    /// Ends a call with `error`, resetting its stream with `reset` when the worker may still be
    /// sending on it.
    private func fail(_ id: Int32, _ error: RPCError, reset: HTTP2ErrorCode?) {
        guard let call = streams.removeValue(forKey: id) else { return }
        call.timer?.cancel()
        if let reset, let context {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .rstStream(reset))), promise: nil)
            needsFlush = true
        }
        call.completion(.failure(error))
        flushIfOutsideRead()
    }

    /// Flushes resets written outside a read (a timer or a cancellation); inside a read,
    /// `channelReadComplete` flushes.
    private var reading = false
    private func flushIfOutsideRead() {
        if !reading { flush() }
    }
}

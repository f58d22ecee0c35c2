import Foundation
import FulcrumProtocol
import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
import Synchronization
import X509

/// What serves ModelInfer on the fast path: the decoded request and its headers (deadline,
/// trace context) in, the response out; a thrown `RPCError` becomes the call's status.
public typealias ModelInferHandler = @Sendable (Inference_ModelInferRequest, Metadata) async throws -> Inference_ModelInferResponse

/// One client connection to a `GRPCEdgeServer`, after a `NIOHTTP2Handler` in frame mode.
///
/// ModelInfer — the call every prediction makes — is served here on raw frames: its HEADERS and
/// DATA are collected per stream (bounded by the message limit as they arrive), the one message is
/// decoded and handed to a task running the service's handler, and the answer goes out as
/// HEADERS, DATA and trailers. No stream channel, pipeline, async sequence or writer is made per
/// call: that machinery was the largest share of a prediction's CPU (docs/performance.md).
///
/// Every other stream (metadata, configuration, statistics, repository, health, streaming
/// inference) is relayed frame by frame to grpc-swift's server on a private Unix socket
/// (`RelayLink`), so those methods keep grpc-swift's full implementation on the same port.
///
/// Flow control is this handler's job in frame mode: a ModelInfer stream's bytes are credited
/// back as they are read (the message limit bounds what a stream holds); a relayed stream's bytes
/// only once the inner connection has sent them on, so a slow inner side slows the client.
///
/// Confined to its channel's event loop (hence `@unchecked Sendable`).
final class EdgeConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The method served on raw frames.
    static let modelInferPath = "/inference.GRPCInferenceService/ModelInfer"

    /// The stream window this server offers and the connection window it keeps open.
    static let window = 8 << 20

    /// The SETTINGS this server sends.
    static var settings: HTTP2Settings {
        [
            HTTP2Setting(parameter: .initialWindowSize, value: window),
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 4096),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
        ]
    }

    struct Configuration: Sendable {
        /// The largest request message accepted (the transport's limit, `MessageLimit.transportBytes`).
        var maxMessageBytes: Int
        var modelInfer: ModelInferHandler
        /// Asked when a ModelInfer call's headers arrive: an error refuses it at once.
        var shed: EdgeShedding? = nil
        /// The inner grpc-swift server's socket.
        var relaySocket: String
        var limits = EdgeLimits()
        /// Bytes of ModelInfer requests still arriving, across every connection of the server.
        var budget = EdgeBudget(maxBytes: EdgeLimits().maxArrivingBytes)
        /// Relayed methods (`:path`) that only peers with one of these cluster roles may call
        /// (their TLS certificate says; a peer without one is refused). Empty: no check.
        var roles: [String: Set<ClusterTLS.Role>] = [:]
    }

    private enum Stream {
        /// A ModelInfer call: collecting its message, then running.
        case call(Call)
        /// A stream relayed to the inner server under `innerID`.
        case relayed(RelayLink, innerID: Int32)
        /// Answered; its remaining frames are read and dropped until it closes.
        case answered
    }

    private struct Call {
        var headers: HPACKHeaders
        var body: ByteBuffer?
        var unreturned = 0
        var task: Task<Void, Never>?
        /// When its HEADERS arrived (the request must be complete within the read timeout).
        var started: NIODeadline
        /// Bytes of its body reserved in the server's budget.
        var budgeted = 0
    }

    private let configuration: Configuration
    private var context: ChannelHandlerContext?
    private var streams: [Int32: Stream] = [:]
    private var relay: RelayLink?
    private var highestStreamID: Int32 = 0
    private var connectionCredit = 0
    private var reading = false
    private var needsFlush = false
    private(set) var draining = false
    /// The last complete HTTP/2 frame, the last raw bytes (`EdgeReadStamp`), and since when the
    /// connection has had no stream, for the read and idle timeouts.
    private var lastFrame = NIODeadline.uptimeNanoseconds(0)
    /// Since when the client has left a frame (or a header block) unfinished, per `EdgeReadStamp`.
    private var unfinishedSince: NIODeadline? = nil
    private var idleSince: NIODeadline? = nil
    private var framesSeen = false
    private var timer: RepeatedTask?

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        deferredFlush = DeferredFlush(loop: context.eventLoop) { [weak self] in self?.flush() }
        lastFrame = context.eventLoop.now
        idleSince = lastFrame
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let period = TimeAmount.nanoseconds(max(TimeAmount.milliseconds(100).nanoseconds, min(TimeAmount.seconds(1).nanoseconds, configuration.limits.requestReadTimeout.nanoseconds / 4)))
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in bound.value.tick() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    /// Raw bytes arrived (called by `EdgeReadStamp`, ahead of the HTTP/2 handler).
    /// Whether the bytes read so far end inside a frame or a header block (`EdgeReadStamp`
    /// tracks frame boundaries ahead of the HTTP/2 handler, which buffers such bytes unseen).
    func readEnded(unfinished: Bool) {
        if !unfinished {
            unfinishedSince = nil
        } else if unfinishedSince == nil {
            unfinishedSince = context?.eventLoop.now
        }
    }

    // MARK: Timeouts

    /// Enforces the read and idle timeouts (docs/security.md): a partial frame, or a ModelInfer
    /// request that has not arrived in full, within `requestReadTimeout`; a connection that
    /// never sent a frame within it; a connection with no stream for `idleTimeout`.
    private func tick() {
        guard let context else { return }
        let now = context.eventLoop.now
        let limits = configuration.limits
        if !framesSeen, now - lastFrame > limits.requestReadTimeout {
            context.close(promise: nil)  // not even the connection preface in time
            return
        }
        if let since = unfinishedSince, now - since > limits.requestReadTimeout {
            context.close(promise: nil)  // a frame or header block started and never finished
            return
        }
        for (id, stream) in streams {
            if case .call(let call) = stream, call.task == nil, now - call.started > limits.requestReadTimeout {
                answer(
                    id, status: .deadlineExceeded,
                    message: "the request did not arrive in full within \(limits.requestReadTimeout.nanoseconds / 1_000_000_000) s (the server's request read timeout)",
                    reset: .cancel)
            }
        }
        if streams.isEmpty, let idleSince, now - idleSince > limits.idleTimeout, !draining {
            drain()
        }
    }

    /// Replaces stream `id`'s state, returning the budget its collecting call held.
    private func setStream(_ id: Int32, _ new: Stream?) {
        if case .call(let call) = streams[id], call.budgeted > 0 {
            configuration.budget.release(call.budgeted)
        }
        streams[id] = new
        idleSince = streams.isEmpty ? (idleSince ?? context?.eventLoop.now) : nil
    }

    func channelActive(context: ChannelHandlerContext) {
        // After the HTTP/2 handler's SETTINGS (it writes them as it sees the channel go active).
        context.fireChannelActive()
        let increment = Self.window - 65_535
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        for (_, stream) in streams {
            if case .call(let call) = stream {
                call.task?.cancel()
                if call.budgeted > 0 { configuration.budget.release(call.budgeted) }
            }
        }
        streams = [:]
        relay?.close()
        relay = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream-level protocol error has already reset its stream (the HTTP/2 handler sends
        // RST_STREAM and the stream-closed event follows); anything else ends the connection.
        if error is NIOHTTP2Errors.StreamError { return }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent {
            let id = Int32(closed.streamID)
            if let stream = streams[id] {
                setStream(id, nil)
                switch stream {
                case .call(let call): call.task?.cancel()
                case .relayed(let link, let innerID): link.reset(innerID, code: closed.reason ?? .cancel)
                case .answered: break
                }
            }
            closeIfDrained()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        let frame = unwrapInboundIn(data)
        lastFrame = context.eventLoop.now
        framesSeen = true
        let id = Int32(frame.streamID)
        switch frame.payload {
        case .headers(let headers):
            switch streams[id] {
            case .call:
                if headers.endStream {
                    requestEnded(id)
                } else {
                    answer(id, status: .internalError, message: "a second header block arrived before the request ended", reset: .protocolError)
                }
            case .relayed(let link, let innerID):
                link.forward(HTTP2Frame(streamID: HTTP2StreamID(innerID), payload: .headers(headers)), promise: nil)
            case .answered:
                break
            case nil:
                guard id > 0 else { return }
                highestStreamID = max(highestStreamID, id)
                if draining {
                    context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .rstStream(.refusedStream))), promise: nil)
                    needsFlush = true
                } else if headers.headers.first(name: ":path") == Self.modelInferPath {
                    startCall(id, headers)
                } else if let refusal = roleRefusal(headers.headers.first(name: ":path")) {
                    answer(id, status: .permissionDenied, message: refusal, reset: headers.endStream ? nil : .noError)
                } else {
                    startRelay(id, headers)
                }
            }
        case .data(let data):
            let bytes = data.data.readableBytes
            switch streams[id] {
            case .call(var call):
                connectionCredit += bytes
                guard case .byteBuffer(var buffer) = data.data else { return }
                let held = (call.body?.readableBytes ?? 0) + bytes
                guard held <= configuration.maxMessageBytes + GRPCWire.prefixBytes else {
                    answer(
                        id, status: .resourceExhausted,
                        message: "the request message exceeds the server's limit of \(configuration.maxMessageBytes) bytes", reset: .noError)
                    break
                }
                guard configuration.budget.reserve(bytes) else {
                    answer(
                        id, status: .resourceExhausted,
                        message: "the server holds its limit of \(configuration.budget.maxBytes) bytes of requests still arriving: retry shortly",
                        metadata: [RejectionMetadata.key: "admission"], reset: .cancel)
                    break
                }
                call.budgeted += bytes
                if call.body == nil {
                    call.body = buffer
                } else {
                    call.body!.writeBuffer(&buffer)
                }
                call.unreturned += bytes
                if !data.endStream && call.unreturned >= Self.window / 2 {
                    let increment = call.unreturned
                    call.unreturned = 0
                    context.write(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
                    needsFlush = true
                }
                streams[id] = .call(call)
                if data.endStream { requestEnded(id) }
            case .relayed(let link, let innerID):
                // Credited back once the inner connection has taken the bytes.
                let promise = context.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenSuccess { [self] in
                    self.connectionCredit += bytes
                    if case .relayed = self.streams[id], bytes > 0 {
                        self.context?.write(
                            self.wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .windowUpdate(windowSizeIncrement: bytes))), promise: nil)
                        self.needsFlush = true
                    }
                    self.returnConnectionCredit()
                    self.flushIfOutsideRead()
                }
                link.forward(HTTP2Frame(streamID: HTTP2StreamID(innerID), payload: .data(data)), promise: promise)
            case .answered, nil:
                connectionCredit += bytes
            }
        case .rstStream(let code):
            let stream = streams[id]
            if stream != nil { setStream(id, nil) }
            switch stream {
            case .call(let call): call.task?.cancel()
            case .relayed(let link, let innerID): link.reset(innerID, code: code)
            case .answered, nil: break
            }
            closeIfDrained()
        default:
            break  // SETTINGS, PING, GOAWAY, WINDOW_UPDATE, PRIORITY: the HTTP/2 handler's business.
        }
        returnConnectionCredit()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        relay?.flush()
        flush()
        context.fireChannelReadComplete()
    }

    // MARK: Draining

    /// Stops taking new streams (GOAWAY naming the last one seen) and closes the connection once
    /// the streams in flight have finished.
    func drain() {
        guard !draining, let context else { return }
        draining = true
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: HTTP2StreamID(highestStreamID), errorCode: .noError, opaqueData: nil))),
            promise: nil)
        closeIfDrained()
    }

    private func closeIfDrained() {
        if draining, streams.isEmpty, let context {
            flush()  // what a deferred flush still holds goes out first
            context.close(promise: nil)
        }
    }

    /// Why the peer may not call `path` (nil: it may): the method needs one of
    /// `configuration.roles[path]` and the peer's certificate (read from the TLS handler ahead
    /// of this one) names another role or none.
    private func roleRefusal(_ path: String?) -> String? {
        guard let path, let needed = configuration.roles[path], let context else { return nil }
        let certificate = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.peerCertificate
        let role = certificate.flatMap { try? Certificate(derEncoded: $0.toDERBytes()) }.flatMap(ClusterTLS.role(of:))
        if let role, needed.contains(role) { return nil }
        return PeerRoleInterceptor.refusal(method: String(path.split(separator: "/").last ?? ""), needed: needed, presented: role)
    }

    // MARK: ModelInfer on raw frames

    private func startCall(_ id: Int32, _ frame: HTTP2Frame.FramePayload.Headers) {
        let headers = frame.headers
        let now = context?.eventLoop.now ?? .now()
        guard headers.first(name: ":method") == "POST" else {
            respondHTTP(id, status: "405")
            return
        }
        guard let contentType = headers.first(name: "content-type"), contentType.hasPrefix("application/grpc") else {
            respondHTTP(id, status: "415")
            return
        }
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            setStream(id, .call(Call(headers: headers, started: now)))
            answer(
                id, status: .unimplemented, message: "compression '\(encoding.prefix(32))' is not supported; send messages uncompressed",
                extra: [("grpc-accept-encoding", "identity")], reset: frame.endStream ? nil : .noError)
            return
        }
        setStream(id, .call(Call(headers: headers, started: now)))
        if let shed = configuration.shed, let refusal = shed(headers.first(name: "grpc-timeout").flatMap { Deadline.timeout(grpcTimeout: $0) }) {
            // Refused before its message is read: the cheapest answer an overloaded server has.
            // No RST_STREAM: the message is usually already on its way (dropped as it arrives),
            // and a client built on swift-nio-http2 closes its connection after 200 resets in
            // 30 s — an overload would cost every client its connection.
            answer(id, status: refusal.code, message: refusal.message, metadata: refusal.metadata, reset: nil)
            return
        }
        if frame.endStream { requestEnded(id) }
    }

    /// The request is complete: decode its one message and start the handler's task.
    private func requestEnded(_ id: Int32) {
        guard case .call(let call) = streams[id], call.task == nil else { return }
        let request: Inference_ModelInferRequest
        switch Self.decodeRequest(call.body, maxMessageBytes: configuration.maxMessageBytes) {
        case .success(let decoded): request = decoded
        case .failure(let error):
            answer(id, status: error.code, message: error.message, reset: nil)
            return
        }
        var metadata = Metadata()
        for (name, value, _) in call.headers where !name.hasPrefix(":") {
            metadata.addString(value, forKey: name)
        }
        let handler = configuration.modelInfer
        let loop = context!.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let task = Task {
            let outcome: Outcome
            do {
                let response = try await handler(request, metadata)
                outcome = .message(try GRPCWire.frame(response))
            } catch let error as RPCError {
                outcome = .status(error)
            } catch is CancellationError {
                outcome = .status(RPCError(code: .cancelled, message: "the call was cancelled"))
            } catch {
                outcome = .status(RPCError(code: .unknown, message: "the service failed: \(error)"))
            }
            if loop.inEventLoop {
                bound.value.finish(id, outcome)
            } else {
                loop.execute { bound.value.finish(id, outcome) }
            }
        }
        setStream(id, .call(Call(headers: [:], body: nil, unreturned: call.unreturned, task: task, started: call.started)))
    }

    private enum Outcome: Sendable {
        case message(ByteBuffer)
        case status(RPCError)
    }

    /// Writes the handler's answer, unless the client has gone.
    private func finish(_ id: Int32, _ outcome: Outcome) {
        guard case .call = streams[id], let context else { return }
        switch outcome {
        case .status(let error):
            answer(id, status: error.code, message: error.message, metadata: error.metadata, reset: nil)
        case .message(let buffer):
            setStream(id, .answered)
            let streamID = HTTP2StreamID(id)
            let headers: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: headers)))), promise: nil)
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(buffer))))), promise: nil)
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: ["grpc-status": "0"], endStream: true)))), promise: nil)
            needsFlush = true
            flushIfOutsideRead()
        }
    }

    /// Ends a call with a trailers-only response carrying `status` (and RST_STREAM `reset` when
    /// the client may still be sending).
    private func answer(
        _ id: Int32, status: RPCError.Code, message: String, metadata: Metadata = [:], extra: [(String, String)] = [],
        reset: HTTP2ErrorCode?
    ) {
        guard let context else { return }
        if case .call(let call) = streams[id] { call.task?.cancel() }
        setStream(id, .answered)
        var headers: HPACKHeaders = [
            ":status": "200", "content-type": "application/grpc", "grpc-status": String(Status.Code(status).rawValue),
        ]
        if !message.isEmpty { headers.add(name: "grpc-message", value: GRPCWire.percentEncoded(message)) }
        for (name, value) in extra { headers.add(name: name, value: value) }
        for (key, value) in metadata {
            if case .string(let text) = value { headers.add(name: key, value: text) }
        }
        let streamID = HTTP2StreamID(id)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: headers, endStream: true)))), promise: nil)
        if let reset {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .rstStream(reset))), promise: nil)
        }
        needsFlush = true
        flushIfOutsideRead()
    }

    /// A plain HTTP answer for a request that is not gRPC at all.
    private func respondHTTP(_ id: Int32, status: String) {
        guard let context else { return }
        setStream(id, .answered)
        let headers: HPACKHeaders = [":status": status]
        context.write(wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: headers, endStream: true)))), promise: nil)
        needsFlush = true
        flushIfOutsideRead()
    }

    /// The one message of a unary request: present, uncompressed, within the limit, complete, with
    /// nothing after it, and a valid ModelInferRequest.
    static func decodeRequest(_ body: ByteBuffer?, maxMessageBytes: Int) -> Result<Inference_ModelInferRequest, RPCError> {
        guard var body, body.readableBytes >= GRPCWire.prefixBytes else {
            let count = body?.readableBytes ?? 0
            return .failure(RPCError(code: .internalError, message: "the request carried no complete message (\(count) bytes)"))
        }
        let compressed = body.readInteger(as: UInt8.self)!
        let length = Int(body.readInteger(as: UInt32.self)!)
        guard compressed == 0 else {
            return .failure(RPCError(code: .internalError, message: "the request message is flagged compressed but no grpc-encoding was sent"))
        }
        guard length <= maxMessageBytes else {
            return .failure(RPCError(code: .resourceExhausted, message: "the request message of \(length) bytes exceeds the server's limit of \(maxMessageBytes) bytes"))
        }
        guard body.readableBytes == length else {
            let what = body.readableBytes < length ? "is truncated" : "is followed by more data (a unary call takes one message)"
            return .failure(RPCError(code: .internalError, message: "the request message declares \(length) bytes and \(what)"))
        }
        do {
            return .success(try body.withUnsafeReadableBytes { try Inference_ModelInferRequest(serializedBytes: $0) })
        } catch {
            return .failure(RPCError(code: .invalidArgument, message: "the request is not a valid ModelInferRequest: \(error)"))
        }
    }

    // MARK: Relaying to grpc-swift

    private func startRelay(_ id: Int32, _ headers: HTTP2Frame.FramePayload.Headers) {
        guard let context else { return }
        if relay == nil || relay!.exhausted {
            relay = RelayLink(edge: self, loop: context.eventLoop, socket: configuration.relaySocket)
        }
        let link = relay!
        let innerID = link.open(externalID: id)
        setStream(id, .relayed(link, innerID: innerID))
        link.forward(HTTP2Frame(streamID: HTTP2StreamID(innerID), payload: .headers(headers)), promise: nil)
    }

    /// A frame from the inner server for client stream `id`; `credit` runs once it is written.
    func relayed(_ id: Int32, _ payload: HTTP2Frame.FramePayload, credit: (@Sendable () -> Void)?) {
        guard let context, case .relayed = streams[id] else {
            credit?()
            return
        }
        if case .rstStream = payload { setStream(id, nil) }
        if let credit {
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in credit() }
            context.write(wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: payload)), promise: promise)
        } else {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: payload)), promise: nil)
        }
        needsFlush = true
        closeIfDrained()
    }

    /// The inner connection was lost: its streams are reset (REFUSED_STREAM when it never opened).
    func relayLost(_ link: RelayLink, streams ids: [Int32], neverOpened: Bool) {
        if relay === link { relay = nil }
        guard let context else { return }
        for id in ids {
            guard case .relayed(let owner, _) = streams[id], owner === link else { continue }
            setStream(id, nil)
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .rstStream(neverOpened ? .refusedStream : .internalError))),
                promise: nil)
            needsFlush = true
        }
        flushIfOutsideRead()
        closeIfDrained()
    }

    /// Flushes what relayed frames wrote, outside a read burst.
    func relayWrote() {
        flushIfOutsideRead()
    }

    // MARK: Writing

    private func returnConnectionCredit() {
        guard connectionCredit >= Self.window / 4, let context else { return }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: connectionCredit))), promise: nil)
        connectionCredit = 0
        needsFlush = true
    }

    private func flush() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Outside a read burst, flushes once the event loop has run what is already queued on it:
    /// answers that finish together (the jobs a worker connection's read resumed) leave in one
    /// write instead of one system call each. Inside a read, `channelReadComplete` flushes.
    private func flushIfOutsideRead() {
        if !reading, needsFlush { deferredFlush?.schedule() }
    }
    private var deferredFlush: DeferredFlush?
}

/// Decides, as a ModelInfer call's headers arrive, whether to refuse it at once (nil: go on);
/// given the call's `grpc-timeout`, if any.
public typealias EdgeShedding = @Sendable (Duration?) -> RPCError?

/// The edge's limits on what one client may hold (docs/security.md).
public struct EdgeLimits: Sendable {
    /// Open connections at once; more are closed as they arrive.
    public var maxConnections = 4096
    /// A connection with no stream for this long gets GOAWAY and is closed.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// A ModelInfer request must arrive in full, a started frame must finish, and a new
    /// connection must send its first frame, within this.
    public var requestReadTimeout: TimeAmount = .seconds(30)
    /// Bytes of ModelInfer requests still arriving, across every connection.
    public var maxArrivingBytes = Int(min(ProcessInfo.processInfo.physicalMemory / 8, 1 << 30))
    /// RST_STREAMs a client may send within `resetWindow` before the connection is closed with
    /// ENHANCE_YOUR_CALM (a rapid-reset flood). Generous — 10,000 a second: under overload a
    /// client (or a frontend, towards a worker) resets every call whose deadline passed,
    /// thousands a second on one connection, and must not lose the connection for it
    /// (swift-nio-http2's default, 200 in 30 s, is reached within a second). A rapid-reset attack
    /// sends hundreds of thousands a second. swift-nio-http2 keeps a timestamp per reset in the
    /// window: 8 bytes each, at most 800 KB a connection.
    public var maxResets = 100_000
    public var resetWindow: TimeAmount = .seconds(10)

    /// swift-nio-http2's per-stream settings with this reset allowance, for the edge's server
    /// connections and the frontend's connections to workers alike.
    public var http2Streams: NIOHTTP2Handler.StreamConfiguration {
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.streamResetFrameRateLimit.maximumCount = maxResets
        stream.streamResetFrameRateLimit.windowLength = resetWindow
        return stream
    }

    public init() {}
}

/// Bytes reserved by requests still arriving, shared by a server's connections.
public final class EdgeBudget: Sendable {
    public let maxBytes: Int
    private let held = Atomic<Int>(0)

    public init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Reserves `bytes` unless that would pass the limit; with nothing held anything fits, so a
    /// request the message limit allows is never refused for its size alone.
    func reserve(_ bytes: Int) -> Bool {
        var current = held.load(ordering: .relaxed)
        while true {
            guard current == 0 || bytes <= maxBytes - current else { return false }
            let (exchanged, original) = held.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        held.subtract(bytes, ordering: .relaxed)
    }

    /// Bytes held now.
    public var heldBytes: Int { held.load(ordering: .relaxed) }
}

/// Follows HTTP/2 frame boundaries in the raw bytes of an edge connection, ahead of the HTTP/2
/// handler, and tells the connection after each read whether the client has left a frame (or a
/// HEADERS block awaiting CONTINUATION) unfinished: the HTTP/2 handler holds such bytes without
/// a sign, so a slowloris client trickling one frame would otherwise look idle. Only lengths,
/// types and the END_HEADERS flag are read; anything malformed is the HTTP/2 handler's to refuse.
final class EdgeReadStamp: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let edge: EdgeConnection
    /// Bytes of the connection preface still to come (24 at first).
    private var prefaceLeft = 24
    /// The frame header being read (up to 9 bytes), then the payload bytes still to come.
    private var header: [UInt8] = []
    private var payloadLeft = 0
    /// A HEADERS or PUSH_PROMISE frame without END_HEADERS was seen; CONTINUATION must follow.
    private var inHeaderBlock = false

    init(edge: EdgeConnection) {
        self.edge = edge
        header.reserveCapacity(9)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { consume($0) }
        edge.readEnded(unfinished: unfinished)
        context.fireChannelRead(data)
    }

    /// Whether the bytes so far end inside the preface, a frame or a header block.
    var unfinished: Bool { prefaceLeft > 0 || !header.isEmpty || payloadLeft > 0 || inHeaderBlock }

    private func consume(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        if prefaceLeft > 0 {
            let taken = min(prefaceLeft, bytes.count)
            prefaceLeft -= taken
            index = taken
        }
        while index < bytes.count {
            if payloadLeft > 0 {
                let taken = min(payloadLeft, bytes.count - index)
                payloadLeft -= taken
                index += taken
                continue
            }
            header.append(bytes[index])
            index += 1
            guard header.count == 9 else { continue }
            payloadLeft = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            let type = header[3]
            let endHeaders = header[4] & 0x4 != 0
            switch type {
            case 0x1, 0x5: inHeaderBlock = !endHeaders  // HEADERS, PUSH_PROMISE
            case 0x9: if endHeaders { inHeaderBlock = false }  // CONTINUATION
            default: break
            }
            header.removeAll(keepingCapacity: true)
        }
    }
}

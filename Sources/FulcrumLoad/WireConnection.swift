import Foundation
import FulcrumProtocol
import FulcrumService
import NIOCore
import NIOHPACK
import NIOHTTP2
import SwiftProtobuf

/// One HTTP/2 connection of the load generator, speaking gRPC's unary ModelInfer on raw HTTP/2
/// frames: a pre-encoded request is a HEADERS and a DATA frame on a new stream, and the answer
/// is read from the response's DATA and trailers. Everything happens on the connection's event
/// loop, with no task, channel or promise per request: that is what keeps the generator's CPU per
/// request small (docs/loadtesting.md, "The generator's cost").
///
/// The handler sits after a `NIOHTTP2Handler` in frame mode (no stream multiplexer), so it does
/// the flow control a multiplexer would: it raises the connection window once and replenishes it
/// as response bytes arrive, and asks for a large per-stream window in its SETTINGS.
/// Confined to its channel's event loop (hence `@unchecked Sendable`: it is created there and only
/// used there).
final class WireConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// What the connection reports for each finished request: when it was meant to start
    /// (seconds from the test's start), the sender's slot, and the outcome.
    typealias Completion = (_ intended: Double, _ slot: Int, _ outcome: LoadRecorder.Outcome) -> Void

    /// One request, encoded once: the gRPC message (5-byte prefix + protobuf).
    struct Encoded {
        let message: ByteBuffer
    }

    /// The stream window this client asks for (per stream) and keeps open (per connection).
    static let window = 16 << 20

    private let headers: HPACKHeaders
    private let completion: Completion
    private var context: ChannelHandlerContext?
    private var nextStreamID: Int32 = 1
    private var streams: [Int32: Stream] = [:]
    private var consumed = 0
    private var needsFlush = false
    /// Set when the connection closed or the server sent GOAWAY: requests fail at once.
    private(set) var closedReason: String?

    private struct Stream {
        var intended: Double
        var slot: Int
        var started: NIODeadline
        var body: ByteBuffer?
        var httpStatus: String?
    }

    /// A connection to `authority` whose requests carry `timeout` as `grpc-timeout`.
    init(authority: String, timeout: Duration, completion: @escaping Completion) {
        let millis = max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        headers = [
            ":method": "POST", ":scheme": "http", ":path": "/inference.GRPCInferenceService/ModelInfer",
            ":authority": authority, "content-type": "application/grpc", "te": "trailers",
            "grpc-timeout": "\(min(millis, 99_999_999))m", "user-agent": "fulcrum-loadtest",
        ]
        self.completion = completion
    }

    /// The SETTINGS this client sends: a large stream window, no server push.
    static var settings: HTTP2Settings {
        [HTTP2Setting(parameter: .initialWindowSize, value: window), HTTP2Setting(parameter: .enablePush, value: 0)]
    }

    /// The connection's channel, once the handler is in its pipeline.
    var channel: (any Channel)? { context?.channel }

    /// Requests in flight on this connection.
    var inFlight: Int { streams.count }

    /// Whether the connection is up and its preface and window update have gone out.
    private(set) var isActive = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            openWindow(context)
            isActive = true
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()  // the HTTP/2 handler writes its preface on this
        openWindow(context)
        isActive = true
    }

    private func openWindow(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: Self.window))), promise: nil)
    }

    /// Starts one request meant to start at `intended`; `intended` and `slot` come back with its
    /// outcome. Must run on the event loop. Call `flush()` after a burst of sends (a read burst
    /// flushes by itself).
    func send(_ request: Encoded, intended: Double, slot: Int) {
        guard let context, closedReason == nil, nextStreamID < Int32.max - 2 else {
            completion(intended, slot, .failed(code: "unavailable"))
            return
        }
        let id = HTTP2StreamID(nextStreamID)
        streams[nextStreamID] = Stream(intended: intended, slot: slot, started: .now())
        nextStreamID += 2
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers)))), promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(request.message), endStream: true)))), promise: nil)
        needsFlush = true
    }

    /// Flushes what `send` wrote.
    func flush() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Fails (as `deadlineExceeded`, and resets) every request older than `limit`.
    func expire(olderThan limit: Duration) {
        guard let context else { return }
        let cutoff = NIODeadline.now() - TimeAmount.nanoseconds(Int64(limit.components.seconds) * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000)
        let late = streams.filter { $0.value.started < cutoff }
        for (id, stream) in late {
            streams[id] = nil
            context.write(wrapOutboundOut(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .rstStream(.cancel))), promise: nil)
            complete(stream, .failed(code: "deadlineExceeded"))
        }
        if !late.isEmpty { context.flush() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let id = Int32(frame.streamID)
        switch frame.payload {
        case .headers(let h):
            guard streams[id] != nil else { return }
            if let status = h.headers.first(name: ":status") {
                streams[id]!.httpStatus = status
            }
            if h.endStream {
                finish(id, trailers: h.headers)
            }
        case .data(let d):
            consumed += d.data.readableBytes
            if consumed >= Self.window / 2 {
                context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: consumed))), promise: nil)
                consumed = 0
            }
            guard streams[id] != nil, case .byteBuffer(var bytes) = d.data else { return }
            if streams[id]!.body == nil {
                streams[id]!.body = bytes
            } else {
                streams[id]!.body!.writeBuffer(&bytes)
            }
            if d.endStream {
                finish(id, trailers: [:])
            }
        case .rstStream(let code):
            if let stream = streams.removeValue(forKey: id) {
                complete(stream, .failed(code: code == .refusedStream ? "unavailable" : "cancelled"))
            }
        case .goAway(let lastStreamID, let code, let debug):
            let detail = debug.map { String(buffer: $0) }.map { $0.isEmpty ? "" : ": \($0.prefix(200))" } ?? ""
            closedReason = "the server sent GOAWAY (\(code)\(detail))"
            let last = Int32(lastStreamID)
            var failed = 0
            for (streamID, stream) in streams where streamID > last {
                streams[streamID] = nil
                complete(stream, .failed(code: "unavailable"))
                failed += 1
            }
            Self.note("\(closedReason!); \(failed) requests it had not started failed as unavailable")
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closedReason = closedReason ?? "the connection closed"
        let failed = streams
        streams = [:]
        if !failed.isEmpty { Self.note("the connection closed (\(closedReason!)); \(failed.count) requests in flight failed as unavailable") }
        for (_, stream) in failed {
            complete(stream, .failed(code: "unavailable"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream-level protocol error fails that stream; anything else closes the connection.
        if let streamError = error as? NIOHTTP2Errors.StreamError, let stream = streams.removeValue(forKey: Int32(streamError.streamID)) {
            complete(stream, .failed(code: "internal"))
            return
        }
        closedReason = closedReason ?? "\(error)"
        context.close(promise: nil)
    }

    /// A connection's end, on stderr: the report counts the failures, this says why they came.
    private static func note(_ line: String) {
        FileHandle.standardError.write(Data("fulcrum loadtest: \(line)\n".utf8))
    }

    private func complete(_ stream: Stream, _ outcome: LoadRecorder.Outcome) {
        completion(stream.intended, stream.slot, outcome)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
        context.fireChannelReadComplete()
    }

    /// Classifies a finished stream by its trailers (`grpc-status`) and message.
    private func finish(_ id: Int32, trailers: HPACKHeaders) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        if let http = stream.httpStatus, http != "200" {
            complete(stream, .failed(code: "http(\(http))"))
            return
        }
        guard let status = trailers.first(name: "grpc-status").flatMap({ Int($0) }) else {
            complete(stream, .failed(code: "internal"))
            return
        }
        guard status == 0 else {
            complete(stream, .failed(code: Self.codeName(status)))
            return
        }
        complete(stream, .ok(Self.breakdown(stream.body)))
    }

    /// The timing breakdown in a Fulcrum response's parameters (nil for other servers).
    static func breakdown(_ body: ByteBuffer?) -> LoadRecorder.Breakdown? {
        guard var body, let compressed = body.readInteger(as: UInt8.self), compressed == 0,
            let length = body.readInteger(as: UInt32.self), let bytes = body.readBytes(length: Int(length)),
            let response = try? Inference_ModelInferResponse(serializedBytes: bytes)
        else { return nil }
        guard response.parameters[ResponseParameters.compute] != nil else { return nil }
        var micros: [BreakdownPart: UInt64] = [:]
        for part in BreakdownPart.allCases {
            if let value = response.parameters[part.parameterKey]?.integerValue, value >= 0 { micros[part] = UInt64(value) }
        }
        var steps: [String: UInt64] = [:]
        for (key, parameter) in response.parameters where key.hasPrefix("fulcrum.step.") && key.hasSuffix("_us") {
            if let value = parameter.integerValue, value >= 0 {
                steps[String(key.dropFirst("fulcrum.step.".count).dropLast(3))] = UInt64(value)
            }
        }
        return LoadRecorder.Breakdown(micros, steps: steps)
    }

    /// grpc-swift's spelling of a status code, as the gRPC-client path recorded them.
    static func codeName(_ status: Int) -> String {
        let names = [
            1: "cancelled", 2: "unknown", 3: "invalidArgument", 4: "deadlineExceeded", 5: "notFound", 6: "alreadyExists",
            7: "permissionDenied", 8: "resourceExhausted", 9: "failedPrecondition", 10: "aborted", 11: "outOfRange",
            12: "unimplemented", 13: "internalError", 14: "unavailable", 15: "dataLoss", 16: "unauthenticated",
        ]
        return names[status] ?? "status(\(status))"
    }
}

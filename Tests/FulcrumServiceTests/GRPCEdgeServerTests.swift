import FulcrumProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import ServiceLifecycle
import Synchronization
import Testing

@testable import FulcrumService

/// `GRPCEdgeServer` on a real port, called by grpc-swift's client: ModelInfer answered on the
/// fast path (answers, statuses with metadata, headers passed to the handler), other methods
/// relayed to grpc-swift on the inner socket (served, and UNIMPLEMENTED when not registered).
@Suite struct GRPCEdgeServerTests {
    private static func withServer(
        maxMessageBytes: Int = 1 << 20,
        handler: @escaping ModelInferHandler,
        _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void
    ) async throws {
        let bound = OnceValue<HostPort>()
        let health = HealthService(services: ["inference.GRPCInferenceService"]) { true }
        let server = GRPCEdgeServer(
            address: HostPort(host: "127.0.0.1", port: 0), maxMessageBytes: maxMessageBytes, services: [health],
            modelInfer: handler, logger: Logger(label: "test")
        ) { bound.set($0) }
        let group = ServiceGroup(services: [server], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let address = await bound.value
            let client = try GRPCTransport.client(address)
            tasks.addTask { try await client.runConnections() }
            do {
                try await body(client)
            } catch {
                client.beginGracefulShutdown()
                await group.triggerGracefulShutdown()
                throw error
            }
            client.beginGracefulShutdown()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func modelInferIsAnsweredOnTheFastPathWithTheCallersHeaders() async throws {
        try await Self.withServer(handler: { request, metadata in
            var response = Inference_ModelInferResponse()
            response.modelName = request.modelName
            response.id = metadata[stringValues: "x-probe"].first(where: { _ in true }) ?? "none"
            response.rawOutputContents = request.rawInputContents
            return response
        }) { client in
            var request = Inference_ModelInferRequest()
            request.modelName = "simple"
            request.rawInputContents = [Data(repeating: 7, count: 100_000)]
            let inference = Inference_GRPCInferenceService.Client(wrapping: client)
            var metadata: Metadata = [:]
            metadata.addString("probe-1", forKey: "x-probe")
            for _ in 0..<3 {
                let response = try await inference.modelInfer(request, metadata: metadata)
                #expect(response.modelName == "simple")
                #expect(response.id == "probe-1")
                #expect(response.rawOutputContents == request.rawInputContents)
            }
        }
    }

    @Test func aHandlersErrorIsTheCallsStatusWithItsMetadata() async throws {
        try await Self.withServer(handler: { _, _ in
            var metadata: Metadata = [:]
            metadata.addString("queue-full", forKey: RejectionMetadata.key)
            throw RPCError(code: .resourceExhausted, message: "queue full: 100% ünïcode", metadata: metadata)
        }) { client in
            let inference = Inference_GRPCInferenceService.Client(wrapping: client)
            do {
                _ = try await inference.modelInfer(Inference_ModelInferRequest())
                Issue.record("expected an error")
            } catch let error as RPCError {
                #expect(error.code == .resourceExhausted)
                #expect(error.message == "queue full: 100% ünïcode")
                #expect(error.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) == "queue-full")
            }
        }
    }

    @Test func anOversizedRequestIsResourceExhausted() async throws {
        try await Self.withServer(maxMessageBytes: 1000, handler: { _, _ in Inference_ModelInferResponse() }) { client in
            var request = Inference_ModelInferRequest()
            request.rawInputContents = [Data(repeating: 1, count: 50_000)]
            let inference = Inference_GRPCInferenceService.Client(wrapping: client)
            do {
                _ = try await inference.modelInfer(request)
                Issue.record("expected an error")
            } catch let error as RPCError {
                #expect(error.code == .resourceExhausted)
            }
        }
    }

    @Test func otherMethodsAreRelayedToGRPCSwift() async throws {
        try await Self.withServer(handler: { _, _ in Inference_ModelInferResponse() }) { client in
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            var check = Grpc_Health_V1_HealthCheckRequest()
            check.service = "inference.GRPCInferenceService"
            for _ in 0..<3 {
                #expect(try await health.check(check).status == .serving)
            }
            // Not registered on the inner server: grpc-swift's own UNIMPLEMENTED comes back.
            do {
                _ = try await Inference_GRPCInferenceService.Client(wrapping: client).serverLive(Inference_ServerLiveRequest())
                Issue.record("expected UNIMPLEMENTED")
            } catch let error as RPCError {
                #expect(error.code == .unimplemented)
            }
        }
    }
}

/// `EdgeConnection` on an `EmbeddedChannel`: how malformed ModelInfer calls are answered, frame
/// by frame, and `decodeRequest` on every way a request's message can be wrong.
@Suite struct EdgeConnectionTests {
    private func connection(
        maxMessageBytes: Int = 1 << 16, limits: EdgeLimits = EdgeLimits(), budget: EdgeBudget? = nil, shed: EdgeShedding? = nil
    ) throws -> EmbeddedChannel {
        let edge = EdgeConnection(
            configuration: .init(
                maxMessageBytes: maxMessageBytes, modelInfer: { _, _ in Inference_ModelInferResponse() }, shed: shed, relaySocket: "/nonexistent",
                limits: limits, budget: budget ?? EdgeBudget(maxBytes: limits.maxArrivingBytes)))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(edge)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        return channel
    }

    private func outbound(_ channel: EmbeddedChannel) throws -> [HTTP2Frame] {
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames.filter { if case .windowUpdate = $0.payload { return false } else { return true } }
    }

    private func headers(_ extra: [(String, String)] = [], method: String = "POST") -> HPACKHeaders {
        var headers: HPACKHeaders = [
            ":method": method, ":scheme": "http", ":path": EdgeConnection.modelInferPath, ":authority": "x",
            "content-type": "application/grpc", "te": "trailers",
        ]
        for (name, value) in extra { headers.add(name: name, value: value) }
        return headers
    }

    private func trailers(_ frame: HTTP2Frame) -> HPACKHeaders? {
        if case .headers(let h) = frame.payload, h.endStream { return h.headers }
        return nil
    }

    @Test func aRequestWithoutAMessageIsInternal() throws {
        let channel = try connection()
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers(), endStream: true))))
        let frames = try outbound(channel)
        #expect(frames.count == 1)
        #expect(trailers(frames[0])?.first(name: "grpc-status") == "13")
        #expect(trailers(frames[0])?.first(name: ":status") == "200")
    }

    @Test func compressionIsRefusedWithTheEncodingWeAccept() throws {
        let channel = try connection()
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers([("grpc-encoding", "gzip")]), endStream: false))))
        let frames = try outbound(channel)
        #expect(trailers(frames[0])?.first(name: "grpc-status") == "12")
        #expect(trailers(frames[0])?.first(name: "grpc-accept-encoding") == "identity")
        guard case .rstStream(.noError) = frames[1].payload else {
            Issue.record("expected RST_STREAM NO_ERROR, got \(frames[1].payload)")
            return
        }
    }

    @Test func aShedCallIsRefusedOnItsHeadersAndItsMessageIsDropped() throws {
        let full = Mutex(true)
        let asked = Mutex<[Duration?]>([])
        let channel = try connection(shed: { timeout in
            asked.withLock { $0.append(timeout) }
            return full.withLock { $0 }
                ? RPCError(code: .resourceExhausted, message: "full", metadata: ["grpc-retry-pushback-ms": "100"]) : nil
        })
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers([("grpc-timeout", "250m")])))))
        // The hook is told the call's deadline, to refuse a call that could not make it.
        #expect(asked.withLock { $0 } == [.milliseconds(250)])
        let frames = try outbound(channel)
        #expect(trailers(frames[0])?.first(name: "grpc-status") == "8")
        #expect(trailers(frames[0])?.first(name: "grpc-retry-pushback-ms") == "100")
        // Trailers-only and no RST_STREAM: a swift-nio-http2 client closes its connection after
        // 200 resets, and the message is usually on its way already.
        #expect(frames.count == 1)
        // Its message, still arriving, is read and dropped: no second answer.
        var message = ByteBuffer()
        message.writeBytes([0, 0, 0, 0, 0])
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(message), endStream: true))))
        #expect(try outbound(channel).isEmpty)
        // With room again, the next call's headers are taken and its message awaited.
        full.withLock { $0 = false }
        try channel.writeInbound(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: headers()))))
        #expect(try outbound(channel).isEmpty)
    }

    @Test func notGRPCIsAnHTTPError() throws {
        let channel = try connection()
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers(method: "GET"), endStream: true))))
        var plain = headers()
        plain.replaceOrAdd(name: "content-type", value: "text/plain")
        try channel.writeInbound(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: plain, endStream: true))))
        let frames = try outbound(channel)
        #expect(trailers(frames[0])?.first(name: ":status") == "405")
        #expect(trailers(frames[1])?.first(name: ":status") == "415")
    }

    @Test func anOversizedBodyIsRefusedWhileItArrives() throws {
        let channel = try connection(maxMessageBytes: 100)
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers()))))
        var chunk = ByteBuffer()
        chunk.writeRepeatingByte(0, count: 80)
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        #expect(try outbound(channel).isEmpty)
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        let frames = try outbound(channel)
        #expect(trailers(frames[0])?.first(name: "grpc-status") == "8")
        // Later data on the answered stream is read and dropped.
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk), endStream: true))))
        #expect(try outbound(channel).isEmpty)
    }

    private var shortLimits: EdgeLimits {
        var limits = EdgeLimits()
        limits.requestReadTimeout = .seconds(2)
        limits.idleTimeout = .seconds(10)
        return limits
    }

    @Test func aRequestThatNeverFinishesArrivingIsRefusedAfterTheReadTimeout() throws {
        let channel = try connection(limits: shortLimits)
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers()))))
        var chunk = ByteBuffer()
        chunk.writeRepeatingByte(0, count: 3)
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
        #expect(try outbound(channel).isEmpty, "still within the read timeout")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1000))
        let frames = try outbound(channel)
        #expect(trailers(frames[0])?.first(name: "grpc-status") == "4")  // DEADLINE_EXCEEDED
        #expect(trailers(frames[0])?.first(name: "grpc-message")?.contains("did not arrive in full") == true)
        #expect(channel.isActive, "the connection itself stays open")
    }

    @Test func aFrameThatNeverFinishesClosesTheConnection() throws {
        let channel = try connection(limits: shortLimits)
        try channel.writeInbound(HTTP2Frame(streamID: 0, payload: .ping(HTTP2PingData(withInteger: 1), ack: false)))
        // Raw bytes of a frame that never completes: EdgeReadStamp reports them, the HTTP/2
        // handler (absent here) would hold them.
        let edge = try channel.pipeline.syncOperations.handler(type: EdgeConnection.self)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        edge.readEnded(unfinished: true)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test func theReadStampFollowsFrameBoundariesInOneReadOrMany() throws {
        final class Swallow: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
        }
        let edge = EdgeConnection(configuration: .init(maxMessageBytes: 1024, modelInfer: { _, _ in Inference_ModelInferResponse() }, relaySocket: "/x"))
        let stamp = EdgeReadStamp(edge: edge)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(stamp)
        try channel.pipeline.syncOperations.addHandler(Swallow())
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
        let partialHeaders: [UInt8] = [0, 0, 0x40, 1, 4, 0, 0, 0, 1, 0x82]  // 64 bytes promised, 1 sent
        try channel.writeInbound(ByteBuffer(bytes: Array(preface.prefix(10))))
        #expect(stamp.unfinished, "inside the preface")
        try channel.writeInbound(ByteBuffer(bytes: Array(preface.dropFirst(10)) + settings))
        #expect(!stamp.unfinished, "a whole SETTINGS frame")
        try channel.writeInbound(ByteBuffer(bytes: settings + partialHeaders))
        #expect(stamp.unfinished, "a frame cut short in the same read as a whole one")
        try channel.writeInbound(ByteBuffer(bytes: [UInt8](repeating: 0, count: 63)))
        #expect(!stamp.unfinished)
        // HEADERS without END_HEADERS: unfinished until a CONTINUATION with END_HEADERS.
        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 1, 1, 0, 0, 0, 0, 3, 0x82]))
        #expect(stamp.unfinished)
        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 1, 9, 4, 0, 0, 0, 3, 0x84]))
        #expect(!stamp.unfinished)
    }

    @Test func aSilentNewConnectionIsClosedButAQuietOneIsKeptUntilItsIdleTimeout() throws {
        let silent = try connection(limits: shortLimits)
        silent.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!silent.isActive, "no preface within the read timeout")

        let quiet = try connection(limits: shortLimits)
        try quiet.writeInbound(HTTP2Frame(streamID: 0, payload: .settings(.settings([]))))
        quiet.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(quiet.isActive, "an idle client is not a slow one")
        quiet.embeddedEventLoop.advanceTime(by: .seconds(2))
        let frames = try outbound(quiet)
        guard let last = frames.last, case .goAway(_, .noError, _) = last.payload else {
            Issue.record("expected GOAWAY after the idle timeout, got \(frames.map(\.payload))")
            return
        }
        #expect(!quiet.isActive)
    }

    @Test func bytesStillArrivingAreBoundedAcrossConnections() throws {
        let budget = EdgeBudget(maxBytes: 100)
        let first = try connection(maxMessageBytes: 1000, budget: budget)
        let second = try connection(maxMessageBytes: 1000, budget: budget)
        var chunk = ByteBuffer()
        chunk.writeRepeatingByte(0, count: 80)
        try first.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers()))))
        try first.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        #expect(budget.heldBytes == 80)
        try second.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers()))))
        try second.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        let refused = try outbound(second)
        #expect(trailers(refused[0])?.first(name: "grpc-status") == "8")
        #expect(trailers(refused[0])?.first(name: "fulcrum-rejected") == "admission")
        #expect(budget.heldBytes == 80)
        // The first call's reset returns its bytes.
        try first.writeInbound(HTTP2Frame(streamID: 1, payload: .rstStream(.cancel)))
        #expect(budget.heldBytes == 0)
        // Alone, a request larger than the budget still fits.
        var big = ByteBuffer()
        big.writeRepeatingByte(0, count: 150)
        try second.writeInbound(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: headers()))))
        try second.writeInbound(HTTP2Frame(streamID: 3, payload: .data(.init(data: .byteBuffer(big)))))
        #expect(budget.heldBytes == 150)
        try second.close().wait()
        #expect(budget.heldBytes == 0, "a closed connection returns what its calls held")
    }

    @Test func decodingChecksEveryPartOfTheMessage() throws {
        func body(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }
        func code(_ buffer: ByteBuffer?, limit: Int = 1000) -> RPCError.Code? {
            if case .failure(let error) = EdgeConnection.decodeRequest(buffer, maxMessageBytes: limit) { return error.code }
            return nil
        }
        var request = Inference_ModelInferRequest()
        request.modelName = "simple"
        let good = try GRPCWire.frame(request)
        #expect(code(good) == nil)
        #expect(code(nil) == .internalError)  // no message
        #expect(code(body([0, 0, 0])) == .internalError)  // a partial prefix
        #expect(code(body([1, 0, 0, 0, 0])) == .internalError)  // compressed without an encoding
        #expect(code(body([0, 0xFF, 0xFF, 0xFF, 0xFF])) == .resourceExhausted)  // 4 GiB declared
        #expect(code(body([0, 0, 0, 0, 9, 1, 2])) == .internalError)  // truncated
        var twice = good
        var again = good
        twice.writeBuffer(&again)
        #expect(code(twice) == .internalError)  // two messages on a unary call
        #expect(code(body([0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF])) == .invalidArgument)  // not protobuf
    }
}

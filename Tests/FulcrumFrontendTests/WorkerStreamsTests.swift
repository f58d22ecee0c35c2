import FulcrumProtocol
import FulcrumService
import GRPCCore
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Synchronization
import Testing

@testable import FulcrumFrontend

/// `WorkerStreams` on an `EmbeddedChannel`: the frames a forwarded call writes, and what the
/// caller gets for each way a worker (or a broken peer) can answer — the frames a
/// `NIOHTTP2Handler` would hand it.
@Suite struct WorkerStreamsTests {
    private final class Results: Sendable {
        let list = Mutex<[Result<Inference_ModelInferResponse, RPCError>]>([])
        var all: [Result<Inference_ModelInferResponse, RPCError>] { list.withLock { $0 } }
        func record(_ result: Result<Inference_ModelInferResponse, RPCError>) { list.withLock { $0.append(result) } }
        func code(_ index: Int) -> RPCError.Code? {
            if case .failure(let error) = all[index] { return error.code }
            return nil
        }
    }

    private func streams(maxMessageBytes: Int = 1 << 20) throws -> (WorkerStreams, EmbeddedChannel, Results) {
        let streams = WorkerStreams(authority: "127.0.0.1:9000", maxMessageBytes: maxMessageBytes)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(streams)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        return (streams, channel, Results())
    }

    private func start(_ streams: WorkerStreams, _ results: Results, timeout: Duration? = nil, metadata: [(String, String)] = []) throws {
        var request = Inference_ModelInferRequest()
        request.modelName = "simple"
        request.modelVersion = "1"
        streams.start(message: try GRPCWire.frame(request), metadata: metadata, timeout: timeout) { results.record($0) }
        streams.flush()
    }

    private func outbound(_ channel: EmbeddedChannel) throws -> [HTTP2Frame] {
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    private func message(_ response: Inference_ModelInferResponse) throws -> ByteBuffer {
        try GRPCWire.frame(response)
    }

    private func answer(_ channel: EmbeddedChannel, stream: HTTP2StreamID, body: ByteBuffer?, trailers: HPACKHeaders) throws {
        try channel.writeInbound(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: [":status": "200", "content-type": "application/grpc"]))))
        if let body { try channel.writeInbound(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(body))))) }
        try channel.writeInbound(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: trailers, endStream: true))))
    }

    @Test func aCallIsHeadersThenTheFramedMessageOnANewOddStream() throws {
        let (streams, channel, results) = try streams()
        let opened = try outbound(channel)
        guard case .windowUpdate(let increment) = opened.first?.payload else { Issue.record("\(opened)"); return }
        #expect(opened[0].streamID == .rootStream && increment == WorkerStreams.window)

        try start(streams, results, timeout: .milliseconds(250), metadata: [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        try start(streams, results)
        let frames = try outbound(channel)
        #expect(frames.map { Int($0.streamID) } == [1, 1, 3, 3])
        guard case .headers(let headers) = frames[0].payload, case .data(let data) = frames[1].payload,
            case .headers(let second) = frames[2].payload
        else { Issue.record("\(frames)"); return }
        #expect(headers.headers.first(name: ":path") == "/inference.GRPCInferenceService/ModelInfer")
        #expect(headers.headers.first(name: "content-type") == "application/grpc")
        #expect(headers.headers.first(name: "te") == "trailers")
        #expect(headers.headers.first(name: "grpc-timeout") == "250000u")
        #expect(headers.headers.first(name: "traceparent")?.hasPrefix("00-0af7") == true)
        #expect(second.headers.first(name: "grpc-timeout") == nil)
        #expect(!headers.endStream && data.endStream)
        guard case .byteBuffer(let body) = data.data else { Issue.record("not a byte buffer"); return }
        let decoded = try GRPCWire.decodeSingle(Inference_ModelInferRequest.self, from: body, maxMessageBytes: 1 << 20)
        #expect(decoded.modelName == "simple" && decoded.modelVersion == "1")
        #expect(streams.inFlight == 2)
    }

    @Test func anAnswerInPiecesDecodesAndStatusesPassThroughWithTheirMetadata() throws {
        let (streams, channel, results) = try streams()
        for _ in 0..<5 { try start(streams, results) }
        var response = Inference_ModelInferResponse()
        response.modelName = "simple"
        response.parameters[ResponseParameters.compute] = .int64(40)
        // Stream 1: the message split across two DATA frames.
        var body = try message(response)
        let head = body.readSlice(length: 3)!
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: [":status": "200"]))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(head)))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(body)))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: ["grpc-status": "0"], endStream: true))))
        // Stream 3: trailers-only UNAVAILABLE with Fulcrum's rejection metadata and a percent-encoded message.
        try channel.writeInbound(HTTP2Frame(
            streamID: 3,
            payload: .headers(.init(headers: [":status": "200", "grpc-status": "14", "grpc-message": "queue full %E2%9C%93 50%25", RejectionMetadata.key: "queue-full"], endStream: true))))
        // Stream 5: INVALID_ARGUMENT after headers.
        try answer(channel, stream: 5, body: nil, trailers: ["grpc-status": "3", "grpc-message": "bad shape"])
        // Stream 7: the worker refused the stream; stream 9: not gRPC at all.
        try channel.writeInbound(HTTP2Frame(streamID: 7, payload: .rstStream(.refusedStream)))
        try channel.writeInbound(HTTP2Frame(streamID: 9, payload: .headers(.init(headers: [":status": "503"], endStream: true))))

        let all = results.all
        #expect(all.count == 5 && streams.inFlight == 0)
        guard case .success(let decoded) = all[0] else { Issue.record("\(all[0])"); return }
        #expect(decoded.modelName == "simple" && decoded.parameters[ResponseParameters.compute]?.integerValue == 40)
        guard case .failure(let rejected) = all[1] else { Issue.record("\(all[1])"); return }
        #expect(rejected.code == .unavailable && rejected.message == "queue full ✓ 50%")
        #expect(rejected.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) == "queue-full")
        #expect(results.code(2) == .invalidArgument)
        #expect(results.code(3) == .unavailable)
        #expect(results.code(4) == .unavailable)
    }

    @Test func malformedAnswersFailTheirCallOnly() throws {
        let (streams, channel, results) = try streams(maxMessageBytes: 64)
        for _ in 0..<7 { try start(streams, results) }
        _ = try outbound(channel)
        // 1: OK status but no message.
        try answer(channel, stream: 1, body: nil, trailers: ["grpc-status": "0"])
        // 3: a prefix that declares more bytes than follow (truncated message).
        var truncated = ByteBuffer()
        truncated.writeInteger(UInt8(0)); truncated.writeInteger(UInt32(40)); truncated.writeBytes([1, 2, 3])
        try answer(channel, stream: 3, body: truncated, trailers: ["grpc-status": "0"])
        // 5: a compressed message nobody asked for.
        var compressed = ByteBuffer()
        compressed.writeInteger(UInt8(1)); compressed.writeInteger(UInt32(0))
        try answer(channel, stream: 5, body: compressed, trailers: ["grpc-status": "0"])
        // 7: bytes that are not a ModelInferResponse.
        var garbage = ByteBuffer()
        garbage.writeInteger(UInt8(0)); garbage.writeInteger(UInt32(3)); garbage.writeBytes([0xFF, 0xFF, 0xFF])
        try answer(channel, stream: 7, body: garbage, trailers: ["grpc-status": "0"])
        // 9: more than the message limit: failed and reset as soon as it is over.
        try channel.writeInbound(HTTP2Frame(streamID: 9, payload: .headers(.init(headers: [":status": "200"]))))
        try channel.writeInbound(HTTP2Frame(streamID: 9, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 0, count: 100))))))
        // 11: no grpc-status; 13: a status that is not a number.
        try answer(channel, stream: 11, body: nil, trailers: ["x": "y"])
        try answer(channel, stream: 13, body: nil, trailers: ["grpc-status": "fourteen"])

        #expect((0..<7).map { results.code($0) } == [
            .internalError, .internalError, .internalError, .internalError, .resourceExhausted, .internalError, .internalError,
        ])
        let resets = try outbound(channel).filter { if case .rstStream = $0.payload { return true } else { return false } }
        #expect(resets.map { Int($0.streamID) } == [9])
        // Frames for finished or unknown streams are ignored.
        try channel.writeInbound(HTTP2Frame(streamID: 9, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 0, count: 10))))))
        try channel.writeInbound(HTTP2Frame(streamID: 99, payload: .headers(.init(headers: ["grpc-status": "0"], endStream: true))))
        #expect(results.all.count == 7 && streams.inFlight == 0)
    }

    @Test func goAwayAndCloseFailCallsUnavailableSoTheFrontendRetries() throws {
        let (streams, channel, results) = try streams()
        for _ in 0..<3 { try start(streams, results) }
        try channel.writeInbound(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: 1, errorCode: .noError, opaqueData: nil)))
        #expect(results.all.count == 2 && results.code(0) == .unavailable && results.code(1) == .unavailable)
        #expect(!streams.accepting)
        try start(streams, results)
        #expect(results.all.count == 3 && results.code(2) == .unavailable)
        _ = try channel.close().wait()
        #expect(results.all.count == 4 && results.code(3) == .unavailable && streams.inFlight == 0)
    }

    @Test func aDeadlineFailsTheCallAndResetsItsStream() throws {
        let (streams, channel, results) = try streams()
        _ = try outbound(channel)
        try start(streams, results, timeout: .milliseconds(5))
        _ = try outbound(channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(6))
        #expect(results.all.count == 1 && results.code(0) == .deadlineExceeded)
        let frames = try outbound(channel)
        guard case .rstStream(let code) = frames.last?.payload else { Issue.record("\(frames)"); return }
        #expect(code == .cancel && frames.last?.streamID == 1)
        // The late answer is dropped.
        try answer(channel, stream: 1, body: nil, trailers: ["grpc-status": "0"])
        #expect(results.all.count == 1)
    }

    @Test func cancellingACallResetsItsStream() throws {
        let (streams, channel, results) = try streams()
        _ = try outbound(channel)
        let id = streams.upcomingStreamID
        try start(streams, results)
        _ = try outbound(channel)
        streams.cancel(id)
        #expect(results.code(0) == .cancelled)
        let frames = try outbound(channel)
        guard case .rstStream = frames.first?.payload else { Issue.record("\(frames)"); return }
    }

    @Test func windowsAreReplenishedForTheConnectionAndTheStream() throws {
        let (streams, channel, results) = try streams(maxMessageBytes: 64 << 20)
        _ = try outbound(channel)
        try start(streams, results)
        _ = try outbound(channel)
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: [":status": "200"]))))
        let chunk = ByteBuffer(repeating: 0, count: WorkerStreams.window / 4)
        for _ in 0..<2 {
            try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        }
        let updates = try outbound(channel).compactMap { frame -> (Int, Int)? in
            if case .windowUpdate(let n) = frame.payload { return (Int(frame.streamID), n) }
            return nil
        }
        #expect(updates.map(\.0).sorted() == [0, 1])
        #expect(updates.allSatisfy { $0.1 == WorkerStreams.window / 2 })
    }
}

import FulcrumProtocol
import FulcrumService
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Synchronization
import Testing

@testable import FulcrumLoad

/// `WireConnection` on an `EmbeddedChannel`: the frames it writes for a request, and how it
/// classifies what a server answers (the frames a `NIOHTTP2Handler` would hand it).
@Suite struct WireConnectionTests {
    private final class Outcomes: Sendable {
        let list = Mutex<[(Double, Int, LoadRecorder.Outcome)]>([])
        var all: [(Double, Int, LoadRecorder.Outcome)] { list.withLock { $0 } }
    }

    private func connection() throws -> (WireConnection, EmbeddedChannel, Outcomes) {
        let outcomes = Outcomes()
        let connection = WireConnection(authority: "127.0.0.1:8001", timeout: .milliseconds(2500)) { intended, slot, outcome in
            outcomes.list.withLock { $0.append((intended, slot, outcome)) }
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8001)).wait()
        return (connection, channel, outcomes)
    }

    private func encoded(_ request: Inference_ModelInferRequest) throws -> WireConnection.Encoded {
        let bytes: [UInt8] = try request.serializedBytes()
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
        return WireConnection.Encoded(message: buffer)
    }

    private func grpcMessage(_ response: Inference_ModelInferResponse) throws -> ByteBuffer {
        let bytes: [UInt8] = try response.serializedBytes()
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
        return buffer
    }

    private func outbound(_ channel: EmbeddedChannel) throws -> [HTTP2Frame] {
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    @Test func aRequestIsHeadersThenDataOnANewOddStream() throws {
        let (connection, channel, _) = try connection()
        let opened = try outbound(channel)
        #expect(opened.count == 1)
        guard case .windowUpdate(let increment) = opened[0].payload else { Issue.record("\(opened)"); return }
        #expect(opened[0].streamID == .rootStream && increment == WireConnection.window)

        var request = Inference_ModelInferRequest()
        request.modelName = "simple"
        connection.send(try encoded(request), intended: 0.5, slot: 0)
        connection.send(try encoded(request), intended: 0.6, slot: 0)
        #expect(try outbound(channel).isEmpty)  // nothing goes out before the flush
        connection.flush()
        let frames = try outbound(channel)
        #expect(frames.map { Int($0.streamID) } == [1, 1, 3, 3])
        guard case .headers(let headers) = frames[0].payload, case .data(let data) = frames[1].payload else {
            Issue.record("\(frames)"); return
        }
        #expect(headers.headers.first(name: ":path") == "/inference.GRPCInferenceService/ModelInfer")
        #expect(headers.headers.first(name: "content-type") == "application/grpc")
        #expect(headers.headers.first(name: "grpc-timeout") == "2500m")
        #expect(headers.headers.first(name: ":authority") == "127.0.0.1:8001")
        #expect(!headers.endStream && data.endStream)
        guard case .byteBuffer(var body) = data.data else { Issue.record("not a byte buffer"); return }
        let compressed = body.readInteger(as: UInt8.self)
        #expect(compressed == 0)
        let prefix = body.readInteger(as: UInt32.self)
        let length = try #require(prefix)
        let bytes = body.readBytes(length: Int(length))
        let decoded = try Inference_ModelInferRequest(serializedBytes: try #require(bytes))
        #expect(decoded.modelName == "simple")
        #expect(connection.inFlight == 2)
    }

    @Test func answersAreClassifiedByTheirTrailersAndCarryTheBreakdown() throws {
        let (connection, channel, outcomes) = try connection()
        _ = try outbound(channel)
        let request = try encoded(Inference_ModelInferRequest())
        for i in 0..<4 { connection.send(request, intended: Double(i), slot: i) }

        var response = Inference_ModelInferResponse()
        response.parameters[ResponseParameters.compute] = .int64(40)
        response.parameters[ResponseParameters.queue] = .int64(7)
        response.parameters["fulcrum.step.1.simple_us"] = .int64(120)
        response.parameters["fulcrum.step.2.rank_top_us"] = .int64(30)
        // Stream 1: 200, a message in two DATA frames, trailers with grpc-status 0.
        var message = try grpcMessage(response)
        let first = message.readSlice(length: 3)!
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: [":status": "200", "content-type": "application/grpc"]))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(first)))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(message)))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: ["grpc-status": "0"], endStream: true))))
        // Stream 3: trailers-only UNAVAILABLE (queue full).
        try channel.writeInbound(
            HTTP2Frame(streamID: 3, payload: .headers(.init(headers: [":status": "200", "grpc-status": "14", "grpc-message": "full"], endStream: true))))
        // Stream 5: reset by the server.
        try channel.writeInbound(HTTP2Frame(streamID: 5, payload: .rstStream(.refusedStream)))
        // Stream 7: not gRPC at all.
        try channel.writeInbound(HTTP2Frame(streamID: 7, payload: .headers(.init(headers: [":status": "503"], endStream: true))))

        let all = outcomes.all
        #expect(all.map(\.0) == [0, 1, 2, 3] && all.map(\.1) == [0, 1, 2, 3])
        #expect(all[0].2 == .ok(LoadRecorder.Breakdown([.compute: 40, .queue: 7], steps: ["1.simple": 120, "2.rank_top": 30])))
        #expect(all[1].2 == .failed(code: "unavailable"))
        #expect(all[2].2 == .failed(code: "unavailable"))
        #expect(all[3].2 == .failed(code: "http(503)"))
        #expect(connection.inFlight == 0)
    }

    @Test func goAwayAndACloseFailWhatIsInFlightAndWhatFollows() throws {
        let (connection, channel, outcomes) = try connection()
        let request = try encoded(Inference_ModelInferRequest())
        for i in 0..<3 { connection.send(request, intended: Double(i), slot: 0) }
        // The server will finish stream 1 but no later one.
        try channel.writeInbound(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: 1, errorCode: .noError, opaqueData: nil)))
        #expect(outcomes.all.map(\.2) == [.failed(code: "unavailable"), .failed(code: "unavailable")])
        connection.send(request, intended: 9, slot: 0)
        #expect(outcomes.all.count == 3 && outcomes.all[2].0 == 9)
        _ = try channel.close().wait()
        #expect(outcomes.all.count == 4 && connection.inFlight == 0)
    }

    @Test func connectionWindowIsReplenishedAsResponsesArrive() throws {
        let (connection, channel, _) = try connection()
        _ = try outbound(channel)
        connection.send(try encoded(Inference_ModelInferRequest()), intended: 0, slot: 0)
        connection.flush()
        _ = try outbound(channel)
        let chunk = ByteBuffer(repeating: 0, count: WireConnection.window / 4)
        for _ in 0..<2 {
            try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))))
        }
        let updates = try outbound(channel).compactMap { frame -> Int? in
            if case .windowUpdate(let n) = frame.payload, frame.streamID == .rootStream { return n }
            return nil
        }
        #expect(updates == [WireConnection.window / 2])
    }
}

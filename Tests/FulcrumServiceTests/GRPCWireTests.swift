import FulcrumProtocol
import GRPCCore
import NIOCore
import Testing

@testable import FulcrumService

@Suite struct GRPCWireTests {
    @Test func timeoutsUseTheFinestUnitWithinEightDigitsAndNeverShorten() {
        #expect(GRPCWire.timeoutHeader(.nanoseconds(1)) == "1n")
        #expect(GRPCWire.timeoutHeader(.milliseconds(250)) == "250000u")
        #expect(GRPCWire.timeoutHeader(.seconds(99)) == "99000000u")
        #expect(GRPCWire.timeoutHeader(.seconds(200)) == "200000m")
        #expect(GRPCWire.timeoutHeader(.seconds(200_000)) == "200000S")
        #expect(GRPCWire.timeoutHeader(.nanoseconds(100_000_001)) == "100001u")  // rounded up
        #expect(GRPCWire.timeoutHeader(.zero) == "1n")
        #expect(GRPCWire.timeoutHeader(.seconds(Int64.max)) == "99999999H")
    }

    @Test func percentDecodingKeepsMalformedEscapes() {
        #expect(GRPCWire.percentDecoded("plain") == "plain")
        #expect(GRPCWire.percentDecoded("a%20b%25") == "a b%")
        #expect(GRPCWire.percentDecoded("%E2%9C%93") == "✓")
        #expect(GRPCWire.percentDecoded("100%") == "100%")
        #expect(GRPCWire.percentDecoded("%zz%4") == "%zz%4")
    }

    @Test func aFramedMessageRoundTripsAndTrailingBytesAreRefused() throws {
        var response = Inference_ModelInferResponse()
        response.id = "x"
        var framed = try GRPCWire.frame(response)
        #expect(try GRPCWire.decodeSingle(Inference_ModelInferResponse.self, from: framed, maxMessageBytes: 100).id == "x")
        framed.writeBytes([0])
        #expect(throws: RPCError.self) { try GRPCWire.decodeSingle(Inference_ModelInferResponse.self, from: framed, maxMessageBytes: 100) }
        var short = ByteBuffer()
        short.writeBytes([0, 0, 0])
        #expect(throws: RPCError.self) { try GRPCWire.decodeSingle(Inference_ModelInferResponse.self, from: short, maxMessageBytes: 100) }
        var huge = ByteBuffer()
        huge.writeInteger(UInt8(0)); huge.writeInteger(UInt32.max)
        do {
            _ = try GRPCWire.decodeSingle(Inference_ModelInferResponse.self, from: huge, maxMessageBytes: 100)
            Issue.record("decoded a message over the limit")
        } catch {
            #expect(error.code == .resourceExhausted)
        }
    }

    @Test func statusesFromTrailers() {
        #expect(GRPCWire.status(in: ["grpc-status": "0"]) == nil)
        #expect(GRPCWire.status(in: ["grpc-status": "4", "grpc-message": "late"])?.code == .deadlineExceeded)
        #expect(GRPCWire.status(in: ["grpc-status": "17"])?.code == .internalError)
        #expect(GRPCWire.status(in: [:])?.code == .internalError)
        #expect(GRPCWire.status(httpStatus: "503").code == .unavailable)
        #expect(GRPCWire.status(httpStatus: "404").code == .unimplemented)
    }
}

import Foundation
import FulcrumProtocol
import FulcrumService
import GRPCCore
import Testing

@testable import FulcrumFrontend

/// The HTTP/REST codec: JSON and binary-extension requests into `ModelInferRequest`, responses
/// back out both ways, JSON parsing, and the gRPC-code-to-HTTP-status table.
@Suite struct HTTPInferJSONTests {
    // MARK: Helpers

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    private func le(_ values: [Float]) -> [UInt8] {
        le(values.map(\.bitPattern))
    }

    private func decodeFailure(_ body: [UInt8], headerLength: Int? = nil) -> HTTPFailure? {
        do {
            _ = try InferJSON.decodeRequest(body, headerLength: headerLength, model: "m", version: "")
            return nil
        } catch {
            return error
        }
    }

    private func parsed(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONParser.parse(bytes)
    }

    // MARK: Requests

    @Test func jsonRequestWithNestedDataBecomesRawLittleEndian() throws {
        let body = bytes("""
            {"id":"r1","parameters":{"priority":2,"timeout":5000,"binary_data_output":true},
             "inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"INT32","data":[[1,-2],[3,2147483647]]},
                       {"name":"F","shape":[2],"datatype":"FP32","data":[0.5,3]}],
             "outputs":[{"name":"OUTPUT0","parameters":{"binary_data":false,"classification":2}}]}
            """)
        let decoded = try InferJSON.decodeRequest(body, headerLength: nil, model: "simple", version: "1")
        let request = decoded.request
        #expect(request.modelName == "simple")
        #expect(request.modelVersion == "1")
        #expect(request.id == "r1")
        #expect(request.parameters["priority"]?.int64Param == 2)
        #expect(request.parameters["timeout"]?.int64Param == 5000)
        #expect(request.parameters["binary_data_output"] == nil, "transport parameter must not be forwarded")
        #expect(request.inputs.map(\.name) == ["INPUT0", "F"])
        #expect(request.inputs[0].shape == [1, 4])
        #expect(request.inputs[0].datatype == "INT32")
        #expect(request.rawInputContents.count == 2)
        #expect([UInt8](request.rawInputContents[0]) == le([Int32(1), -2, 3, Int32.max]))
        #expect([UInt8](request.rawInputContents[1]) == le([Float(0.5), 3]))
        #expect(request.outputs.map(\.name) == ["OUTPUT0"])
        #expect(request.outputs[0].parameters["binary_data"] == nil)
        #expect(request.outputs[0].parameters["classification"]?.int64Param == 2)
        #expect(decoded.binaryByDefault)
        #expect(!decoded.wantsBinary("OUTPUT0"), "a per-output binary_data overrides the request-wide one")
        #expect(decoded.wantsBinary("OTHER"))
    }

    @Test func everyDatatypePacksAsTheProtocolSays() throws {
        #expect(try InferJSON.pack(.array([.bool(true), .bool(false), .int(1)]), datatype: "BOOL", input: "x") == [1, 0, 1])
        #expect(try InferJSON.pack(.array([.int(-1), .int(127)]), datatype: "INT8", input: "x") == [0xFF, 0x7F])
        #expect(try InferJSON.pack(.array([.int(258)]), datatype: "UINT16", input: "x") == [2, 1])
        #expect(try InferJSON.pack(.array([.int(-3)]), datatype: "INT64", input: "x") == le([Int64(-3)]))
        #expect(try InferJSON.pack(.array([.uint(UInt64.max)]), datatype: "UINT64", input: "x") == le([UInt64.max]))
        #expect(try InferJSON.pack(.array([.double(0.25)]), datatype: "FP64", input: "x") == le([Double(0.25).bitPattern]))
        #expect(try InferJSON.pack(.array([.string("hi"), .string("")]), datatype: "BYTES", input: "x") == [2, 0, 0, 0, 0x68, 0x69, 0, 0, 0, 0])
    }

    @Test func binaryRequestTakesTensorsAfterTheHeaderInInputOrder() throws {
        let header = bytes("""
            {"inputs":[{"name":"A","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}},
                       {"name":"B","shape":[1],"datatype":"INT32","data":[7]},
                       {"name":"C","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}
            """)
        let body = header + le([Int32(5), 6]) + le([Float(1.5)])
        let decoded = try InferJSON.decodeRequest(body, headerLength: header.count, model: "m", version: "")
        #expect(decoded.request.inputs.map(\.name) == ["A", "B", "C"])
        #expect(decoded.request.inputs[0].parameters["binary_data_size"] == nil)
        #expect([UInt8](decoded.request.rawInputContents[0]) == le([Int32(5), 6]))
        #expect([UInt8](decoded.request.rawInputContents[1]) == le([Int32(7)]))
        #expect([UInt8](decoded.request.rawInputContents[2]) == le([Float(1.5)]))
        #expect(!decoded.binaryByDefault)
    }

    @Test func binaryRequestSizesMustAddUp() {
        let header = bytes(#"{"inputs":[{"name":"A","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}]}"#)
        let short = decodeFailure(header + [1, 2, 3], headerLength: header.count)
        #expect(short?.status.code == 400)
        #expect(short?.message.contains("input 'A'") == true)
        let extra = decodeFailure(header + [UInt8](repeating: 0, count: 12), headerLength: header.count)
        #expect(extra?.message.contains("4 bytes of binary data") == true)
        let noHeader = decodeFailure(header)
        #expect(noHeader?.message.contains("Inference-Header-Content-Length") == true)
        let tooLong = decodeFailure(header, headerLength: header.count + 1)
        #expect(tooLong?.status.code == 400)
    }

    @Test func malformedRequestsAre400sNamingTheProblem() {
        #expect(decodeFailure(bytes("{"))?.message.contains("not valid JSON") == true)
        #expect(decodeFailure(bytes("[]"))?.message.contains("JSON object") == true)
        #expect(decodeFailure(bytes("{}"))?.message.contains("'inputs'") == true)
        let badElement = decodeFailure(bytes(#"{"inputs":[{"name":"IN","shape":[2],"datatype":"INT32","data":[1,"x"]}]}"#))
        #expect(badElement?.status.code == 400)
        #expect(badElement?.message.contains("input 'IN': data[1]") == true)
        let overflow = decodeFailure(bytes(#"{"inputs":[{"name":"IN","shape":[1],"datatype":"INT8","data":[300]}]}"#))
        #expect(overflow?.message.contains("INT8") == true)
        let fraction = decodeFailure(bytes(#"{"inputs":[{"name":"IN","shape":[1],"datatype":"INT32","data":[1.5]}]}"#))
        #expect(fraction?.message.contains("data[0]") == true)
        let half = decodeFailure(bytes(#"{"inputs":[{"name":"H","shape":[1],"datatype":"FP16","data":[1.0]}]}"#))
        #expect(half?.message.contains("binary") == true)
        let noData = decodeFailure(bytes(#"{"inputs":[{"name":"N","shape":[1],"datatype":"FP32"}]}"#))
        #expect(noData?.message.contains("input 'N'") == true)
        let badParameter = decodeFailure(bytes(#"{"parameters":{"p":[1]},"inputs":[]}"#))
        #expect(badParameter?.message.contains("parameter 'p'") == true)
    }

    // MARK: Responses

    private func response() -> Inference_ModelInferResponse {
        var response = Inference_ModelInferResponse()
        response.modelName = "simple"
        response.modelVersion = "1"
        response.id = "r1"
        response.parameters["fulcrum.compute_us"] = .int64(42)
        response.parameters["fulcrum.worker"] = .string("worker-1")
        for (name, values) in [("OUTPUT0", [Int32(3), -1]), ("OUTPUT1", [Int32(7), 8])] {
            var output = Inference_ModelInferResponse.InferOutputTensor()
            output.name = name
            output.datatype = "INT32"
            output.shape = [1, 2]
            response.outputs.append(output)
            response.rawOutputContents.append(Data(le(values)))
        }
        return response
    }

    @Test func jsonResponseCarriesDataAndTimingParameters() throws {
        let decoded = InferJSON.DecodedRequest(request: Inference_ModelInferRequest())
        let encoded = try InferJSON.encodeResponse(response(), for: decoded)
        #expect(encoded.headerLength == nil)
        let json = try parsed(encoded.body)
        #expect(json["model_name"] == .string("simple"))
        #expect(json["model_version"] == .string("1"))
        #expect(json["id"] == .string("r1"))
        #expect(json["parameters"]?["fulcrum.compute_us"] == .int(42))
        #expect(json["parameters"]?["fulcrum.worker"] == .string("worker-1"))
        guard case .array(let outputs) = json["outputs"] else {
            Issue.record("no outputs array")
            return
        }
        #expect(outputs.count == 2)
        #expect(outputs[0]["name"] == .string("OUTPUT0"))
        #expect(outputs[0]["shape"] == .array([.int(1), .int(2)]))
        #expect(outputs[0]["datatype"] == .string("INT32"))
        #expect(outputs[0]["data"] == .array([.int(3), .int(-1)]))
        #expect(outputs[0]["parameters"] == nil)
    }

    @Test func binaryResponsePutsRequestedOutputsAfterTheHeader() throws {
        var decoded = InferJSON.DecodedRequest(request: Inference_ModelInferRequest())
        decoded.binaryByDefault = true
        decoded.binaryPerOutput["OUTPUT1"] = false
        let encoded = try InferJSON.encodeResponse(response(), for: decoded)
        let headerLength = try #require(encoded.headerLength)
        let json = try parsed(Array(encoded.body[0..<headerLength]))
        #expect(Array(encoded.body[headerLength...]) == le([Int32(3), -1]))
        guard case .array(let outputs) = json["outputs"] else {
            Issue.record("no outputs array")
            return
        }
        #expect(outputs[0]["parameters"]?["binary_data_size"] == .int(8))
        #expect(outputs[0]["data"] == nil)
        #expect(outputs[1]["data"] == .array([.int(7), .int(8)]))
        #expect(outputs[1]["parameters"] == nil)
    }

    @Test func outputsDecodeByDatatype() throws {
        #expect(try InferJSON.unpack(Data(le([Float(0.1), -2])), datatype: "FP32", output: "o") == .array([.float(0.1), .float(-2)]))
        #expect(try InferJSON.unpack(Data([1, 0]), datatype: "BOOL", output: "o") == .array([.bool(true), .bool(false)]))
        #expect(try InferJSON.unpack(Data([0x00, 0x3C]), datatype: "FP16", output: "o") == .array([.float(1)]))
        #expect(try InferJSON.unpack(Data([0x80, 0x3F]), datatype: "BF16", output: "o") == .array([.float(1)]))
        #expect(try InferJSON.unpack(Data([2, 0, 0, 0, 0x6F, 0x6B]), datatype: "BYTES", output: "o") == .array([.string("ok")]))
        #expect(throws: HTTPFailure.self) { try InferJSON.unpack(Data([1, 2, 3]), datatype: "INT32", output: "o") }
        #expect(String(decoding: JSONValue.array([.float(0.1), .double(2), .float(.nan)]).serialized, as: UTF8.self) == "[0.1,2.0,NaN]")
    }

    // MARK: JSON

    @Test func parserKeepsIntegersExactAndHandlesEscapes() throws {
        let value = try parsed(bytes(#" {"a":[9223372036854775807,18446744073709551615,-1,1e2,0.5],"s":"q\"\\\n\u00e9\ud83d\ude00","t":true,"n":null} "#))
        #expect(value["a"] == .array([.int(Int64.max), .uint(UInt64.max), .int(-1), .double(100), .double(0.5)]))
        #expect(value["s"] == .string("q\"\\\né😀"))
        #expect(value["t"] == .bool(true))
        #expect(value["n"] == .null)
        let text = JSONValue.object(["k": .string("a\"b\u{01}")]).serialized
        #expect(try parsed(text) == .object(["k": .string("a\"b\u{01}")]))
    }

    @Test func parserRejectsMalformedDocuments() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\\ud800\"", "[1] 2", "tru", "-"] {
            #expect(throws: JSONParser.Failure.self, "\(text)") { try JSONParser.parse(Array(text.utf8)) }
        }
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: JSONParser.maximumDepth + 1)
            + [UInt8](repeating: UInt8(ascii: "]"), count: JSONParser.maximumDepth + 1)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
    }

    @Test func parserSurvivesRandomBytes() {
        var state: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            return z ^ (z >> 31)
        }
        let alphabet = Array(#"{}[]":,-+.eE0123456789tfnNaIuly\ "#.utf8) + [0x00, 0xC3, 0xFF]
        for _ in 0..<2000 {
            let length = Int(next() % 24)
            let input = (0..<length).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            _ = try? JSONParser.parse(input)
            _ = try? InferJSON.decodeRequest(input, headerLength: nil, model: "m", version: "")
        }
    }

    // MARK: Errors

    @Test func grpcCodesMapToTheProtocolsHTTPStatuses() {
        let table: [(RPCError.Code, Int)] = [
            (.notFound, 404), (.invalidArgument, 400), (.unavailable, 503), (.unimplemented, 501),
            (.internalError, 500), (.resourceExhausted, 413), (.deadlineExceeded, 400), (.failedPrecondition, 400),
            (.permissionDenied, 403), (.unauthenticated, 401),
        ]
        for (code, status) in table {
            let failure = HTTPFailure(RPCError(code: code, message: "m"))
            #expect(failure.status.code == status, "\(code)")
            #expect(failure.message == "m")
        }
        // A refusal under load is 429 with Retry-After; a size limit stays 413 without it.
        let refusal = HTTPFailure(RPCError(code: .resourceExhausted, message: "m", metadata: [RejectionMetadata.key: "admission"]))
        #expect(refusal.status.code == 429 && refusal.retryAfter == 1)
        #expect(HTTPFailure(RPCError(code: .resourceExhausted, message: "m")).retryAfter == nil)
        #expect(HTTPFailure.badRequest("bad \"x\"").body == Array(#"{"error":"bad \"x\""}"#.utf8))
    }
}

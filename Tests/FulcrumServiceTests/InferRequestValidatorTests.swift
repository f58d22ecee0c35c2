import Foundation
import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import GRPCCore
import Testing

/// The signature of Triton's `simple` example: two INT32 [16] inputs, batching up to 8.
let simpleSignature = ModelSignature(
    name: "simple", version: "1", platform: "onnxruntime_onnx", maxBatchSize: 8,
    inputs: [.init(name: "INPUT0", dataType: .int32, dims: [16]), .init(name: "INPUT1", dataType: .int32, dims: [16])],
    outputs: [.init(name: "OUTPUT0", dataType: .int32, dims: [16]), .init(name: "OUTPUT1", dataType: .int32, dims: [16])]
)

func simpleRequest(batch: Int = 1, values: [Int32]? = nil) -> Inference_ModelInferRequest {
    var request = Inference_ModelInferRequest()
    request.modelName = "simple"
    for name in ["INPUT0", "INPUT1"] {
        var input = Inference_ModelInferRequest.InferInputTensor()
        input.name = name
        input.datatype = "INT32"
        input.shape = [Int64(batch), 16]
        request.inputs.append(input)
        let data = values ?? (0..<(batch * 16)).map { Int32($0) }
        request.rawInputContents.append(data.withUnsafeBytes { Data($0) })
    }
    return request
}

func expectInvalid(_ request: Inference_ModelInferRequest, mentioning words: [String]) {
    do {
        try InferRequestValidator.validate(request, against: simpleSignature)
        Issue.record("expected INVALID_ARGUMENT mentioning \(words)")
    } catch {
        #expect(error.code == .invalidArgument)
        for word in words {
            #expect(error.message.contains(word), "'\(error.message)' should mention '\(word)'")
        }
    }
}

@Suite struct InferRequestValidatorTests {
    @Test func acceptsAValidRequestAndReturnsItsBatch() throws {
        #expect(try InferRequestValidator.validate(simpleRequest(batch: 3), against: simpleSignature) == 3)
    }

    @Test func refusesUnknownAndMissingInputs() {
        var unknown = simpleRequest()
        unknown.inputs[1].name = "INPUT9"
        expectInvalid(unknown, mentioning: ["INPUT9", "INPUT1"])

        var missing = simpleRequest()
        missing.inputs.removeLast()
        missing.rawInputContents.removeLast()
        expectInvalid(missing, mentioning: ["missing input 'INPUT1'"])
    }

    @Test func refusesWrongDatatypeShapeAndBatch() {
        var datatype = simpleRequest()
        datatype.inputs[0].datatype = "FP32"
        expectInvalid(datatype, mentioning: ["INPUT0", "FP32", "INT32"])

        var shape = simpleRequest()
        shape.inputs[0].shape = [1, 15]
        expectInvalid(shape, mentioning: ["INPUT0", "[1,15]", "[-1,16]"])

        var rank = simpleRequest()
        rank.inputs[0].shape = [16]
        expectInvalid(rank, mentioning: ["INPUT0"])

        expectInvalid(simpleRequest(batch: 9), mentioning: ["INPUT0", "8"])
    }

    /// A shape whose product overflows Int64 once stopped the frontend and the worker (a trap in
    /// the validator): it must be an INVALID_ARGUMENT, raw or typed, however the overflow hides.
    @Test func refusesShapesWhoseElementCountOverflows() {
        let tokens = ModelSignature(
            name: "tokens", version: "1", platform: "onnxruntime_onnx", maxBatchSize: 8,
            inputs: [.init(name: "input_ids", dataType: .int64, dims: [-1, -1])],
            outputs: [.init(name: "scores", dataType: .fp32, dims: [-1])]
        )
        func request(shape: [Int64], typed: Bool) -> Inference_ModelInferRequest {
            var request = Inference_ModelInferRequest()
            request.modelName = "tokens"
            var input = Inference_ModelInferRequest.InferInputTensor()
            input.name = "input_ids"
            input.datatype = "INT64"
            input.shape = shape
            if typed {
                input.contents.int64Contents = [1, 2, 3, 4]
                request.inputs.append(input)
            } else {
                request.inputs.append(input)
                request.rawInputContents.append(Data(count: 32))
            }
            return request
        }
        let shapes: [[Int64]] = [
            [1, 4_611_686_018_427_387_904, 1],  // 2^62: × 8 bytes overflows
            [1, Int64.max, 2],
            [2, 3_037_000_500, 3_037_000_500],  // the product alone overflows
            [1, 0, Int64.max],  // a zero dimension must not hide the others
            [1, 65_536, 65_536],  // no overflow, but past the element limit
        ]
        for shape in shapes {
            for typed in [false, true] {
                do {
                    try InferRequestValidator.validate(request(shape: shape, typed: typed), against: tokens)
                    Issue.record("shape \(shape) (typed: \(typed)) was accepted")
                } catch {
                    #expect(error.code == .invalidArgument)
                    #expect(error.message.contains("more than \(InferRequestValidator.maximumElements) elements"), "\(error.message)")
                }
            }
        }
        // Just inside: the shapes that match the data still pass.
        #expect((try? InferRequestValidator.validate(request(shape: [1, 4, 1], typed: true), against: tokens)) == 1)
        #expect((try? InferRequestValidator.validate(request(shape: [2, 2, 1], typed: false), against: tokens)) == 2)
    }

    @Test func refusesRawByteCountsThatDoNotMatch() {
        var request = simpleRequest()
        request.rawInputContents[1] = Data(count: 60)
        expectInvalid(request, mentioning: ["INPUT1", "60 bytes", "64"])
    }

    @Test func refusesMixedTypedAndRawContents() {
        var request = simpleRequest()
        request.inputs[0].contents.intContents = Array(repeating: 1, count: 16)
        expectInvalid(request, mentioning: ["INPUT0", "mixed"])
    }

    @Test func acceptsTypedContentsAndChecksTheirCount() throws {
        var request = simpleRequest()
        request.rawInputContents = []
        request.inputs[0].contents.intContents = Array(repeating: 1, count: 16)
        request.inputs[1].contents.intContents = Array(repeating: 2, count: 16)
        #expect(try InferRequestValidator.validate(request, against: simpleSignature) == 1)
        let tensors = try TensorCodec.decodeInputs(request)
        #expect(tensors["INPUT1"]?.scalars(as: Int32.self) == Array(repeating: 2, count: 16))

        request.inputs[1].contents.intContents = [2]
        expectInvalid(request, mentioning: ["INPUT1", "1 values"])
    }

    @Test func refusesUnknownRequestedOutputs() {
        var request = simpleRequest()
        var output = Inference_ModelInferRequest.InferRequestedOutputTensor()
        output.name = "OUTPUT7"
        request.outputs = [output]
        expectInvalid(request, mentioning: ["OUTPUT7", "OUTPUT0"])
    }
}

@Suite struct TensorCodecTests {
    @Test func decodesRawInputsAndEncodesRequestedOutputs() throws {
        let request = simpleRequest(batch: 2)
        let inputs = try TensorCodec.decodeInputs(request)
        #expect(inputs["INPUT0"]?.shape == [2, 16])
        #expect(inputs["INPUT0"]?.scalars(as: Int32.self) == (0..<32).map { Int32($0) })

        var response = Inference_ModelInferResponse()
        var requested = Inference_ModelInferRequest.InferRequestedOutputTensor()
        requested.name = "OUTPUT1"
        let outputs = [
            "OUTPUT0": Tensor(shape: [1, 2], scalars: [Int32(7), 8]),
            "OUTPUT1": Tensor(shape: [1, 2], scalars: [Int32(-1), 1]),
        ]
        try TensorCodec.encodeOutputs(outputs, requested: [requested], signature: simpleSignature, into: &response)
        #expect(response.outputs.map(\.name) == ["OUTPUT1"])
        #expect(response.outputs[0].shape == [1, 2])
        #expect(response.rawOutputContents[0] == [Int32(-1), 1].withUnsafeBytes { Data($0) })
    }

    @Test func encodesEveryOutputInSignatureOrderWhenNoneAreNamed() throws {
        var response = Inference_ModelInferResponse()
        let outputs = [
            "OUTPUT1": Tensor(shape: [1, 1], scalars: [Int32(2)]),
            "OUTPUT0": Tensor(shape: [1, 1], scalars: [Int32(1)]),
        ]
        try TensorCodec.encodeOutputs(outputs, requested: [], signature: simpleSignature, into: &response)
        #expect(response.outputs.map(\.name) == ["OUTPUT0", "OUTPUT1"])
    }

    @Test func typedBytesContentsBecomeLengthPrefixedElements() throws {
        var contents = Inference_InferTensorContents()
        contents.bytesContents = [Data("ab".utf8), Data()]
        #expect(TensorCodec.typedElementCount(contents, dataType: .bytes) == 2)
        #expect(TensorCodec.typedElementCount(contents, dataType: .fp16) == nil)
    }
}

@Suite struct MessageLimitTests {
    @Test func refusesPayloadsOverTheLimitWithResourceExhausted() {
        let limit = MessageLimit(bytes: 100)
        #expect(throws: Never.self) { try limit.check(simpleRequest(batch: 1, values: Array(repeating: 0, count: 16)).trimmed(to: 0)) }
        do {
            try limit.check(simpleRequest(batch: 1))
            Issue.record("128 bytes of tensors passed a 100-byte limit")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.message.contains("100"))
        }
        #expect(limit.transportBytes > 100 + 64 * 1024 * 1024 - 1)
    }
}

extension Inference_ModelInferRequest {
    /// The request with only its first `count` inputs.
    fileprivate func trimmed(to count: Int) -> Self {
        var copy = self
        copy.inputs = Array(inputs.prefix(count))
        copy.rawInputContents = Array(rawInputContents.prefix(count))
        return copy
    }
}

@testable import FulcrumOperator
import FulcrumProtocol
import Foundation
import Testing

@Suite struct InferInputTests {
    var metadata: Inference_ModelMetadataResponse {
        var m = Inference_ModelMetadataResponse()
        m.name = "simple"
        for name in ["INPUT0", "INPUT1"] {
            var t = Inference_ModelMetadataResponse.TensorMetadata()
            t.name = name
            t.datatype = "INT32"
            t.shape = [-1, 16]
            m.inputs.append(t)
        }
        return m
    }

    @Test func buildsARawRequestWithBatchOne() throws {
        let values = (0..<16).map(String.init).joined(separator: ",")
        let request = try Infer.makeRequest(metadata: metadata, version: "", inputs: ["INPUT0=\(values)", "INPUT1=\(values)"])
        #expect(request.inputs.map(\.shape) == [[1, 16], [1, 16]])
        #expect(request.rawInputContents[0] == (0..<16).map { Int32($0) }.withUnsafeBytes { Data($0) })
    }

    @Test func explainsMistakes() {
        #expect(throws: OperatorError.self) { try Infer.makeRequest(metadata: metadata, version: "", inputs: ["INPUT0=1,2"]) }
        #expect(throws: OperatorError.self) { try Infer.makeRequest(metadata: metadata, version: "", inputs: ["INPUT0"]) }
        let sixteen = Array(repeating: "1", count: 16).joined(separator: ",")
        #expect(throws: OperatorError.self) {
            try Infer.makeRequest(metadata: metadata, version: "", inputs: ["INPUT0=\(sixteen)", "INPUT1=\(sixteen)", "EXTRA=1"])
        }
        #expect(throws: OperatorError.self) { try Infer.encode(["x"], datatype: "FP32", name: "a") }
    }

    @Test func infersOneVariableDimension() throws {
        #expect(try Infer.resolveShape([-1, -1], count: 6, name: "x") == [1, 6])
        #expect(try Infer.resolveShape([2, -1], count: 6, name: "x") == [2, 3])
        #expect(throws: OperatorError.self) { try Infer.resolveShape([-1, -1, -1], count: 6, name: "x") }
        #expect(throws: OperatorError.self) { try Infer.resolveShape([4], count: 6, name: "x") }
    }

    @Test func formatsOutputsAndTiming() {
        var response = Inference_ModelInferResponse()
        response.modelName = "simple"
        response.modelVersion = "1"
        var output = Inference_ModelInferResponse.InferOutputTensor()
        output.name = "OUTPUT0"
        output.datatype = "INT32"
        output.shape = [1, 2]
        response.outputs = [output]
        response.rawOutputContents = [[Int32(5), -6].withUnsafeBytes { Data($0) }]
        var compute = Inference_InferParameter()
        compute.int64Param = 42
        response.parameters["fulcrum.compute_us"] = compute
        let text = Infer.format(response)
        #expect(text.contains("OUTPUT0 INT32 [1,2]: 5, -6"))
        #expect(text.contains("compute 42 µs"))
    }
}

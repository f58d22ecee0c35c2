import FulcrumService
import FulcrumProtocol
import Foundation
import Testing

@Suite struct AnswerComparisonTests {
    func response(_ outputs: [(String, String, [Int64], Data)]) -> Inference_ModelInferResponse {
        var response = Inference_ModelInferResponse()
        for (name, datatype, shape, data) in outputs {
            var output = Inference_ModelInferResponse.InferOutputTensor()
            output.name = name
            output.datatype = datatype
            output.shape = shape
            response.outputs.append(output)
            response.rawOutputContents.append(data)
        }
        return response
    }

    func floats(_ values: [Float]) -> Data { values.withUnsafeBytes { Data($0) } }

    @Test func identicalAnswersAgreeOnEveryRow() {
        let a = response([("Y", "FP32", [2, 3], floats([1, 2, 3, 4, 5, 6]))])
        let comparison = AnswerComparison(served: a, shadow: a)
        #expect(comparison.identical && comparison.maxAbsError == 0 && comparison.argmaxRows == 2 && comparison.argmaxAgreed == 2)
    }

    @Test func differencesAndArgmaxFlipsAreMeasured() {
        let served = response([("Y", "FP32", [2, 4], floats([1, 0, 0, 0.6, 1, 0, 0, 0])), ("Z", "INT32", [1], Data([7, 0, 0, 0]))])
        let shadow = response([("Z", "INT32", [1], Data([9, 0, 0, 0])), ("Y", "FP32", [2, 4], floats([1, 0, 0, 1.1, 1, 0, 0, 0.5]))])
        let comparison = AnswerComparison(served: served, shadow: shadow)
        #expect(!comparison.identical && !comparison.incomparable)
        #expect(abs(comparison.maxAbsError - 2) < 1e-9)  // Z: 7 vs 9
        #expect(comparison.argmaxRows == 2 && comparison.argmaxAgreed == 1)
        #expect(abs(comparison.maxRelError - 1) < 1e-6)  // row 2's last column: 0 vs 0.5
    }

    @Test func answersOfAnotherShapeTypeOrMissingOutputAreIncomparable() {
        let served = response([("Y", "FP32", [1, 2], floats([1, 2]))])
        for shadow in [
            response([("Y", "FP32", [2, 1], floats([1, 2]))]), response([("Y", "FP64", [1, 2], Data(count: 16))]),
            response([("W", "FP32", [1, 2], floats([1, 2]))]), response([]),
        ] {
            let comparison = AnswerComparison(served: served, shadow: shadow)
            #expect(comparison.incomparable && !comparison.identical)
        }
        let bytes = response([("S", "BYTES", [1], Data([1, 0, 0, 0, 65]))])
        let otherBytes = response([("S", "BYTES", [1], Data([1, 0, 0, 0, 66]))])
        #expect(AnswerComparison(served: bytes, shadow: otherBytes).incomparable)
        #expect(AnswerComparison(served: bytes, shadow: bytes).identical)
    }

    @Test func hugeShapesFromAWorkerDoNotOverflow() {
        let served = response([("Y", "FP32", [1, Int64.max], floats([1, 2]))])
        let shadow = response([("Y", "FP32", [1, Int64.max], floats([2, 1]))])
        let comparison = AnswerComparison(served: served, shadow: shadow)
        #expect(comparison.maxAbsError == 1)
    }
}

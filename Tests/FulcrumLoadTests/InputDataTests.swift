import FulcrumProtocol
import Foundation
import Testing

@testable import FulcrumLoad

/// perf_analyzer's `--input-data` JSON turned into requests.
@Suite struct InputDataTests {
    private func metadata() -> Inference_ModelMetadataResponse {
        var m = Inference_ModelMetadataResponse()
        m.name = "simple"
        for name in ["INPUT0", "INPUT1"] {
            var t = Inference_ModelMetadataResponse.TensorMetadata()
            t.name = name
            t.datatype = "INT32"
            t.shape = [-1, 4]
            m.inputs.append(t)
        }
        return m
    }

    private func ints(_ data: Data) -> [Int32] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    }

    @Test func arraysContentAndBase64BecomeRawInputsRepeatedPerBatch() throws {
        let b64 = Data([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]).base64EncodedString()
        let json = """
            {"data": [
              {"INPUT0": [1, 2, 3, 4], "INPUT1": {"content": [5, 6, 7, 8], "shape": [4]}},
              {"INPUT0": {"b64": "\(b64)"}, "INPUT1": [0, 0, 0, 1]}
            ]}
            """
        let requests = try RequestFactory.requests(inputData: Data(json.utf8), metadata: metadata(), version: "1", batch: 2)
        #expect(requests.count == 2)
        #expect(requests[0].inputs.map(\.shape) == [[2, 4], [2, 4]])
        #expect(requests[0].inputs.map(\.datatype) == ["INT32", "INT32"])
        #expect(ints(requests[0].rawInputContents[0]) == [1, 2, 3, 4, 1, 2, 3, 4])
        #expect(ints(requests[0].rawInputContents[1]) == [5, 6, 7, 8, 5, 6, 7, 8])
        #expect(ints(requests[1].rawInputContents[0]) == [1, 2, 3, 4, 1, 2, 3, 4])
        #expect(requests[1].modelName == "simple" && requests[1].modelVersion == "1")
    }

    @Test func mistakesAreNamed() {
        let cases: [(String, String)] = [
            ("[]", "\"data\" array"),
            ("{\"data\": []}", "empty"),
            ("{\"data\": [{\"INPUT0\": [1, 2, 3, 4]}]}", "no input 'INPUT1'"),
            ("{\"data\": [{\"INPUT0\": [1, 2, 3], \"INPUT1\": [1, 2, 3, 4]}]}", "3 values, but shape [4] needs 4"),
            ("{\"data\": [{\"INPUT0\": [1, 2, 3, 4], \"INPUT1\": [1, 2, 3, 4], \"EXTRA\": [1]}]}", "'EXTRA'"),
            ("{\"data\": [{\"INPUT0\": [1, 2, 3, \"x\"], \"INPUT1\": [1, 2, 3, 4]}]}", "value 3 is not a number"),
            ("{\"data\": [{\"INPUT0\": {\"content\": [1, 2], \"shape\": [2]}, \"INPUT1\": [1, 2, 3, 4]}]}", "does not fit"),
            ("{\"data\": [{\"INPUT0\": {\"b64\": \"AAAA\"}, \"INPUT1\": [1, 2, 3, 4]}]}", "3 bytes"),
        ]
        for (json, fragment) in cases {
            do {
                _ = try RequestFactory.requests(inputData: Data(json.utf8), metadata: metadata(), version: "", batch: 1)
                Issue.record("accepted \(json)")
            } catch {
                #expect("\(error)".contains(fragment), "\(json): \(error)")
            }
        }
    }
}

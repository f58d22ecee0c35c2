import FulcrumSchema
import Testing

@Suite("config.pbtxt of pipelines (ensemble_scheduling)")
struct EnsembleParsingTests {
    static let pipeline = """
        name: "chain"
        platform: "ensemble"
        max_batch_size: 8
        input [ { name: "A" data_type: TYPE_INT32 dims: [ 16 ] } ]
        output [ { name: "Y" data_type: TYPE_INT32 dims: [ 16 ] } ]
        ensemble_scheduling {
          step [
            {
              model_name: "simple"
              model_version: -1
              input_map { key: "INPUT0" value: "A" }
              input_map { key: "INPUT1" value: "A" }
              output_map { key: "OUTPUT0" value: "S" }
            },
            {
              model_name: "simple"
              model_version: 2
              input_map { key: "INPUT0" value: "S" }
              input_map { key: "INPUT1" value: "A" }
              output_map { key: "OUTPUT1" value: "Y" }
            }
          ]
        }
        """

    @Test func readsTheSteps() throws {
        let config = try ModelConfiguration.parse(text: Self.pipeline, file: "chain/config.pbtxt")
        #expect(config.isPipeline && config.isServedByFrontends)
        let steps = try #require(config.ensembleSteps)
        #expect(steps.map(\.modelName) == ["simple", "simple"])
        #expect(steps.map(\.modelVersion) == [-1, 2])
        #expect(steps[0].inputMap == ["INPUT0": "A", "INPUT1": "A"])
        #expect(steps[1].outputMap == ["OUTPUT1": "Y"])
        #expect(steps[0].line == 8)
    }

    @Test func aModelIsNotServedByTheFrontends() throws {
        let config = try ModelConfiguration.parse(text: "platform: \"onnxruntime_onnx\"", file: "m/config.pbtxt")
        #expect(!config.isPipeline && !config.isServedByFrontends && config.ensembleSteps == nil)
        let processor = try ModelConfiguration.parse(text: "platform: \"fulcrum_pooling\"", file: "p/config.pbtxt")
        #expect(processor.isServedByFrontends && !processor.isPipeline)
    }

    static let refusals: [(String, String)] = [
        ("platform: \"ensemble\" input [ { name: \"A\" data_type: TYPE_FP32 dims: [1] } ] output [ { name: \"Y\" data_type: TYPE_FP32 dims: [1] } ]",
         "platform \"ensemble\" needs ensemble_scheduling"),
        ("platform: \"onnxruntime_onnx\" ensemble_scheduling { step [ { model_name: \"m\" output_map { key: \"y\" value: \"Y\" } } ] }",
         "ensemble_scheduling is for platform \"ensemble\""),
        ("platform: \"ensemble\" ensemble_scheduling { }", "ensemble_scheduling has no step"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { output_map { key: \"y\" value: \"Y\" } } ] }", "has no 'model_name'"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" input_map { key: \"x\" value: \"A\" } } ] }", "has no output_map"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" input_map { key: \"x\" value: \"A\" } input_map { key: \"x\" value: \"B\" } output_map { key: \"y\" value: \"Y\" } } ] }",
         "input 'x' is mapped twice"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" output_map { key: \"y\" value: \"\" } } ] }", "needs a non-empty 'key'"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" model_version: -2 output_map { key: \"y\" value: \"Y\" } } ] }",
         "-2 is not a version"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" model_namespace: \"x\" output_map { key: \"y\" value: \"Y\" } } ] }",
         "model_namespace"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" bogus: 1 output_map { key: \"y\" value: \"Y\" } } ] }",
         "unknown field 'bogus' in ModelEnsembling.Step"),
        ("platform: \"ensemble\" dynamic_batching { } input [ { name: \"A\" data_type: TYPE_FP32 dims: [1] } ] output [ { name: \"Y\" data_type: TYPE_FP32 dims: [1] } ] ensemble_scheduling { step [ { model_name: \"m\" output_map { key: \"y\" value: \"Y\" } } ] }",
         "cannot have dynamic_batching"),
        ("platform: \"ensemble\" ensemble_scheduling { step [ { model_name: \"m\" output_map { key: \"y\" value: \"Y\" } } ] }",
         "must list its inputs and outputs"),
    ]

    @Test("a malformed pipeline is refused naming the file and what is wrong", arguments: refusals)
    func refusal(text: String, fragment: String) {
        do {
            _ = try ModelConfiguration.parse(text: text, file: "p/config.pbtxt")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.hasPrefix("p/config.pbtxt"), "\(error.message)")
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }
}

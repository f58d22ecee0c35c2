import Foundation
import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import Testing

@Suite struct ModelConfigurationWireTests {
    static let everyMappedField = """
            name: "m"
            platform: "onnxruntime_onnx"
            max_batch_size: 8
            version_policy: { specific: { versions: [1, 3] } }
            input [ { name: "x" data_type: TYPE_FP32 dims: [ 4, -1 ] optional: true } ]
            output [ { name: "y" data_type: TYPE_INT64 dims: [ 1 ] label_filename: "labels.txt" } ]
            instance_group [ { count: 2 kind: KIND_CPU } ]
            dynamic_batching {
              preferred_batch_size: [ 4, 8 ]
              max_queue_delay_microseconds: 100
              priority_levels: 2
              default_priority_level: 1
              default_queue_policy { max_queue_size: 16 timeout_action: DELAY default_timeout_microseconds: 5000 allow_timeout_override: true }
              priority_queue_policy { key: 1 value: { max_queue_size: 4 } }
            }
            parameters { key: "fulcrum.latency_target_ms" value: { string_value: "20" } }
            """

    @Test func roundTripsEveryMappedField() throws {
        let text = Self.everyMappedField
        let configuration = try ModelConfiguration.parse(text: text, file: "config.pbtxt")
        let wire = configuration.wire
        #expect(wire.maxBatchSize == 8)
        #expect(wire.input[0].dataType == .typeFp32)
        #expect(wire.output[0].labelFilename == "labels.txt")
        #expect(wire.dynamicBatching.defaultQueuePolicy.timeoutAction == .delay)
        #expect(wire.parameters["fulcrum.latency_target_ms"]?.stringValue == "20")
        let back = try ModelConfiguration(wire: wire)
        #expect(back.inputs == configuration.inputs)
        #expect(back.outputs == configuration.outputs)
        #expect(back.dynamicBatching == configuration.dynamicBatching)
        #expect(back.versionPolicy == configuration.versionPolicy)
        #expect(back.instanceGroups.map(\.count) == [2])
        #expect(back.parameters == configuration.parameters)
    }

    @Test func roundTripsAPipeline() throws {
        let text = """
            name: "chain"
            platform: "ensemble"
            max_batch_size: 4
            input [ { name: "A" data_type: TYPE_INT32 dims: [ 16 ] } ]
            output [ { name: "Y" data_type: TYPE_INT32 dims: [ 16 ] } ]
            ensemble_scheduling { step [ { model_name: "simple" model_version: 3 input_map { key: "INPUT0" value: "A" } output_map { key: "OUTPUT0" value: "Y" } } ] }
            """
        let configuration = try ModelConfiguration.parse(text: text, file: "config.pbtxt")
        let wire = configuration.wire
        #expect(wire.ensembleScheduling.step.count == 1)
        #expect(wire.ensembleScheduling.step[0].modelVersion == 3)
        #expect(wire.ensembleScheduling.step[0].inputMap == ["INPUT0": "A"])
        let back = try ModelConfiguration(wire: wire)
        #expect(back.ensembleSteps?.map(\.modelName) == ["simple"])
        #expect(back.ensembleSteps?[0].outputMap == ["OUTPUT0": "Y"])
        #expect(back.isPipeline)
    }

    @Test func dataTypesMapBothWays() {
        for type in DataType.allCases {
            #expect(DataType(wire: type.wire) == type)
        }
        #expect(DataType(wire: .typeInvalid) == nil)
    }

    @Test func signatureShowsTheBatchDimensionInMetadata() {
        let metadata = simpleSignature.metadata(versions: ["1", "2"])
        #expect(metadata.inputs.map(\.shape) == [[-1, 16], [-1, 16]])
        #expect(metadata.versions == ["1", "2"])
        var unbatched = simpleSignature
        unbatched.maxBatchSize = 0
        #expect(unbatched.metadata(versions: ["1"]).outputs[0].shape == [16])
    }
}

/// Fulcrum's config.pbtxt reader against swift-protobuf's text-format decoder of the generated
/// `ModelConfig`: every configuration in examples/models must decode to the same message both
/// ways (the reader exists for its error messages — file, line, field — not for other results).
@Suite struct ConfigurationDifferentialTests {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/models")

    static var configurations: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: examples.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: examples.appendingPathComponent("\($0)/config.pbtxt").path) }.sorted()
    }

    @Test("there are example configurations to compare")
    func examplesExist() {
        #expect(Self.configurations.count >= 5)
    }

    @Test("the reader and swift-protobuf decode every field Fulcrum maps identically")
    func everyField() throws {
        let text = ModelConfigurationWireTests.everyMappedField
        #expect(try ModelConfiguration.parse(text: text, file: "config.pbtxt").wire == Inference_ModelConfig(textFormatString: text))
    }

    @Test("the reader and swift-protobuf decode each example identically", arguments: configurations)
    func sameMessage(model: String) throws {
        let path = Self.examples.appendingPathComponent("\(model)/config.pbtxt").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let ours = try ModelConfiguration.parse(text: text, file: path).wire
        var theirs = try Inference_ModelConfig(textFormatString: text)
        // The one completion the reader makes: an absent version_policy is Triton's default,
        // latest { num_versions: 1 }, which Triton's ModelConfig answer shows as well.
        if !theirs.hasVersionPolicy {
            var latest = Inference_ModelVersionPolicy.Latest()
            latest.numVersions = 1
            theirs.versionPolicy.latest = latest
        }
        #expect(ours == theirs, "\(model):\nours:\n\(ours.textFormatString())\nswift-protobuf:\n\(theirs.textFormatString())")
    }
}

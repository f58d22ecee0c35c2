import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import Testing

@Suite struct ModelConfigurationWireTests {
    @Test func roundTripsEveryMappedField() throws {
        let text = """
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

import FulcrumSchema
import Testing

@Suite("config.pbtxt parsing")
struct ConfigurationParsingTests {
    static let full = """
        # A configuration using every field Fulcrum reads.
        name: "ranker"
        platform: "onnxruntime_onnx"
        backend: 'onnxruntime'
        max_batch_size: 32
        input [
          {
            name: "INPUT0"
            data_type: TYPE_FP32
            format: FORMAT_NONE
            dims: [ 16, -1 ]
            reshape: { shape: [ 4, 4, -1 ] }
          },
          { name: "mask", data_type: TYPE_BOOL, dims: [ 1 ], optional: true }
        ]
        output {
          name: "OUTPUT0"; data_type: TYPE_STRING
          dims: 3
          dims: 2
          label_filename: "labels.txt"
        }
        version_policy: { specific { versions: [1, 3] } }
        instance_group [ { name: "cpus" count: 2 kind: KIND_CPU }, { kind: KIND_GPU gpus: [0, 1] } ]
        default_model_filename: "ranker.onnx"
        dynamic_batching {
          preferred_batch_size: [ 4, 8 ]
          max_queue_delay_microseconds: 100
          preserve_ordering: true
          priority_levels: 2
          default_priority_level: 1
          default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 5000 allow_timeout_override: true max_queue_size: 16 }
          priority_queue_policy { key: 2 value: { timeout_action: REJECT max_queue_size: 4 } }
        }
        parameters { key: "threads" value: { string_value: "2" } }
        parameters: { key: "note" value { string_value: "tab\\there \\"quoted\\"" } }
        response_cache { enable: true }
        """

    @Test("nesting deeper than 64 messages is refused, not a stack overflow (found by fuzzing)")
    func deepNesting() throws {
        let deep = "input " + String(repeating: "{ reshape ", count: 10_000) + String(repeating: "}", count: 10_000)
        #expect(throws: RuntimeError.self) { _ = try ModelConfiguration.parse(text: deep, file: "deep.pbtxt") }
        do {
            _ = try ModelConfiguration.parse(text: deep, file: "deep.pbtxt")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains("nested more than 64 deep"), "\(error.message)")
        }
    }

    @Test("every field parses")
    func fullConfiguration() throws {
        let config = try ModelConfiguration.parse(text: Self.full, file: "ranker/config.pbtxt")
        #expect(config.name == "ranker")
        #expect(config.platform == "onnxruntime_onnx")
        #expect(config.backend == "onnxruntime")
        #expect(config.maxBatchSize == 32)
        #expect(config.inputs == [
            .init(name: "INPUT0", dataType: .fp32, dims: [16, -1], reshape: [4, 4, -1], format: "FORMAT_NONE"),
            .init(name: "mask", dataType: .bool, dims: [1], optional: true),
        ])
        #expect(config.outputs == [.init(name: "OUTPUT0", dataType: .bytes, dims: [3, 2], labelFilename: "labels.txt")])
        #expect(config.versionPolicy == .specific([1, 3]))
        #expect(config.instanceGroups == [.init(name: "cpus", count: 2, kind: .cpu), .init(kind: .gpu, gpus: [0, 1])])
        #expect(config.defaultModelFilename == "ranker.onnx")
        let batching = try #require(config.dynamicBatching)
        #expect(batching.preferredBatchSizes == [4, 8])
        #expect(batching.maxQueueDelayMicroseconds == 100)
        #expect(batching.preserveOrdering)
        #expect(batching.priorityLevels == 2)
        #expect(batching.defaultPriorityLevel == 1)
        #expect(batching.defaultQueuePolicy == .init(timeoutAction: .delay, defaultTimeoutMicroseconds: 5000, allowTimeoutOverride: true, maxQueueSize: 16))
        #expect(batching.priorityQueuePolicy == [2: .init(timeoutAction: .reject, maxQueueSize: 4)])
        #expect(config.parameters == ["threads": "2", "note": "tab\there \"quoted\""])
        #expect(config.responseCacheEnabled)
    }

    @Test("defaults and the latest/all policies")
    func defaults() throws {
        let config = try ModelConfiguration.parse(text: "", file: "c")
        #expect(config == ModelConfiguration())
        #expect(config.versionPolicy == .latest(1))
        #expect(config.dynamicBatching == nil)
        let latest = try ModelConfiguration.parse(text: "version_policy { latest { num_versions: 2 } }\ndynamic_batching {}", file: "c")
        #expect(latest.versionPolicy == .latest(2))
        #expect(latest.dynamicBatching == ModelConfiguration.DynamicBatching())
        #expect(try ModelConfiguration.parse(text: "version_policy: { all: {} }", file: "c").versionPolicy == .all)
    }

    @Test(
        "errors name the file, line and field",
        arguments: [
            ("name: \"m\"\n\nmax_batch: 4", "m/config.pbtxt:3: unknown field 'max_batch' in ModelConfig"),
            ("input {\n name: \"x\"\n data_type: TYPE_FLOAT\n dims: [1]\n}", "m/config.pbtxt:3: field 'data_type': 'TYPE_FLOAT' is not a data type"),
            ("dynamic_batching {\n  max_queue_delay: 5\n}", "m/config.pbtxt:2: unknown field 'max_queue_delay' in ModelDynamicBatching"),
            ("dynamic_batching {\n priority_queue_policy {\n key: 1\n value { timeout: 3 }\n }\n}", "m/config.pbtxt:4: unknown field 'timeout' in ModelQueuePolicy"),
            ("max_batch_size: \"8\"", "m/config.pbtxt:1: field 'max_batch_size': '8' is not an integer"),
            ("max_batch_size: -1", "m/config.pbtxt:1: field 'max_batch_size': must be 0"),
            ("max_batch_size: 99999999999", "m/config.pbtxt:1: field 'max_batch_size': '99999999999' is not an integer"),
            ("name: \"a\"\nname: \"b\"", "m/config.pbtxt:2: field 'name' in ModelConfig is given more than once (first on line 1)"),
            ("name: \"unterminated\nmax_batch_size: 1", "m/config.pbtxt:1: unterminated string"),
            ("input {\n name: \"x\"\n", "m/config.pbtxt:3: expected '}' to close the message opened on line 1"),
            ("instance_group [ { kind: KIND_TPU } ]", "m/config.pbtxt:1: field 'kind': 'KIND_TPU' is not one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL"),
            ("output { name: \"y\" data_type: TYPE_FP32 }", "m/config.pbtxt:1: ModelOutput 'y' has no 'dims'"),
            ("output { name: \"y\" data_type: TYPE_FP32 dims: [1] optional: true }", "m/config.pbtxt:1: unknown field 'optional' in ModelOutput"),
            ("sequence_batching { }", "m/config.pbtxt:1: field 'sequence_batching' in ModelConfig is not supported by Fulcrum"),
            ("max_batch_size 4", "m/config.pbtxt:1: field 'max_batch_size': expected ':' or '{'"),
            ("name: \"a\" @", "m/config.pbtxt:1: unexpected character '@'"),
            ("response_cache { enable: maybe }", "m/config.pbtxt:1: field 'enable': 'maybe' is not a bool"),
            ("parameters { value { string_value: \"v\" } }", "m/config.pbtxt:1: field 'parameters': entry has no 'key'"),
            ("version_policy { latest { num_versions: 1 } all {} }", "m/config.pbtxt:1: field 'all' in ModelVersionPolicy: only one of latest, all, specific"),
            // Fulcrum's own parameters are checked here, once, with the entry's line.
            ("name: \"m\"\nparameters { key: \"fulcrum.latency_target_ms\" value: { string_value: \"fast\" } }",
             "m/config.pbtxt:2: parameter fulcrum.latency_target_ms: 'fast' is not a positive number of milliseconds"),
            ("parameters { key: \"fulcrum.batching\" value: { string_value: \"eager\" } }",
             "m/config.pbtxt:1: parameter fulcrum.batching: 'eager' is not 'dynamic' or 'adaptive'"),
            ("parameters { key: \"fulcrum.max_queue_bytes\" value: { string_value: \"-1\" } }",
             "m/config.pbtxt:1: parameter fulcrum.max_queue_bytes: '-1' is not a positive integer"),
            ("parameters { key: \"fulcrum.latency_target\" value: { string_value: \"20\" } }",
             "m/config.pbtxt:1: parameter fulcrum.latency_target is not one Fulcrum reads (fulcrum.batching, fulcrum.latency_target_ms, fulcrum.max_queue_bytes)"),
            ("max_batch_size: 8\nparameters { key: \"fulcrum.batching\" value: { string_value: \"adaptive\" } }",
             "m/config.pbtxt: fulcrum.batching: adaptive needs max_batch_size > 0 and a dynamic_batching block"),
            ("max_batch_size: 8\ndynamic_batching { }\nparameters { key: \"fulcrum.batching\" value: { string_value: \"adaptive\" } }",
             "m/config.pbtxt: fulcrum.batching: adaptive needs parameter fulcrum.latency_target_ms"),
        ])
    func errors(text: String, expected: String) {
        #expect {
            try ModelConfiguration.parse(text: text, file: "m/config.pbtxt")
        } throws: { error in
            guard let error = error as? RuntimeError else { return false }
            return error.code == .invalidConfiguration && error.message.hasPrefix(expected)
        }
    }

    @Test("a latency target must be a positive, finite number of milliseconds, at most a day", arguments: ["0", "-3", "fast", "nan", "inf", "1e300", ""])
    func badLatencyTargets(value: String) {
        let text = "parameters { key: \"fulcrum.latency_target_ms\" value: { string_value: \"\(value)\" } }"
        #expect(throws: RuntimeError.self) { try ModelConfiguration.parse(text: text, file: "m/config.pbtxt") }
    }

    @Test("Fulcrum's parameters arrive typed; other parameters pass through untouched")
    func typedSettings() throws {
        let text = """
            parameters { key: "fulcrum.latency_target_ms" value: { string_value: "2.5" } }
            parameters { key: "tenant_hint" value: { string_value: "anything" } }
            """
        let config = try ModelConfiguration.parse(text: text, file: "m/config.pbtxt")
        #expect(config.fulcrum == FulcrumSettings(latencyTarget: .microseconds(2500)))
        #expect(config.parameters == ["fulcrum.latency_target_ms": "2.5", "tenant_hint": "anything"])
        #expect(try ModelConfiguration.parse(text: "", file: "m/config.pbtxt").fulcrum == FulcrumSettings())
    }

    @Test("the error message is exactly as documented")
    func exactMessage() {
        do {
            _ = try ModelConfiguration.parse(text: "name: \"s\"\n# comment\n\n\n\n\nmax_batch: 8\n", file: "models/simple/config.pbtxt")
            Issue.record("expected an error")
        } catch {
            #expect(error == RuntimeError(code: .invalidConfiguration, message: "models/simple/config.pbtxt:7: unknown field 'max_batch' in ModelConfig"))
            #expect(error.description == "invalidConfiguration: models/simple/config.pbtxt:7: unknown field 'max_batch' in ModelConfig")
        }
    }

    @Test("numbers, escapes and separators")
    func lexical() throws {
        let config = try ModelConfiguration.parse(
            text: "name: 'a\\x41\\101\\n' 'b';max_batch_size: 0x10,\ninput { name: \"x\", data_type: 11, dims: [-1] }",
            file: "c")
        #expect(config.name == "aAA\nb")
        #expect(config.maxBatchSize == 16)
        #expect(config.inputs.first?.dataType == .fp32)
    }
}

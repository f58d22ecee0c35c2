import Foundation
@testable import FulcrumFrontend
import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import GRPCCore
import Synchronization
import Testing

/// The graph checks a pipeline passes at load, and how one request runs through it.
@Suite struct PipelineTests {
    static func tensor(_ name: String) -> ModelConfiguration.TensorConfiguration {
        .init(name: name, dataType: .int32, dims: [4])
    }

    static func step(_ model: String, _ inputs: [String: String], _ outputs: [String: String]) -> ModelConfiguration.EnsembleStep {
        .init(modelName: model, inputMap: inputs, outputMap: outputs)
    }

    static func configuration(
        _ steps: [ModelConfiguration.EnsembleStep], inputs: [String] = ["A", "B"], outputs: [String] = ["Y"]
    ) -> ModelConfiguration {
        ModelConfiguration(
            name: "p", platform: "ensemble", maxBatchSize: 8, inputs: inputs.map(tensor), outputs: outputs.map(tensor),
            ensembleSteps: steps)
    }

    static func build(_ steps: [ModelConfiguration.EnsembleStep], outputs: [String] = ["Y"], known: Set<String> = ["simple", "p"]) throws(FulcrumSchema.RuntimeError) -> Pipeline {
        try Pipeline(configuration: configuration(steps, outputs: outputs), version: "1", file: "p/config.pbtxt", exists: known.contains)
    }

    /// A diamond: S and D from A and B, then Y from S and D; an independent step writes Z.
    static let diamond = [
        step("simple", ["INPUT0": "A", "INPUT1": "B"], ["OUTPUT0": "S"]),
        step("simple", ["INPUT0": "A", "INPUT1": "B"], ["OUTPUT1": "D"]),
        step("simple", ["INPUT0": "S", "INPUT1": "D"], ["OUTPUT0": "Y"]),
        step("simple", ["INPUT0": "A", "INPUT1": "A"], ["OUTPUT0": "Z"]),
    ]

    @Test func dependenciesFollowTheTensors() throws {
        let pipeline = try Self.build(Self.diamond, outputs: ["Y", "Z"])
        #expect(pipeline.steps.map { $0.dependencies } == [[], [], [0, 1], []])
        #expect(pipeline.steps[2].label == "step 3 ('simple')")
        #expect(pipeline.signature.outputs.map { $0.name } == ["Y", "Z"])
    }

    static let refusals: [([ModelConfiguration.EnsembleStep], String)] = [
        ([step("missing", ["x": "A"], ["y": "Y"])], "step 1 ('missing') names model 'missing', which is not in the model repository"),
        ([step("p", ["x": "A"], ["y": "Y"])], "calls the pipeline itself"),
        ([step("simple", ["x": "A"], ["y": "Y"]), step("simple", ["x": "B"], ["y": "Y"])], "step 2 ('simple') and step 1 ('simple') both write 'Y'"),
        ([step("simple", ["x": "A"], ["y": "B"])], "writes 'B', which is an input of the pipeline"),
        ([step("simple", ["x": "Q"], ["y": "Y"])], "step 1 ('simple') reads 'Q', which is neither an input of the pipeline nor written by any step"),
        ([step("simple", ["x": "Y"], ["y": "Y"])], "reads 'Y', which it writes itself"),
        ([step("simple", ["x": "A"], ["y": "W"])], "no step writes its output 'Y'"),
        ([step("simple", ["x": "A", "z": "T"], ["y": "Y"]), step("simple", ["x": "Y"], ["y": "T"])],
         "the steps form a cycle: step 1 ('simple') → step 2 ('simple') → step 1 ('simple')"),
    ]

    @Test("a pipeline that cannot run is refused at load, naming the step", arguments: refusals)
    func refusal(steps: [ModelConfiguration.EnsembleStep], fragment: String) {
        do throws(FulcrumSchema.RuntimeError) {
            _ = try Self.build(steps)
            Issue.record("accepted")
        } catch {
            #expect(error.message.hasPrefix("p/config.pbtxt: pipeline 'p': "), "\(error.message)")
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test func pipelinesCallingEachOtherInACycleAreRefused() throws {
        func pipeline(_ name: String, calls: String) throws -> Pipeline {
            var config = Self.configuration([Self.step(calls, ["x": "A"], ["y": "Y"])])
            config.name = name
            return try Pipeline(configuration: config, version: "1", file: "\(name)/config.pbtxt") { _ in true }
        }
        let entries: [FrontendModels.Entry] = [
            .pipeline(try pipeline("a", calls: "b")), .pipeline(try pipeline("b", calls: "c")),
            .pipeline(try pipeline("c", calls: "a")), .pipeline(try pipeline("d", calls: "a")),
            .pipeline(try pipeline("e", calls: "simple")),
        ]
        let checked = Dictionary(uniqueKeysWithValues: FrontendModels.refusingCycles(entries).map { ($0.name, $0) })
        for name in ["a", "b", "c"] {
            guard case .failed(_, _, let reason) = checked[name] else {
                Issue.record("\(name) accepted")
                continue
            }
            #expect(reason.contains("pipelines call each other in a cycle: \(name) → "), "\(reason)")
        }
        // d calls into the cycle but is not on it: it fails at run time (a is unavailable).
        guard case .pipeline = checked["d"], case .pipeline = checked["e"] else {
            Issue.record("d or e refused")
            return
        }
    }

    @Test("a long chain of steps is checked without recursion; a cycle through it is named in short")
    func longChains() throws {
        let n = 50_000
        var chain = [Self.step("simple", ["x": "A"], ["y": "T0"])]
        for i in 1..<n { chain.append(Self.step("simple", ["x": "T\(i - 1)"], ["y": "T\(i)"])) }
        chain.append(Self.step("simple", ["x": "T\(n - 1)"], ["y": "Y"]))
        let pipeline = try Self.build(chain)
        #expect(pipeline.steps.count == n + 1)
        // Close the loop: the first step now also reads the last tensor of the chain.
        chain[0] = Self.step("simple", ["x": "A", "z": "T\(n - 1)"], ["y": "T0"])
        do throws(FulcrumSchema.RuntimeError) {
            _ = try Self.build(chain)
            Issue.record("accepted a cycle")
        } catch {
            #expect(error.message.contains("the steps form a cycle: step 1 ('simple') → step 2 ('simple') → "), "\(error.message)")
            #expect(error.message.hasSuffix("… (\(n) steps)"), "\(error.message)")
        }
    }

    @Test func coveredTimeIsTheUnionOfTheSpans() {
        #expect(PipelineRunner.covered([]) == 0)
        #expect(PipelineRunner.covered([(10, 20), (15, 30), (40, 45)]) == 25)
        #expect(PipelineRunner.covered([(40, 45), (10, 50)]) == 40)
    }

    // MARK: Running

    static func int32Request(_ model: String, _ values: [String: [Int32]]) -> Inference_ModelInferRequest {
        var request = Inference_ModelInferRequest()
        request.modelName = model
        request.id = "req-7"
        for name in values.keys.sorted() {
            var input = Inference_ModelInferRequest.InferInputTensor()
            input.name = name
            input.datatype = "INT32"
            input.shape = [1, Int64(values[name]!.count)]
            request.inputs.append(input)
            request.rawInputContents.append(values[name]!.withUnsafeBytes { Data($0) })
        }
        return request
    }

    /// `simple` computed here: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 − INPUT1, only the
    /// outputs asked for.
    static func simple(_ request: Inference_ModelInferRequest) throws -> Inference_ModelInferResponse {
        let tensors = try TensorCodec.decodeInputs(request)
        let a = tensors["INPUT0"]!.scalars(as: Int32.self), b = tensors["INPUT1"]!.scalars(as: Int32.self)
        let results = ["OUTPUT0": zip(a, b).map { $0 &+ $1 }, "OUTPUT1": zip(a, b).map { $0 &- $1 }]
        var response = Inference_ModelInferResponse()
        response.modelName = request.modelName
        for requested in request.outputs {
            var output = Inference_ModelInferResponse.InferOutputTensor()
            output.name = requested.name
            output.datatype = "INT32"
            output.shape = [1, Int64(a.count)]
            response.outputs.append(output)
            response.rawOutputContents.append(results[requested.name]!.withUnsafeBytes { Data($0) })
        }
        response.parameters[ResponseParameters.compute] = .int64(5)
        return response
    }

    @Test func independentStepsRunTogetherAndTheAnswerHasEveryStep() async throws {
        let pipeline = try Self.build(Self.diamond, outputs: ["Y", "Z"])
        // Steps 1, 2 and 4 need only the inputs: none of them may finish before all three have
        // started, which only happens if they run at the same time.
        let started = Mutex(0)
        let calls = Mutex<[String]>([])
        let (response, outcome) = try await PipelineRunner.run(
            pipeline, request: Self.int32Request("p", ["A": [1, 2, 3, 4], "B": [10, 20, 30, 40]]), timeout: .seconds(3600),
            started: DispatchTime.now().uptimeNanoseconds
        ) { request, remaining in
            #expect(remaining != nil)
            #expect(request.id == "req-7")
            let first = request.inputs.map(\.name) == ["INPUT0", "INPUT1"] && request.outputs.count == 1
            calls.withLock { $0.append(request.outputs[0].name) }
            if first, started.withLock({ $0 += 1; return $0 }) <= 3 {
                while started.withLock({ $0 }) < 3 { try await Task.sleep(for: .milliseconds(1)) }
            }
            return try Self.simple(request)
        }
        #expect(calls.withLock { $0.count } == 4)
        #expect(response.modelName == "p" && response.modelVersion == "1" && response.id == "req-7")
        #expect(response.outputs.map(\.name) == ["Y", "Z"])
        let y = response.rawOutputContents[0].withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        let z = response.rawOutputContents[1].withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        #expect(y == [2, 4, 6, 8])  // (A + B) + (A − B)
        #expect(z == [2, 4, 6, 8])  // A + A
        for index in 1...4 {
            #expect(response.parameters["fulcrum.step.\(index).simple_us"]?.integerValue != nil)
        }
        #expect(response.parameters[ResponseParameters.compute]?.integerValue == 20)
        #expect(outcome.batch == 1)
    }

    @Test func aFailedStepFailsTheRequestNamingTheStep() async throws {
        let pipeline = try Self.build(Self.diamond, outputs: ["Y", "Z"])
        do {
            _ = try await PipelineRunner.run(
                pipeline, request: Self.int32Request("p", ["A": [1, 2, 3, 4], "B": [1, 1, 1, 1]]), timeout: nil,
                started: DispatchTime.now().uptimeNanoseconds
            ) { request, _ in
                if request.outputs.map(\.name) == ["OUTPUT1"] {
                    throw RPCError(code: .unavailable, message: "no worker can serve model 'simple' now")
                }
                return try Self.simple(request)
            }
            Issue.record("succeeded")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
            #expect(error.message == "pipeline 'p' step 2 ('simple'): no worker can serve model 'simple' now")
        }
    }

    @Test func aRequestThatDoesNotFitThePipelineIsRefusedBeforeAnyStep() async throws {
        let pipeline = try Self.build(Self.diamond, outputs: ["Y", "Z"])
        var request = Self.int32Request("p", ["A": [1, 2, 3, 4], "B": [1, 1, 1]])
        request.inputs[1].shape = [1, 3]
        await #expect(throws: RPCError.self) {
            _ = try await PipelineRunner.run(pipeline, request: request, timeout: nil, started: DispatchTime.now().uptimeNanoseconds) { _, _ in
                Issue.record("a step ran")
                return Inference_ModelInferResponse()
            }
        }
    }

    @Test func aModelThatLeavesOutAMappedOutputIsAnInternalError() async throws {
        let pipeline = try Self.build([Self.step("simple", ["INPUT0": "A", "INPUT1": "B"], ["OUTPUT0": "Y"])])
        do {
            _ = try await PipelineRunner.run(
                pipeline, request: Self.int32Request("p", ["A": [1, 2, 3, 4], "B": [1, 1, 1, 1]]), timeout: nil,
                started: DispatchTime.now().uptimeNanoseconds
            ) { _, _ in Inference_ModelInferResponse() }
            Issue.record("succeeded")
        } catch let error as RPCError {
            #expect(error.code == .internalError)
            #expect(error.message.contains("step 1 ('simple'): the model returned no output 'OUTPUT0'"))
        }
    }

    @Test func aPassedDeadlineStopsThePipeline() async throws {
        let pipeline = try Self.build([Self.step("simple", ["INPUT0": "A", "INPUT1": "B"], ["OUTPUT0": "Y"])])
        let long = DispatchTime.now().uptimeNanoseconds - 2_000_000_000
        await #expect(throws: RPCError.self) {
            _ = try await PipelineRunner.run(
                pipeline, request: Self.int32Request("p", ["A": [1, 2, 3, 4], "B": [1, 1, 1, 1]]), timeout: .seconds(1), started: long
            ) { request, _ in try Self.simple(request) }
        }
    }
}

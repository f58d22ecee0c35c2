import Dispatch
import Foundation
import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import GRPCCore

/// Runs one request through a pipeline in the frontend: each step starts as soon as the tensors
/// it reads exist (independent steps run at the same time), each model step is one call into the
/// compute pool through `call` (routed, retried and timed like any request), and the tensors in
/// between stay here. The answer holds the pipeline's outputs, the usual timing breakdown (network,
/// queue and compute summed over the steps; frontend = the time no step was in flight) and one
/// `fulcrum.step.<n>.<model>_us` entry per step: its round trip as the frontend saw it.
enum PipelineRunner {
    /// One step's call: the request for the step's model and the time left of the deadline.
    typealias Call = @Sendable (Inference_ModelInferRequest, Duration?) async throws -> Inference_ModelInferResponse

    /// A tensor between steps, as the protocol carries it.
    struct Value: Sendable {
        var datatype: String
        var shape: [Int64]
        var data: Data
    }

    /// What one request cost, for the pipeline's statistics.
    struct Outcome: Sendable {
        var batch: Int
        var queueNanoseconds: UInt64
        var computeNanoseconds: UInt64
    }

    /// The response parameter with one step's round trip, in µs.
    static func stepParameter(_ step: Pipeline.Step) -> String {
        "fulcrum.step.\(step.index + 1).\(step.model)_us"
    }

    /// Validates `request` against the pipeline and runs it; `started` is when the frontend
    /// received it (uptime ns), `timeout` the client's deadline from then.
    static func run(
        _ pipeline: Pipeline, request: Inference_ModelInferRequest, timeout: Duration?, started: UInt64, call: @escaping Call
    ) async throws -> (Inference_ModelInferResponse, Outcome) {
        let batch = try InferRequestValidator.validate(request, against: pipeline.signature)
        var values: [String: Value] = [:]
        for (name, tensor) in try TensorCodec.decodeInputs(request) {
            values[name] = Value(datatype: tensor.dataType.rawValue, shape: tensor.shape.map(Int64.init), data: Data(tensor.data))
        }

        var finished = Set<Int>()
        var running = Set<Int>()
        var spans: [(start: UInt64, end: UInt64)] = []
        var stepMicros: [Int: Int64] = [:]
        var network: Int64 = 0, queue: Int64 = 0, compute: Int64 = 0
        try await withThrowingTaskGroup(of: (Int, Inference_ModelInferResponse, UInt64, UInt64).self) { group in
            while finished.count < pipeline.steps.count {
                for step in pipeline.steps
                where !finished.contains(step.index) && !running.contains(step.index) && step.dependencies.allSatisfy(finished.contains) {
                    let message = try stepRequest(step, of: pipeline, from: values, parent: request)
                    let remaining = try remainingTime(timeout, since: started, pipeline: pipeline.name)
                    running.insert(step.index)
                    group.addTask {
                        let sent = DispatchTime.now().uptimeNanoseconds
                        do {
                            let response = try await call(message, remaining)
                            return (step.index, response, sent, DispatchTime.now().uptimeNanoseconds)
                        } catch let error as RPCError {
                            throw RPCError(code: error.code, message: "pipeline '\(pipeline.name)' \(step.label): \(error.message)")
                        }
                    }
                }
                guard let (index, response, sent, received) = try await group.next() else {
                    // Nothing runs and nothing can start: the graph was checked at load, so this
                    // is a step whose input was an optional pipeline input left out.
                    throw RPCError(code: .internalError, message: "pipeline '\(pipeline.name)' stalled")
                }
                running.remove(index)
                finished.insert(index)
                let step = pipeline.steps[index]
                try absorb(response, of: step, pipeline: pipeline.name, into: &values)
                spans.append((sent, received))
                stepMicros[index] = Int64((received - sent) / 1000)
                pipeline.stepTimers[index].recordNanoseconds(Int64(received - sent))
                network += response.parameters[ResponseParameters.network]?.integerValue ?? 0
                queue += response.parameters[ResponseParameters.queue]?.integerValue ?? 0
                compute += response.parameters[ResponseParameters.compute]?.integerValue ?? 0
            }
        }

        var outputs: [String: Tensor] = [:]
        for spec in pipeline.signature.outputs {
            guard let value = values[spec.name] else { continue }
            outputs[spec.name] = Tensor(dataType: DataType(rawValue: value.datatype) ?? spec.dataType, shape: value.shape.map { Int($0) }, data: [UInt8](value.data))
        }
        var response = Inference_ModelInferResponse()
        response.modelName = pipeline.name
        response.modelVersion = pipeline.version
        response.id = request.id
        try TensorCodec.encodeOutputs(outputs, requested: request.outputs, signature: pipeline.signature, into: &response)
        let wall = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1000)
        setBreakdown(of: &response, frontend: wall - Int64(covered(spans) / 1000), network: network, queue: queue, compute: compute)
        for step in pipeline.steps {
            response.parameters[stepParameter(step)] = .int64(stepMicros[step.index] ?? 0)
        }
        return (response, Outcome(batch: batch, queueNanoseconds: UInt64(max(queue, 0)) * 1000, computeNanoseconds: UInt64(max(compute, 0)) * 1000))
    }

    /// The step's request: its inputs from the pipeline's tensors (an optional pipeline input the
    /// client left out is left out here too), the outputs it keeps, and the parent's id and
    /// parameters.
    static func stepRequest(
        _ step: Pipeline.Step, of pipeline: Pipeline, from values: [String: Value], parent: Inference_ModelInferRequest
    ) throws(RPCError) -> Inference_ModelInferRequest {
        var message = Inference_ModelInferRequest()
        message.modelName = step.model
        message.modelVersion = step.version
        message.id = parent.id
        message.parameters = parent.parameters
        for binding in step.inputs {
            guard let value = values[binding.tensor] else {
                if pipeline.signature.inputs.contains(where: { $0.name == binding.tensor && $0.optional }) { continue }
                throw RPCError(code: .internalError, message: "pipeline '\(pipeline.name)' \(step.label): tensor '\(binding.tensor)' is missing")
            }
            var input = Inference_ModelInferRequest.InferInputTensor()
            input.name = binding.name
            input.datatype = value.datatype
            input.shape = value.shape
            message.inputs.append(input)
            message.rawInputContents.append(value.data)
        }
        for binding in step.outputs {
            var output = Inference_ModelInferRequest.InferRequestedOutputTensor()
            output.name = binding.name
            message.outputs.append(output)
        }
        return message
    }

    /// Takes the step's outputs into the pipeline's tensors under their pipeline names.
    static func absorb(
        _ response: Inference_ModelInferResponse, of step: Pipeline.Step, pipeline: String, into values: inout [String: Value]
    ) throws(RPCError) {
        guard response.rawOutputContents.count == response.outputs.count else {
            throw RPCError(code: .internalError, message: "pipeline '\(pipeline)' \(step.label): the answer's outputs are not raw tensors")
        }
        for binding in step.outputs {
            guard let position = response.outputs.firstIndex(where: { $0.name == binding.name }) else {
                throw RPCError(code: .internalError, message: "pipeline '\(pipeline)' \(step.label): the model returned no output '\(binding.name)'")
            }
            let output = response.outputs[position]
            values[binding.tensor] = Value(datatype: output.datatype, shape: output.shape, data: response.rawOutputContents[position])
        }
    }

    /// Fulcrum's timing breakdown, µs (negative values, from clock granularity, become 0).
    static func setBreakdown(of response: inout Inference_ModelInferResponse, frontend: Int64, network: Int64, queue: Int64, compute: Int64) {
        response.parameters[ResponseParameters.frontend] = .int64(max(0, frontend))
        response.parameters[ResponseParameters.network] = .int64(max(0, network))
        response.parameters[ResponseParameters.queue] = .int64(max(0, queue))
        response.parameters[ResponseParameters.compute] = .int64(max(0, compute))
    }

    /// The time left before the client's deadline, or DEADLINE_EXCEEDED.
    static func remainingTime(_ timeout: Duration?, since started: UInt64, pipeline: String) throws(RPCError) -> Duration? {
        guard let timeout else { return nil }
        let elapsed = Duration.nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        guard timeout > elapsed else {
            throw RPCError(code: .deadlineExceeded, message: "the request's deadline passed in '\(pipeline)'")
        }
        return timeout - elapsed
    }

    /// Nanoseconds covered by the union of `spans`.
    static func covered(_ spans: [(start: UInt64, end: UInt64)]) -> UInt64 {
        var total: UInt64 = 0
        var reach: UInt64 = 0
        for span in spans.sorted(by: { $0.start < $1.start }) {
            let start = max(span.start, reach)
            if span.end > start { total += span.end - start }
            reach = max(reach, span.end)
        }
        return total
    }

    // MARK: Processors

    /// Runs a processor on one request (a pipeline step, or a client calling it directly): the
    /// request is validated against its configuration like a model's, and the answer's compute
    /// time is the processor's own.
    static func run(
        _ model: ProcessorModel, request: Inference_ModelInferRequest, timeout: Duration?, started: UInt64
    ) async throws -> (Inference_ModelInferResponse, Outcome) {
        let batch = try InferRequestValidator.validate(request, against: model.signature)
        let inputs = try TensorCodec.decodeInputs(request)
        let remaining = try remainingTime(timeout, since: started, pipeline: model.name)
        let context = ProcessorContext(
            model: model.name, requestID: request.id, deadline: remaining.map { ContinuousClock.now + $0 },
            batching: model.configuration.maxBatchSize > 0)
        let began = DispatchTime.now().uptimeNanoseconds
        let outputs: [String: Tensor]
        do {
            outputs = try await model.processor.process(inputs, context: context)
        } catch let error as ProcessorError {
            let code: RPCError.Code = switch error.kind {
            case .invalidInput: .invalidArgument
            case .unavailable: .unavailable
            case .internalError: .internalError
            }
            throw RPCError(code: code, message: "processor '\(model.name)': \(error.message)")
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .internalError, message: "processor '\(model.name)' failed: \(error)")
        }
        let computeNs = DispatchTime.now().uptimeNanoseconds - began
        for spec in model.signature.outputs {
            guard let tensor = outputs[spec.name] else {
                throw RPCError(code: .internalError, message: "processor '\(model.name)' returned no output '\(spec.name)'")
            }
            guard tensor.dataType == spec.dataType else {
                throw RPCError(code: .internalError, message: "processor '\(model.name)': output '\(spec.name)' is \(tensor.dataType.rawValue), its configuration says \(spec.dataType.rawValue)")
            }
        }
        var response = Inference_ModelInferResponse()
        response.modelName = model.name
        response.modelVersion = model.version
        response.id = request.id
        try TensorCodec.encodeOutputs(outputs, requested: request.outputs, signature: model.signature, into: &response)
        let wall = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1000)
        let compute = Int64(computeNs / 1000)
        setBreakdown(of: &response, frontend: wall - compute, network: 0, queue: 0, compute: compute)
        return (response, Outcome(batch: batch, queueNanoseconds: 0, computeNanoseconds: computeNs))
    }
}

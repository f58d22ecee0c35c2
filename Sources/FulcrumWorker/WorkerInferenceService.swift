import Dispatch
import Foundation
import FulcrumProtocol
import FulcrumRuntime
import FulcrumSchema
import FulcrumService
import GRPCCore
import Logging
import Metrics
import Tracing

/// The worker's side of `inference.GRPCInferenceService`: the models in its own store, executed
/// here. Frontends call it; so can any open inference protocol client, for a standalone worker.
struct WorkerInferenceService: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let store: ModelStore
    let state: WorkerState
    let limit: MessageLimit
    /// Whether repository load/unload calls are allowed, and with which token.
    var control: ModelControl = .disabled
    let logger: Logger
    /// `fulcrum_worker_received_bytes_total` and `fulcrum_worker_sent_bytes_total`, made once.
    let byteCounters = (
        received: Counter(label: "fulcrum_worker_received_bytes_total"), sent: Counter(label: "fulcrum_worker_sent_bytes_total")
    )

    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse {
        var response = Inference_ServerLiveResponse()
        response.live = true
        return response
    }

    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws -> Inference_ServerReadyResponse {
        var response = Inference_ServerReadyResponse()
        response.ready = state.isReady
        return response
    }

    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse {
        var response = Inference_ModelReadyResponse()
        response.ready = state.isReady && (try? store.resolve(request.name, version: request.version)) != nil
        return response
    }

    func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws -> Inference_ServerMetadataResponse {
        ServerInfo.metadata
    }

    func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws -> Inference_ModelMetadataResponse {
        let served = try store.resolve(request.name, version: request.version)
        let versions = store.snapshot[request.name]?.versions.map(\.version) ?? [served.version]
        return served.signature.metadata(versions: versions)
    }

    func modelConfig(request: Inference_ModelConfigRequest, context: ServerContext) async throws -> Inference_ModelConfigResponse {
        let served = try store.resolve(request.name, version: request.version)
        var response = Inference_ModelConfigResponse()
        response.config = served.model.configuration.wire
        return response
    }

    func modelInfer(request: Inference_ModelInferRequest, context: ServerContext) async throws -> Inference_ModelInferResponse {
        try await infer(request)
    }

    /// ModelInfer with the request headers, so the caller's deadline bounds the time in the queue
    /// and its trace context (`traceparent`) parents this worker's spans.
    func modelInfer(
        request: ServerRequest<Inference_ModelInferRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelInferResponse> {
        ServerResponse(message: try await modelInfer(request.message, metadata: request.metadata), metadata: [:])
    }

    /// One ModelInfer call with its headers: the fast path of `GRPCEdgeServer` calls this directly.
    func modelInfer(_ message: Inference_ModelInferRequest, metadata: Metadata) async throws -> Inference_ModelInferResponse {
        let deadline = Deadline.timeout(in: metadata).map { ContinuousClock.now + $0 }
        return try await withSpan(
            "worker ModelInfer \(message.modelName)", context: .extracted(from: metadata), ofKind: .server
        ) { span in
            if span.isRecording {
                span.attributes["rpc.method"] = "ModelInfer"
                span.attributes["fulcrum.model"] = message.modelName
                span.attributes["fulcrum.worker"] = state.id
            }
            return try await infer(message, deadline: deadline)
        }
    }

    func modelStreamInfer(
        request: RPCAsyncSequence<Inference_ModelInferRequest, any Error>,
        response: RPCWriter<Inference_ModelStreamInferResponse>,
        context: ServerContext
    ) async throws {
        try await StreamInfer.serve(request, into: response) { message in
            try await infer(message)
        }
    }

    func modelStatistics(request: Inference_ModelStatisticsRequest, context: ServerContext) async throws -> Inference_ModelStatisticsResponse {
        var response = Inference_ModelStatisticsResponse()
        if request.name.isEmpty {
            response.modelStats = store.served
                .sorted { ($0.name, $0.model.version) < ($1.name, $1.model.version) }
                .map { $0.statistics.wire(name: $0.name, version: $0.version) }
        } else if request.version.isEmpty {
            _ = try store.resolve(request.name, version: "")
            response.modelStats = (store.snapshot[request.name]?.versions ?? []).map {
                $0.statistics.wire(name: $0.name, version: $0.version)
            }
        } else {
            let served = try store.resolve(request.name, version: request.version)
            response.modelStats = [served.statistics.wire(name: served.name, version: served.version)]
        }
        return response
    }

    func repositoryIndex(request: Inference_RepositoryIndexRequest, context: ServerContext) async throws -> Inference_RepositoryIndexResponse {
        var response = Inference_RepositoryIndexResponse()
        response.models = RepositoryIndexing.entries(store.hostedModels, readyOnly: request.ready)
        return response
    }

    func repositoryModelLoad(request: Inference_RepositoryModelLoadRequest, context: ServerContext) async throws -> Inference_RepositoryModelLoadResponse {
        try load(request.modelName, authorization: nil)
        return Inference_RepositoryModelLoadResponse()
    }

    func repositoryModelUnload(request: Inference_RepositoryModelUnloadRequest, context: ServerContext) async throws -> Inference_RepositoryModelUnloadResponse {
        try unload(request.modelName, authorization: nil)
        return Inference_RepositoryModelUnloadResponse()
    }

    /// RepositoryModelLoad with its headers: the admin token travels in `authorization`.
    func repositoryModelLoad(
        request: ServerRequest<Inference_RepositoryModelLoadRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Inference_RepositoryModelLoadResponse> {
        try load(request.message.modelName, authorization: ModelControl.authorization(request.metadata))
        return ServerResponse(message: Inference_RepositoryModelLoadResponse(), metadata: [:])
    }

    /// RepositoryModelUnload with its headers: the admin token travels in `authorization`.
    func repositoryModelUnload(
        request: ServerRequest<Inference_RepositoryModelUnloadRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Inference_RepositoryModelUnloadResponse> {
        try unload(request.message.modelName, authorization: ModelControl.authorization(request.metadata))
        return ServerResponse(message: Inference_RepositoryModelUnloadResponse(), metadata: [:])
    }

    private func load(_ model: String, authorization: String?) throws {
        try control.authorize(authorization, model: model, load: true)
        guard store.repositoryHas(model) else {
            throw RPCError(code: .notFound, message: "no model '\(model)' in the model repository")
        }
        let entry = store.load(model)
        if entry.versions.isEmpty {
            let reason = entry.failure ?? entry.failures.last?.reason ?? "no version loaded"
            throw RPCError(code: .internalError, message: "failed to load '\(model)': \(reason)")
        }
        logger.notice("loaded model '\(model)' (admin call)")
    }

    private func unload(_ model: String, authorization: String?) throws {
        try control.authorize(authorization, model: model, load: false)
        _ = store.unload(model)
        logger.notice("unloaded model '\(model)' (admin call)")
    }

    /// Validates, queues, executes and encodes one request. `deadline` is the caller's.
    private func infer(_ request: Inference_ModelInferRequest, deadline: ContinuousClock.Instant? = nil) async throws -> Inference_ModelInferResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let (response, served, execution) = try await execute(request, deadline: deadline, started: started)
            let handles = served.metrics
            handles.answered.increment()
            handles.seconds.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            handles.queue.recordNanoseconds(Int64(clamping: execution.queueNs))
            handles.compute.recordNanoseconds(Int64(clamping: execution.computeNs))
            byteCounters.received.increment(by: request.rawInputContents.reduce(0) { $0 + $1.count })
            byteCounters.sent.increment(by: response.rawOutputContents.reduce(0) { $0 + $1.count })
            return response
        } catch {
            let code = (error as? RPCError).map { "\($0.code)" } ?? "internal"
            Counter(label: "fulcrum_worker_requests_total", dimensions: [("model", request.modelName), ("code", code)]).increment()
            throw error
        }
    }

    private func execute(
        _ request: Inference_ModelInferRequest, deadline: ContinuousClock.Instant?, started: UInt64
    ) async throws -> (Inference_ModelInferResponse, ServedModel, ModelScheduler.Execution) {
        try limit.check(request)
        let served = try store.resolve(request.modelName, version: request.modelVersion)
        let statistics = served.statistics
        do {
            let batchSize = try InferRequestValidator.validate(request, against: served.signature)
            let inputs = try TensorCodec.decodeInputs(request)
            let submission = ModelScheduler.Submission(
                inputs: inputs,
                samples: served.model.maxBatchSize > 0 ? batchSize : 1,
                shapeKey: Self.shapeKey(inputs, batching: served.model.maxBatchSize > 0),
                priority: try Self.priority(request),
                timeout: try Self.timeout(request),
                deadline: deadline,
                bytes: inputs.values.reduce(0) { $0 + $1.data.count }
            )
            let execution: ModelScheduler.Execution
            let submitted = DefaultTracerClock.now
            do {
                execution = try await served.scheduler.submit(submission)
            } catch let error as FulcrumSchema.RuntimeError {
                if error.code == .deviceFailure, state.phase == .ready {
                    // The accelerator is gone: report UNREADY so the balancer takes this worker out
                    // of the routing snapshot; a restart (the process scaler's, or systemd's) recovers.
                    state.phase = .unready
                    logger.critical("device failure, marking this worker UNREADY: \(error.message)")
                }
                throw RPCError(error)
            } catch is CancellationError {
                throw RPCError(code: .cancelled, message: "the request was cancelled while queued")
            }
            var response = Inference_ModelInferResponse()
            response.modelName = served.name
            response.modelVersion = served.version
            response.id = request.id
            try TensorCodec.encodeOutputs(
                execution.outputs, requested: request.outputs, signature: served.signature, labels: served.labels, into: &response
            )
            Self.traceQueueAndCompute(execution, submitted: submitted)
            let finished = DispatchTime.now().uptimeNanoseconds
            statistics.finished(success: true, totalNs: finished - started, queueNs: execution.queueNs)
            response.parameters[ResponseParameters.queue] = .int64(Int64(execution.queueNs / 1000))
            response.parameters[ResponseParameters.compute] = .int64(Int64(execution.computeNs / 1000))
            response.parameters[ResponseParameters.batchSize] = .int64(Int64(execution.batchSize))
            response.parameters[ResponseParameters.workerTotal] = .int64(Int64((finished - started) / 1000))
            response.parameters[ResponseParameters.worker] = .string(state.id)
            return (response, served, execution)
        } catch {
            statistics.finished(success: false, totalNs: DispatchTime.now().uptimeNanoseconds - started, queueNs: nil)
            throw error
        }
    }

    /// Two child spans of the current (sampled) span: the wait in the model's queue from
    /// `submitted`, then the batch's execution, with the batch size it rode in.
    private static func traceQueueAndCompute(_ execution: ModelScheduler.Execution, submitted: DefaultTracerClock.Timestamp) {
        guard InstrumentationContext.current?.isTraceSampled == true else { return }
        let tracer = InstrumentationSystem.tracer
        let dequeued = DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: submitted.nanosecondsSinceEpoch + execution.queueNs)
        let computed = DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: dequeued.nanosecondsSinceEpoch + execution.computeNs)
        let queue = tracer.startSpan("queue", ofKind: .internal, at: submitted)
        queue.end(at: dequeued)
        let compute = tracer.startSpan("compute", ofKind: .internal, at: dequeued)
        compute.attributes["fulcrum.batch_size"] = execution.batchSize
        compute.end(at: computed)
    }

    /// The non-batch dimensions of every input, in name order: requests batch together only when equal.
    static func shapeKey(_ inputs: [String: Tensor], batching: Bool) -> [Int] {
        var key: [Int] = []
        for name in inputs.keys.sorted() {
            let shape = inputs[name]!.shape
            key.append(-1)
            key.append(contentsOf: batching ? Array(shape.dropFirst()) : shape)
        }
        return key
    }

    /// The `priority` request parameter (uint64 or int64; 0 = the model's default level).
    static func priority(_ request: Inference_ModelInferRequest) throws(RPCError) -> Int {
        guard let parameter = request.parameters["priority"] else { return 0 }
        guard let value = parameter.integerValue, value >= 0 else {
            throw RPCError(code: .invalidArgument, message: "parameter 'priority' must be a non-negative integer")
        }
        return Int(clamping: value)
    }

    /// The `timeout` request parameter, microseconds (int64 or uint64).
    static func timeout(_ request: Inference_ModelInferRequest) throws(RPCError) -> Duration? {
        guard let parameter = request.parameters["timeout"] else { return nil }
        guard let value = parameter.integerValue, value >= 0 else {
            throw RPCError(code: .invalidArgument, message: "parameter 'timeout' must be a non-negative number of microseconds")
        }
        return value == 0 ? nil : .microseconds(value)
    }
}

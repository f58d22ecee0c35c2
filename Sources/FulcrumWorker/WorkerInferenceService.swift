import Dispatch
import FulcrumProtocol
import FulcrumRuntime
import FulcrumService
import Foundation
import GRPCCore
import Logging

/// The worker's side of `inference.GRPCInferenceService`: the models in its own store, executed
/// here. Frontends call it; so can any open inference protocol client, for a standalone worker.
struct WorkerInferenceService: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let store: ModelStore
    let state: WorkerState
    let limit: MessageLimit
    let logger: Logger

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

    func modelStreamInfer(
        request: RPCAsyncSequence<Inference_ModelInferRequest, any Error>,
        response: RPCWriter<Inference_ModelStreamInferResponse>,
        context: ServerContext
    ) async throws {
        for try await message in request {
            var reply = Inference_ModelStreamInferResponse()
            do {
                reply.inferResponse = try await infer(message)
            } catch let error as RPCError {
                reply.errorMessage = error.message
            } catch {
                reply.errorMessage = "\(error)"
            }
            try await response.write(reply)
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
        guard store.repositoryHas(request.modelName) else {
            throw RPCError(code: .notFound, message: "no model '\(request.modelName)' in the model repository")
        }
        let entry = store.load(request.modelName)
        if entry.versions.isEmpty {
            let reason = entry.failure ?? entry.failures.last?.reason ?? "no version loaded"
            throw RPCError(code: .internalError, message: "failed to load '\(request.modelName)': \(reason)")
        }
        return Inference_RepositoryModelLoadResponse()
    }

    func repositoryModelUnload(request: Inference_RepositoryModelUnloadRequest, context: ServerContext) async throws -> Inference_RepositoryModelUnloadResponse {
        _ = store.unload(request.modelName)
        logger.info("unloaded model '\(request.modelName)'")
        return Inference_RepositoryModelUnloadResponse()
    }

    /// Validates, queues, executes and encodes one request.
    private func infer(_ request: Inference_ModelInferRequest) async throws -> Inference_ModelInferResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        try limit.check(request)
        let served = try store.resolve(request.modelName, version: request.modelVersion)
        let statistics = served.statistics
        var queueNs: UInt64? = nil
        do {
            let batchSize = try InferRequestValidator.validate(request, against: served.signature)
            let inputs = try TensorCodec.decodeInputs(request)
            let decoded = DispatchTime.now().uptimeNanoseconds
            statistics.arrived()
            let execution: ModelExecutor.Execution
            do {
                execution = try await served.executor.execute(inputs, onStart: { statistics.leftQueue() })
            } catch let error as FulcrumRuntime.RuntimeError {
                throw RPCError(error)
            } catch is CancellationError {
                throw RPCError(code: .cancelled, message: "the request was cancelled while queued")
            } catch {
                throw RPCError(code: .internalError, message: "\(error)")
            }
            queueNs = execution.queueNs
            let encodeStart = DispatchTime.now().uptimeNanoseconds
            var response = Inference_ModelInferResponse()
            response.modelName = served.name
            response.modelVersion = served.version
            response.id = request.id
            try TensorCodec.encodeOutputs(execution.outputs, requested: request.outputs, signature: served.signature, into: &response)
            let finished = DispatchTime.now().uptimeNanoseconds
            statistics.executed(
                batchSize: batchSize,
                inputNs: decoded - started,
                inferNs: execution.computeNs,
                outputNs: finished - encodeStart
            )
            statistics.finished(success: true, totalNs: finished - started, queueNs: execution.queueNs)
            response.parameters[ResponseParameters.queue] = .int64(Int64(execution.queueNs / 1000))
            response.parameters[ResponseParameters.compute] = .int64(Int64(execution.computeNs / 1000))
            response.parameters[ResponseParameters.workerTotal] = .int64(Int64((finished - started) / 1000))
            response.parameters[ResponseParameters.worker] = .string(state.id)
            return response
        } catch {
            _ = queueNs
            statistics.finished(success: false, totalNs: DispatchTime.now().uptimeNanoseconds - started, queueNs: nil)
            throw error
        }
    }
}

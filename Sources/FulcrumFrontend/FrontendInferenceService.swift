import Dispatch
import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Metrics
import Tracing

/// The public `inference.GRPCInferenceService`: validates each request against the model's
/// metadata, routes it to a worker that hosts the model (power-of-two-choices), forwards it with
/// the remaining deadline, retries once on another worker when the call failed before execution,
/// and adds the timing breakdown to the response. Metadata, configuration, statistics and the
/// repository index are answered from the pool.
struct FrontendInferenceService: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let view: PoolView
    let clients: WorkerClients
    /// Network time per model, for the balancer's capacity model.
    let network: NetworkStatistics
    let signatures: SignatureCache
    let limit: MessageLimit
    /// Whether repository load/unload calls are allowed, and with which token.
    let modelControl: ModelControl
    /// Bounds the predictions held at once.
    let admission: Admission
    /// Who may call (nil: anyone).
    let apiKeys: APIKeys?
    /// The pipelines and processors this frontend runs itself (`--model-repository`).
    let local: FrontendModels
    /// Where sampled predictions are recorded (`--prediction-log`; nil: nowhere).
    let predictionLog: PredictionLog?
    let logger: Logger
    private let router = Router()
    private let metrics = FrontendMetrics()

    init(
        view: PoolView, clients: WorkerClients, network: NetworkStatistics = NetworkStatistics(), limit: MessageLimit,
        control: ModelControl = .disabled, admission: Admission = Admission(), apiKeys: APIKeys? = nil,
        local: FrontendModels = FrontendModels(), predictionLog: PredictionLog? = nil, logger: Logger
    ) {
        self.local = local
        self.predictionLog = predictionLog
        self.apiKeys = apiKeys
        self.admission = admission
        self.network = network
        self.modelControl = control
        self.view = view
        self.clients = clients
        self.limit = limit
        self.signatures = SignatureCache()
        self.logger = logger
    }

    // MARK: Health and metadata

    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse {
        var response = Inference_ServerLiveResponse()
        response.live = true
        return response
    }

    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws -> Inference_ServerReadyResponse {
        var response = Inference_ServerReadyResponse()
        response.ready = isReady
        return response
    }

    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse {
        var response = Inference_ModelReadyResponse()
        response.ready = isModelReady(request.name, version: request.version)
        return response
    }

    func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws -> Inference_ServerMetadataResponse {
        ServerInfo.metadata
    }

    func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws -> Inference_ModelMetadataResponse {
        try await metadata(request.name, version: request.version)
    }

    func modelConfig(request: Inference_ModelConfigRequest, context: ServerContext) async throws -> Inference_ModelConfigResponse {
        var response = Inference_ModelConfigResponse()
        response.config = try await config(request.name, version: request.version)
        return response
    }

    // MARK: Inference

    func modelInfer(request: Inference_ModelInferRequest, context: ServerContext) async throws -> Inference_ModelInferResponse {
        try await infer(request, timeout: nil)
    }

    /// ModelInfer with access to the request headers, so the client's deadline and trace context
    /// (`traceparent`) are passed on.
    func modelInfer(
        request: ServerRequest<Inference_ModelInferRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelInferResponse> {
        ServerResponse(message: try await modelInfer(request.message, metadata: request.metadata), metadata: [:])
    }

    /// One ModelInfer call with its headers: the fast path of `GRPCEdgeServer` calls this directly.
    func modelInfer(_ message: Inference_ModelInferRequest, metadata: Metadata) async throws -> Inference_ModelInferResponse {
        if predictionLog != nil, metadata[stringValues: PredictionLog.replayHeader].first(where: { _ in true }) != nil,
            !PredictionLog.replaying
        {
            return try await PredictionLog.$replaying.withValue(true) { try await modelInfer(message, metadata: metadata) }
        }
        guard let apiKeys else {
            return try await InstrumentationContext.withValue(.extracted(from: metadata)) {
                try await infer(message, timeout: Deadline.timeout(in: metadata))
            }
        }
        let tenant = try apiKeys.authorize(APIKeys.credential(metadata), model: message.modelName)
        return try await APIKeys.$tenant.withValue(tenant) {
            try await InstrumentationContext.withValue(.extracted(from: metadata)) {
                try await infer(message, timeout: Deadline.timeout(in: metadata))
            }
        }
    }

    func modelStreamInfer(
        request: RPCAsyncSequence<Inference_ModelInferRequest, any Error>,
        response: RPCWriter<Inference_ModelStreamInferResponse>,
        context: ServerContext
    ) async throws {
        try await StreamInfer.serve(request, into: response) { message in
            try await infer(message, timeout: nil)
        }
    }

    // MARK: Statistics and repository

    func modelStatistics(request: Inference_ModelStatisticsRequest, context: ServerContext) async throws -> Inference_ModelStatisticsResponse {
        try await statistics(request.name, version: request.version)
    }

    func repositoryIndex(request: Inference_RepositoryIndexRequest, context: ServerContext) async throws -> Inference_RepositoryIndexResponse {
        index(readyOnly: request.ready)
    }

    func repositoryModelLoad(request: Inference_RepositoryModelLoadRequest, context: ServerContext) async throws -> Inference_RepositoryModelLoadResponse {
        try await control(model: request.modelName, load: true, authorization: nil)
        return Inference_RepositoryModelLoadResponse()
    }

    func repositoryModelUnload(request: Inference_RepositoryModelUnloadRequest, context: ServerContext) async throws -> Inference_RepositoryModelUnloadResponse {
        try await control(model: request.modelName, load: false, authorization: nil)
        return Inference_RepositoryModelUnloadResponse()
    }

    /// RepositoryModelLoad with its headers: the admin token travels in `authorization`.
    func repositoryModelLoad(
        request: ServerRequest<Inference_RepositoryModelLoadRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Inference_RepositoryModelLoadResponse> {
        try await control(model: request.message.modelName, load: true, authorization: ModelControl.authorization(request.metadata))
        return ServerResponse(message: Inference_RepositoryModelLoadResponse(), metadata: [:])
    }

    /// RepositoryModelUnload with its headers: the admin token travels in `authorization`.
    func repositoryModelUnload(
        request: ServerRequest<Inference_RepositoryModelUnloadRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Inference_RepositoryModelUnloadResponse> {
        try await control(model: request.message.modelName, load: false, authorization: ModelControl.authorization(request.metadata))
        return ServerResponse(message: Inference_RepositoryModelUnloadResponse(), metadata: [:])
    }

    // MARK: Transport-free operations (the gRPC methods above and the HTTP edge both use these)

    /// Whether a snapshot has arrived and some worker is ready.
    var isReady: Bool { view.isReady }

    /// Whether some worker serves `name` at `version` ("" = any); a pipeline is ready when every
    /// model its steps call is.
    func isModelReady(_ name: String, version: String) -> Bool {
        switch try? local.local(name, version: version) {
        case .pipeline(let pipeline)?: return pipeline.steps.allSatisfy { isModelReady($0.model, version: $0.version) }
        case .processor?: return true
        case nil: if local.entries[name] != nil { return false }
        }
        return (try? replicas(name, version: version)) != nil
    }

    /// The ModelMetadata answer for `name` at `version` ("" = newest).
    func metadata(_ name: String, version: String) async throws -> Inference_ModelMetadataResponse {
        if let model = try local.local(name, version: version) {
            return model.signature.metadata(versions: [model.signature.version])
        }
        let (placement, chosen) = try replicas(name, version: version)
        let entry = try await signature(for: chosen)
        return entry.signature.metadata(versions: placement.versions)
    }

    /// The model's configuration as its workers report it.
    func config(_ name: String, version: String) async throws -> Inference_ModelConfig {
        if let model = try local.local(name, version: version) { return model.configuration.wire }
        let (_, chosen) = try replicas(name, version: version)
        return try await signature(for: chosen).config
    }

    /// Statistics summed over the ready workers ("" name = every model).
    func statistics(_ name: String, version: String) async throws -> Inference_ModelStatisticsResponse {
        var response = Inference_ModelStatisticsResponse()
        if local.entries[name] != nil {
            response.modelStats = local.statistics(name: name, version: version)
            guard !response.modelStats.isEmpty else {
                throw RPCError(code: .notFound, message: "unknown version '\(version)' of model '\(name)'")
            }
            return response
        }
        if !name.isEmpty {
            _ = try replicas(name, version: version)
        }
        var request = Inference_ModelStatisticsRequest()
        request.name = name
        request.version = version
        var merged = StatisticsMerger()
        for (_, address) in view.readyWorkers.sorted(by: { $0.key < $1.key }) {
            do {
                merged.add(try await clients.inference(address).modelStatistics(request))
            } catch let error as RPCError where error.code == .notFound {
                continue
            }
        }
        response.modelStats = merged.result + (name.isEmpty ? local.statistics(name: "", version: "") : [])
        return response
    }

    /// The repository index: every model version any ready worker lists.
    func index(readyOnly: Bool) -> Inference_RepositoryIndexResponse {
        let hosted = view.snapshot.workers.filter { $0.state == .ready }.flatMap(\.models)
        var response = Inference_RepositoryIndexResponse()
        response.models = RepositoryIndexing.entries(hosted, readyOnly: readyOnly)
        for entry in local.entries.values.sorted(by: { $0.name < $1.name }) {
            var index = Inference_RepositoryIndexResponse.ModelIndex()
            index.name = entry.name
            index.version = entry.version
            switch entry {
            case .processor:
                index.state = "READY"
            case .pipeline(let pipeline):
                let waiting = pipeline.models.sorted().filter { !isModelReady($0, version: "") }
                index.state = waiting.isEmpty ? "READY" : "UNAVAILABLE"
                index.reason = waiting.isEmpty ? "" : "waiting for \(waiting.map { "'\($0)'" }.joined(separator: ", ")) in the pool"
            case .failed(_, _, let reason):
                index.state = "UNAVAILABLE"
                index.reason = reason
            }
            if !readyOnly || index.state == "READY" { response.models.append(index) }
        }
        response.models.sort { ($0.name, Int($0.version) ?? -1) < ($1.name, Int($1.version) ?? -1) }
        return response
    }

    /// Asks every ready worker to load (`load` true) or unload a model, once `authorization`
    /// (the caller's `authorization` header) passes the model-control check; the workers get the
    /// frontend's own token and check it again.
    func control(model: String, load: Bool, authorization: String?) async throws {
        try modelControl.authorize(authorization, model: model, load: load)
        let metadata = modelControl.forwardingMetadata
        if load {
            var request = Inference_RepositoryModelLoadRequest()
            request.modelName = model
            try await broadcast { _ = try await $0.repositoryModelLoad(request, metadata: metadata) }
        } else {
            var request = Inference_RepositoryModelUnloadRequest()
            request.modelName = model
            try await broadcast { _ = try await $0.repositoryModelUnload(request, metadata: metadata) }
        }
        logger.notice("\(load ? "loaded" : "unloaded") model '\(model)' on every ready worker (admin call)")
    }

    /// Validates, routes and forwards one prediction; `timeout` is the client's deadline. Counts
    /// it by outcome and records where its time went (Prometheus metrics). Runs in a server span
    /// that continues the caller's trace (the current `InstrumentationContext`); the response
    /// names the trace in `fulcrum.trace_id`.
    func infer(_ request: Inference_ModelInferRequest, timeout: Duration?) async throws -> Inference_ModelInferResponse {
        try await withSpan("ModelInfer \(request.modelName)", ofKind: .server) { span in
            if span.isRecording {
                span.attributes["rpc.method"] = "ModelInfer"
                span.attributes["fulcrum.model"] = request.modelName
            }
            guard let predictionLog, predictionLog.sampled(request.modelName) else {
                return try await tracedInfer(request, timeout: timeout, span: span)
            }
            let received = Int64(Date().timeIntervalSince1970 * 1_000_000)
            let started = DispatchTime.now().uptimeNanoseconds
            let traceID = span.context.traceID ?? ""
            let tenant = APIKeys.tenant ?? request.parameters["tenant"]?.stringParam ?? ""
            do {
                let response = try await tracedInfer(request, timeout: timeout, span: span)
                let hash = view.placement(of: request.modelName)?.replicas.first { $0.version == response.modelVersion }?.contentHash ?? ""
                predictionLog.record(
                    request, response: response, error: nil, replay: PredictionLog.replaying, receivedUnixMicroseconds: received,
                    latencyMicroseconds: Int64((DispatchTime.now().uptimeNanoseconds - started) / 1000), tenant: tenant, traceID: traceID, modelHash: hash)
                return response
            } catch {
                let status = (error as? RPCError).map { RPCErrorSummary(code: $0.code.rawValue, message: $0.message) } ?? RPCErrorSummary(code: 2, message: "\(error)")
                predictionLog.record(
                    request, response: nil, error: status, replay: PredictionLog.replaying, receivedUnixMicroseconds: received,
                    latencyMicroseconds: Int64((DispatchTime.now().uptimeNanoseconds - started) / 1000), tenant: tenant, traceID: traceID, modelHash: "")
                throw error
            }
        }
    }

    private func tracedInfer(_ request: Inference_ModelInferRequest, timeout: Duration?, span: any Span) async throws -> Inference_ModelInferResponse {
        var response = try await countedInfer(request, timeout: timeout)
        if let traceID = span.context.traceID {
            response.parameters[ResponseParameters.traceID] = .string(traceID)
        }
        // Spans that are not recorded (the default: context propagated only) skip the attributes.
        if span.isRecording {
            for key in [ResponseParameters.frontend, ResponseParameters.network, ResponseParameters.queue, ResponseParameters.compute] {
                if let micros = response.parameters[key]?.integerValue { span.attributes[key] = micros }
            }
        }
        return response
    }

    private func countedInfer(_ request: Inference_ModelInferRequest, timeout: Duration?) async throws -> Inference_ModelInferResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        let bytes = MessageLimit.payloadBytes(request)
        do {
            try admission.enter(bytes: bytes, model: request.modelName, timeout: timeout)
            var answeredAt: UInt64? = nil
            defer { admission.leave(bytes: bytes, model: request.modelName, latency: answeredAt.map { $0 - started }) }
            let response: Inference_ModelInferResponse
            if let model = try local.local(request.modelName, version: request.modelVersion) {
                try limit.check(payloadBytes: bytes)
                response = try await run(model, request, timeout: timeout, started: started)
            } else {
                response = try await forward(request, payloadBytes: bytes, timeout: timeout, started: started)
            }
            let finished = DispatchTime.now().uptimeNanoseconds
            answeredAt = finished
            let handles = metrics.model(request.modelName)
            handles.answered.increment()
            handles.seconds.recordNanoseconds(Int64(finished - started))
            for (timer, key) in zip(handles.hops, FrontendMetrics.hopParameters) {
                if let micros = response.parameters[key]?.integerValue { timer.recordMicroseconds(micros) }
            }
            let received = request.rawInputContents.reduce(0) { $0 + $1.count }
            let sent = response.rawOutputContents.reduce(0) { $0 + $1.count }
            // The tensors cross both hops: client ↔ frontend and frontend ↔ worker.
            metrics.clientRequestBytes.increment(by: received)
            metrics.workerRequestBytes.increment(by: received)
            metrics.clientResponseBytes.increment(by: sent)
            metrics.workerResponseBytes.increment(by: sent)
            return response
        } catch {
            let code = (error as? RPCError).map { "\($0.code)" } ?? "internal"
            Counter(label: "fulcrum_frontend_requests_total", dimensions: [("model", request.modelName), ("code", code)]).increment()
            throw error
        }
    }

    /// Runs a pipeline or a processor here. A pipeline's steps that name pool models are
    /// forwarded as requests of their own (validated, routed, retried); those that name a
    /// processor or a pipeline run here.
    private func run(
        _ model: FrontendModels.Local, _ request: Inference_ModelInferRequest, timeout: Duration?, started: UInt64
    ) async throws -> Inference_ModelInferResponse {
        do {
            let (response, outcome) = try await withSpan("\(model.kind) \(model.name)", ofKind: .internal) { _ in
                switch model {
                case .processor(let processor):
                    return try await PipelineRunner.run(processor, request: request, timeout: timeout, started: started)
                case .pipeline(let pipeline):
                    return try await PipelineRunner.run(pipeline, request: request, timeout: timeout, started: started) { step, remaining in
                        let now = DispatchTime.now().uptimeNanoseconds
                        if let nested = try local.local(step.modelName, version: step.modelVersion) {
                            return try await run(nested, step, timeout: remaining, started: now)
                        }
                        return try await forward(step, payloadBytes: MessageLimit.payloadBytes(step), timeout: remaining, started: now)
                    }
                }
            }
            local.record(
                model.name, batch: outcome.batch, succeeded: true, nanoseconds: DispatchTime.now().uptimeNanoseconds - started,
                queue: outcome.queueNanoseconds, compute: outcome.computeNanoseconds)
            return response
        } catch {
            local.record(model.name, batch: 0, succeeded: false, nanoseconds: DispatchTime.now().uptimeNanoseconds - started, queue: 0, compute: 0)
            throw error
        }
    }

    private func forward(
        _ request: Inference_ModelInferRequest, payloadBytes: Int, timeout: Duration?, started: UInt64
    ) async throws -> Inference_ModelInferResponse {
        try limit.check(payloadBytes: payloadBytes)
        // The versions to try: the one the request names, or its route's choice and then the
        // route's other versions (a version that fails on every worker hands over to the next).
        let routing = routedVersions(request)
        guard routing.watched != nil || !routing.shadows.isEmpty else {
            return try await forward(request, plan: routing.plan, timeout: timeout, started: started)
        }
        // A version in a progressive rollout is judged by what its requests got: an answer from
        // it counts with its latency; a request routed to it that failed, or that another version
        // had to answer, counts as its error.
        let watched = routing.watched.flatMap { $0 == routing.plan.first ? $0 : nil }
        let response: Inference_ModelInferResponse
        do {
            response = try await forward(request, plan: routing.plan, timeout: timeout, started: started)
        } catch let error as RPCError where error.code != .invalidArgument && error.code != .notFound {
            if let watched { network.recordVersion(model: request.modelName, version: watched, microseconds: 0, failed: true) }
            throw error
        }
        let elapsed = (DispatchTime.now().uptimeNanoseconds - started) / 1000
        if let watched {
            network.recordVersion(model: request.modelName, version: watched, microseconds: elapsed, failed: response.modelVersion != watched)
        }
        if !routing.shadows.isEmpty {
            let service = self
            network.shadows.copy(request, answeredBy: response, servedMicroseconds: elapsed, shadows: routing.shadows) { copy in
                try await service.forward(copy, plan: [copy.modelVersion], timeout: Self.shadowTimeout, started: DispatchTime.now().uptimeNanoseconds)
            }
        }
        return response
    }

    /// How long a shadow copy may take before it counts as failed.
    static let shadowTimeout: Duration = .seconds(10)

    private func forward(
        _ request: Inference_ModelInferRequest, plan: [String], timeout: Duration?, started: UInt64
    ) async throws -> Inference_ModelInferResponse {
        var plan = plan
        var (_, chosen) = try replicas(request.modelName, version: plan.removeFirst())
        try InferRequestValidator.validate(request, against: try await signature(for: chosen).signature)

        var forwarded = request
        forwarded.modelVersion = chosen[0].version
        var excluded = view.suspects
        var lastError: RPCError? = nil
        for attempt in 0..<2 {
            // Re-read the placement on a retry: the failed worker may already be gone.
            var candidates = attempt == 0 ? chosen : ((try? replicas(request.modelName, version: forwarded.modelVersion).1) ?? chosen)
            if attempt > 0, !candidates.contains(where: { !excluded.contains($0.workerID) }), let next = plan.first {
                // Every worker of this version failed: the route's next version takes the request.
                plan.removeFirst()
                if let (_, others) = try? replicas(request.modelName, version: next),
                    let nextEntry = try? await signature(for: others),
                    (try? InferRequestValidator.validate(request, against: nextEntry.signature)) != nil
                {
                    (chosen, candidates) = (others, others)
                    forwarded.modelVersion = next
                }
            }
            var random = QuickRandom()
            let pick = router.choose(
                from: candidates.map {
                    Router.Candidate(workerID: $0.workerID, outstanding: clients.outstanding($0.workerID), reportedQueueDepth: $0.queueDepth)
                },
                excluding: excluded,
                using: &random
            )
            guard let pick, let replica = candidates.first(where: { $0.workerID == pick.workerID }) else { break }
            if attempt > 0 && excluded.contains(replica.workerID) { break }
            var remaining: Duration? = nil
            if let timeout {
                let elapsed = Duration.nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
                guard timeout > elapsed else {
                    throw RPCError(code: .deadlineExceeded, message: "the request's deadline passed in the frontend")
                }
                remaining = timeout - elapsed
            }
            let sent = DispatchTime.now().uptimeNanoseconds
            do {
                var response = try await withSpan("forward to \(replica.workerID)", ofKind: .client) { span in
                    if span.isRecording {
                        span.attributes["fulcrum.worker"] = replica.workerID
                        span.attributes["net.peer.name"] = replica.address.description
                        span.attributes["fulcrum.attempt"] = attempt + 1
                    }
                    let headers = span.context.grpcMetadata.compactMap { entry -> (String, String)? in
                        if case .string(let value) = entry.value { return (entry.key, value) }
                        return nil
                    }
                    return try await clients.tracking(replica.workerID) {
                        try await clients.link(replica.address).modelInfer(forwarded, metadata: headers, timeout: remaining)
                    }
                }
                let received = DispatchTime.now().uptimeNanoseconds
                let roundTripUs = Int64((received - sent) / 1000)
                let workerUs = response.parameters[ResponseParameters.workerTotal]?.integerValue ?? 0
                response.parameters[ResponseParameters.network] = .int64(max(0, roundTripUs - workerUs))
                if workerUs > 0 { network.record(model: request.modelName, networkMicroseconds: roundTripUs - workerUs) }
                response.parameters[ResponseParameters.frontend] = .int64(Int64((received - started) / 1000) - roundTripUs)
                response.parameters.removeValue(forKey: ResponseParameters.workerTotal)
                return response
            } catch let received as RPCError {
                // Pass on the worker's status and message only: its trailers are not ours to send.
                let error = RPCError(code: received.code, message: received.message)
                guard Self.retryable(error) else { throw error }
                let rejection = received.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true })
                if rejection == "queue-full" {
                    // The worker is healthy but full: another replica may have room; the
                    // timeout and deadline refusals are final.
                    guard candidates.count > 1 else { throw error }
                } else if rejection != nil {
                    throw error
                } else {
                    logger.warning("worker \(replica.workerID) failed a call (\(error.code): \(error.message)); \(attempt == 0 ? "retrying on another worker" : "giving up")")
                    view.markSuspect(replica.workerID)
                }
                excluded.insert(replica.workerID)
                lastError = error
            }
        }
        throw lastError ?? RPCError(code: .unavailable, message: "no worker can serve model '\(request.modelName)' now")
    }

    /// Failures that happened before the worker executed the request (or where executing again
    /// is harmless: inference is idempotent).
    private static func retryable(_ error: RPCError) -> Bool {
        error.code == .unavailable
    }

    /// Sends a repository call to every ready worker; the first failure is the answer.
    private func broadcast(
        _ call: (Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>) async throws -> Void
    ) async throws {
        let workers = view.readyWorkers
        guard !workers.isEmpty else {
            throw RPCError(code: .unavailable, message: "no worker is ready")
        }
        for (_, address) in workers.sorted(by: { $0.key < $1.key }) {
            try await call(try clients.inference(address))
        }
    }

    // MARK: Placement and signatures

    /// The replicas that serve `name` at `version` ("" = the newest version any worker serves),
    /// or the error the client should get: NOT_FOUND when no worker knows the model or version,
    /// UNAVAILABLE when it is known but not loaded anywhere.
    private func replicas(_ name: String, version: String) throws(RPCError) -> (PoolView.ModelPlacement, [PoolView.Replica]) {
        guard let placement = view.placement(of: name) else {
            // A frontend that has just started knows no model until the balancer's first
            // snapshot: that is "not yet", not "no such model".
            guard view.hasSnapshot else {
                throw RPCError(code: .unavailable, message: "the frontend has not received the pool from the balancer yet; retry shortly")
            }
            throw RPCError(code: .notFound, message: "unknown model '\(name)'")
        }
        let target = version.isEmpty ? placement.versions.last : version
        if let target {
            let serving = placement.replicas.filter { $0.version == target }
            if !serving.isEmpty { return (placement, serving) }
        }
        if let failed = placement.unavailable.first(where: { version.isEmpty || $0.version == version || $0.version.isEmpty }) {
            let which = version.isEmpty ? "" : " version \(version)"
            throw RPCError(code: .unavailable, message: "model '\(name)'\(which) is not available on any worker: \(failed.reason)")
        }
        throw RPCError(code: .notFound, message: "unknown version '\(version)' of model '\(name)'")
    }

    /// The versions to try for `request`, best first: the version it names; else, when its model
    /// has a route, the route's choice for it (a pin on its parameters, or the share its id's
    /// hash falls in; requests without an id are split at random) and then the route's other
    /// served versions; else "" (the newest version).
    /// `watched`: the version of a rollout in progress, whose answers the balancer judges;
    /// `shadows`: the route's shadow versions that some worker serves now.
    private func routedVersions(_ request: Inference_ModelInferRequest) -> (plan: [String], watched: String?, shadows: [TrafficRoute.Split]) {
        guard request.modelVersion.isEmpty, let route = view.route(for: request.modelName),
            let placement = view.placement(of: request.modelName)
        else { return ([request.modelVersion], nil, []) }
        let served = Set(placement.replicas.map(\.version))
        let bucket =
            request.id.isEmpty
            ? QuickRandom.int(in: 0..<TrafficRoute.wholeBasisPoints) : TrafficRoute.bucket(model: request.modelName, requestID: request.id)
        let order = route.preference(
            bucket: bucket,
            parameters: { name in
                switch request.parameters[name]?.parameterChoice {
                case .stringParam(let value)?: value
                case .int64Param(let value)?: String(value)
                case .uint64Param(let value)?: String(value)
                case .boolParam(let value)?: String(value)
                default: nil
                }
            },
            served: served
        )
        return (order.isEmpty ? [""] : order, route.rollingOut, route.shadows.filter { served.contains($0.version) })
    }

    private func signature(for replicas: [PoolView.Replica]) async throws -> SignatureCache.Entry {
        let first = replicas[0]
        return try await signatures.entry(name: first.model, version: first.version, hash: first.contentHash) {
            var request = Inference_ModelConfigRequest()
            request.name = first.model
            request.version = first.version
            var lastError: (any Error)? = nil
            for replica in replicas {
                do {
                    return try await clients.inference(replica.address).modelConfig(request).config
                } catch {
                    lastError = error
                }
            }
            throw lastError ?? RPCError(code: .unavailable, message: "no worker answered for the model's configuration")
        }
    }
}

import Foundation
import FulcrumProtocol
import FulcrumService
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Synchronization
import Testing

@testable import FulcrumFrontend

/// A worker that answers as a test scripts it: real gRPC (grpc-swift on a loopback port), so the
/// frontend reaches it through its own ModelInfer path (WorkerLink's raw HTTP/2) and its
/// configuration client, as it reaches real workers.
private final class ScriptedWorker: Inference_GRPCInferenceService.SimpleServiceProtocol, Sendable {
    enum Step: Sendable {
        case answer
        case fail(RPCError)
    }

    /// What the next ModelInfer calls get, in order, shared by the workers made with it (so
    /// "the first call fails" holds wherever the router sends it); then answers.
    final class Script: Sendable {
        let steps: Mutex<[Step]>
        init(_ steps: [Step]) { self.steps = Mutex(steps) }
    }

    private let script: Script
    private let calls = Mutex(0)

    init(_ script: Script) { self.script = script }

    /// ModelInfer calls received.
    var inferCalls: Int { calls.withLock { $0 } }

    func modelInfer(request: Inference_ModelInferRequest, context: ServerContext) async throws -> Inference_ModelInferResponse {
        calls.withLock { $0 += 1 }
        let step = script.steps.withLock { $0.isEmpty ? .answer : $0.removeFirst() }
        if case .fail(let error) = step { throw error }
        var response = Inference_ModelInferResponse()
        response.modelName = request.modelName
        response.modelVersion = request.modelVersion
        var output = Inference_ModelInferResponse.InferOutputTensor()
        output.name = "y"
        output.datatype = "FP32"
        output.shape = [4]
        response.outputs = [output]
        response.rawOutputContents = request.rawInputContents  // y = x
        response.parameters[ResponseParameters.workerTotal] = .int64(120)
        response.parameters[ResponseParameters.queue] = .int64(20)
        response.parameters[ResponseParameters.compute] = .int64(80)
        return response
    }

    func modelConfig(request: Inference_ModelConfigRequest, context: ServerContext) async throws -> Inference_ModelConfigResponse {
        var tensor = Inference_ModelInput()
        tensor.name = "x"
        tensor.dataType = .typeFp32
        tensor.dims = [4]
        var out = Inference_ModelOutput()
        out.name = "y"
        out.dataType = .typeFp32
        out.dims = [4]
        var response = Inference_ModelConfigResponse()
        response.config.name = "m"
        response.config.platform = "onnxruntime_onnx"
        response.config.input = [tensor]
        response.config.output = [out]
        return response
    }

    private func unused() -> RPCError { RPCError(code: .unimplemented, message: "not part of this test") }
    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse { throw unused() }
    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws -> Inference_ServerReadyResponse { throw unused() }
    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse { throw unused() }
    func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws -> Inference_ServerMetadataResponse { throw unused() }
    func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws -> Inference_ModelMetadataResponse { throw unused() }
    func modelStreamInfer(
        request: RPCAsyncSequence<Inference_ModelInferRequest, any Error>, response: RPCWriter<Inference_ModelStreamInferResponse>,
        context: ServerContext
    ) async throws { throw unused() }
    func modelStatistics(request: Inference_ModelStatisticsRequest, context: ServerContext) async throws -> Inference_ModelStatisticsResponse { throw unused() }
    func repositoryIndex(request: Inference_RepositoryIndexRequest, context: ServerContext) async throws -> Inference_RepositoryIndexResponse { throw unused() }
    func repositoryModelLoad(request: Inference_RepositoryModelLoadRequest, context: ServerContext) async throws -> Inference_RepositoryModelLoadResponse { throw unused() }
    func repositoryModelUnload(request: Inference_RepositoryModelUnloadRequest, context: ServerContext) async throws -> Inference_RepositoryModelUnloadResponse { throw unused() }
}

/// The frontend's forwarding: routing, the one retry, which refusals are final, and the timing
/// parameters it adds — against scripted workers, in process.
@Suite("frontend forwarding and retries", .timeLimit(.minutes(5)))
struct ForwardingTests {
    /// Serves `workers` on loopback ports, points a frontend at them (worker ids "w0", "w1", ...)
    /// and runs `body` with its inference service.
    private func withFrontend(
        _ workers: [ScriptedWorker], _ body: (FrontendInferenceService, PoolView) async throws -> Void
    ) async throws {
        let transports = workers.map { _ in
            HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext)
        }
        let servers = zip(transports, workers).map { GRPCServer(transport: $0, services: [$1]) }
        let clients = try WorkerClients(maxMessageBytes: 1 << 20, tls: nil, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers { group.addTask { try await server.serve() } }
            group.addTask { try await clients.run() }
            defer {
                for server in servers { server.beginGracefulShutdown() }
                group.cancelAll()
            }
            var snapshot = Fulcrum_Control_V1_PoolSnapshot()
            for (index, transport) in transports.enumerated() {
                let port = try #require(try await transport.listeningAddress.ipv4?.port)
                var worker = Fulcrum_Control_V1_WorkerInfo()
                worker.workerID = "w\(index)"
                worker.address = "127.0.0.1:\(port)"
                worker.state = .ready
                var model = Fulcrum_Control_V1_HostedModel()
                model.name = "m"
                model.version = "1"
                model.state = "READY"
                model.contentHash = "h"
                worker.models = [model]
                snapshot.workers.append(worker)
            }
            let view = PoolView()
            view.update(snapshot, startsStream: true)
            let service = FrontendInferenceService(view: view, clients: clients, limit: MessageLimit(bytes: 1 << 20), logger: Logger(label: "test"))
            try await body(service, view)
        }
    }

    private func request() -> Inference_ModelInferRequest {
        var input = Inference_ModelInferRequest.InferInputTensor()
        input.name = "x"
        input.datatype = "FP32"
        input.shape = [4]
        var request = Inference_ModelInferRequest()
        request.modelName = "m"
        request.inputs = [input]
        request.rawInputContents = [Data([UInt8](repeating: 0, count: 12) + [0, 0, 0x80, 0x3f])]  // 0, 0, 0, 1.0
        return request
    }

    @Test("a worker that fails before executing is retried once on another, and set aside for a while")
    func retriesOnAnotherWorker() async throws {
        // Either worker may be picked first; the first call fails wherever it lands.
        let script = ScriptedWorker.Script([.fail(RPCError(code: .unavailable, message: "worker going away"))])
        let workers = [ScriptedWorker(script), ScriptedWorker(script)]
        try await withFrontend(workers) { service, view in
            let response = try await service.infer(request(), timeout: nil)
            #expect(response.rawOutputContents == request().rawInputContents)
            #expect(workers.map(\.inferCalls).sorted() == [1, 1], "one failed call, one retry elsewhere")
            #expect(view.suspects.count == 1, "the worker that failed is avoided for a while")
        }
    }

    @Test("the timing breakdown is completed and the worker's own total is not passed on")
    func timingParameters() async throws {
        try await withFrontend([ScriptedWorker(.init([]))]) { service, _ in
            let response = try await service.infer(request(), timeout: nil)
            #expect(response.modelVersion == "1", "an unversioned request goes to the newest version")
            #expect(response.parameters[ResponseParameters.queue]?.integerValue == 20)
            #expect(response.parameters[ResponseParameters.compute]?.integerValue == 80)
            #expect(response.parameters[ResponseParameters.network]?.integerValue != nil)
            #expect(response.parameters[ResponseParameters.frontend]?.integerValue != nil)
            #expect(response.parameters[ResponseParameters.workerTotal] == nil)
        }
    }

    @Test("a worker's deadline or timeout refusal is final: no retry", arguments: ["deadline", "timeout"])
    func finalRefusals(reason: String) async throws {
        let refusal = RPCError(
            code: reason == "deadline" ? .deadlineExceeded : .unavailable, message: "refused: \(reason)",
            metadata: [RejectionMetadata.key: .string(reason)])
        let script = ScriptedWorker.Script([.fail(refusal)])
        let workers = [ScriptedWorker(script), ScriptedWorker(script)]
        try await withFrontend(workers) { service, view in
            do {
                _ = try await service.infer(request(), timeout: nil)
                Issue.record("a refused request was answered")
            } catch let error as RPCError {
                #expect(error.code == refusal.code)
                #expect(error.message == refusal.message)
                #expect(error.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) == nil,
                        "the worker's trailers are not passed on")
            }
            #expect(workers.map(\.inferCalls).reduce(0, +) == 1)
            #expect(view.suspects.isEmpty, "a refusal is not a fault")
        }
    }

    @Test("a full queue is tried on another replica, but final when there is none")
    func queueFull() async throws {
        let full = RPCError(code: .unavailable, message: "exceeds maximum queue size", metadata: [RejectionMetadata.key: "queue-full"])
        let shared = ScriptedWorker.Script([.fail(full)])
        let pair = [ScriptedWorker(shared), ScriptedWorker(shared)]
        try await withFrontend(pair) { service, _ in
            _ = try await service.infer(request(), timeout: nil)
            #expect(pair.map(\.inferCalls).sorted() == [1, 1])
        }
        let alone = ScriptedWorker(.init([.fail(full)]))
        try await withFrontend([alone]) { service, _ in
            await #expect(throws: RPCError.self) { try await service.infer(request(), timeout: nil) }
            #expect(alone.inferCalls == 1)
        }
    }

    @Test("requests that do not match the model's configuration never reach a worker")
    func validationComesFirst() async throws {
        let worker = ScriptedWorker(.init([]))
        try await withFrontend([worker]) { service, _ in
            var bad = request()
            bad.inputs[0].shape = [5]
            do {
                _ = try await service.infer(bad, timeout: nil)
                Issue.record("a mis-shaped request was forwarded")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
            }
            #expect(worker.inferCalls == 0)
        }
    }
}

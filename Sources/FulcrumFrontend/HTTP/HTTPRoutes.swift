import FulcrumProtocol
import FulcrumService
import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import SwiftProtobuf
import Tracing

/// The open inference protocol's HTTP/REST routes (KServe v2, Triton's flavour). Each handler
/// only translates: HTTP and JSON in, a transport-free operation of `FrontendInferenceService`,
/// JSON out. Errors thrown here become `{"error": ...}` answers in `HTTPFailureMiddleware`.
struct HTTPRoutes: Sendable {
    /// The operations shared with the gRPC service.
    let inference: FrontendInferenceService
    /// Larger request bodies are refused with 413 before they are read in full.
    let maxBodyBytes: Int

    /// The request header giving the length of the JSON part of a binary-extension body.
    static let headerLengthField = HTTPField.Name("Inference-Header-Content-Length")!

    /// Extensions listed by `GET /v2`: the gRPC list plus the binary tensor extension.
    static var extensions: [String] { ServerInfo.extensions + ["binary_tensor_data"] }

    /// Registers every route on `router`.
    func register<Context: RequestContext>(on router: Hummingbird.Router<Context>) {
        router.add(middleware: HTTPFailureMiddleware<Context>(maxBodyBytes: maxBodyBytes))
        if let keys = inference.apiKeys { router.add(middleware: APIKeyMiddleware<Context>(keys: keys)) }
        router.get("/v2/health/live") { _, _ in Self.status(true) }
        router.get("/v2/health/ready") { _, _ in Self.status(inference.isReady) }
        router.get("/v2") { _, _ in serverMetadata() }
        router.get("/v2/models/stats") { _, _ in try await statistics(model: "", version: "") }
        router.post("/v2/repository/index") { request, _ in try await repositoryIndex(request) }
        router.post("/v2/repository/models/{model}/load") { request, context in
            try await control(request, model: try context.parameters.require("model"), load: true)
        }
        router.post("/v2/repository/models/{model}/unload") { request, context in
            try await control(request, model: try context.parameters.require("model"), load: false)
        }
        for prefix in ["/v2/models/{model}", "/v2/models/{model}/versions/{version}"] {
            router.get(RouterPath(prefix)) { _, context in
                let (model, version) = try Self.target(context)
                return try await metadata(model: model, version: version)
            }
            router.get(RouterPath(prefix + "/ready")) { _, context in
                let (model, version) = try Self.target(context)
                return Self.status(inference.isModelReady(model, version: version))
            }
            router.get(RouterPath(prefix + "/config")) { _, context in
                let (model, version) = try Self.target(context)
                return try await config(model: model, version: version)
            }
            router.get(RouterPath(prefix + "/stats")) { _, context in
                let (model, version) = try Self.target(context)
                return try await statistics(model: model, version: version)
            }
            router.post(RouterPath(prefix + "/infer")) { request, context in
                let (model, version) = try Self.target(context)
                return try await infer(request, model: model, version: version)
            }
        }
    }

    // MARK: Handlers

    /// `GET /v2`: name, version and extensions.
    func serverMetadata() -> Response {
        Self.json(.object([
            "name": .string(ServerInfo.name),
            "version": .string(ServerInfo.version),
            "extensions": .array(Self.extensions.map(JSONValue.string)),
        ]))
    }

    /// `GET /v2/models/{m}[/versions/{v}]`: the model's metadata.
    func metadata(model: String, version: String) async throws -> Response {
        let metadata = try await inference.metadata(model, version: version)
        func tensors(_ list: [Inference_ModelMetadataResponse.TensorMetadata]) -> JSONValue {
            .array(list.map {
                .object(["name": .string($0.name), "datatype": .string($0.datatype), "shape": .array($0.shape.map { .int($0) })])
            })
        }
        return Self.json(.object([
            "name": .string(metadata.name),
            "versions": .array(metadata.versions.map(JSONValue.string)),
            "platform": .string(metadata.platform),
            "inputs": tensors(metadata.inputs),
            "outputs": tensors(metadata.outputs),
        ]))
    }

    /// `GET .../config`: the ModelConfig as protobuf JSON with Triton's field names
    /// (`max_batch_size`), 64-bit integers as numbers.
    func config(model: String, version: String) async throws -> Response {
        let config = try await inference.config(model, version: version)
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        let text = try config.jsonString(options: options)
        return Self.json(bytes: Array(text.utf8))
    }

    /// `GET /v2/models[/{m}[/versions/{v}]]/stats`: Triton's `{"model_stats": [...]}`, every
    /// field present (perf_analyzer reads them without checking).
    func statistics(model: String, version: String) async throws -> Response {
        let response = try await inference.statistics(model, version: version)
        func duration(_ d: Inference_StatisticDuration) -> JSONValue {
            .object(["count": .uint(d.count), "ns": .uint(d.ns)])
        }
        let stats: [JSONValue] = response.modelStats.map { model in
            let s = model.inferenceStats
            return .object([
                "name": .string(model.name),
                "version": .string(model.version),
                "last_inference": .uint(model.lastInference),
                "inference_count": .uint(model.inferenceCount),
                "execution_count": .uint(model.executionCount),
                "inference_stats": .object([
                    "success": duration(s.success), "fail": duration(s.fail), "queue": duration(s.queue),
                    "compute_input": duration(s.computeInput), "compute_infer": duration(s.computeInfer),
                    "compute_output": duration(s.computeOutput), "cache_hit": duration(s.cacheHit),
                    "cache_miss": duration(s.cacheMiss),
                ]),
                "batch_stats": .array(model.batchStats.map { b in
                    .object([
                        "batch_size": .uint(b.batchSize), "compute_input": duration(b.computeInput),
                        "compute_infer": duration(b.computeInfer), "compute_output": duration(b.computeOutput),
                    ])
                }),
            ])
        }
        return Self.json(.object(["model_stats": .array(stats)]))
    }

    /// `POST /v2/repository/index`: body empty or `{"ready": bool}`; answers an array of
    /// `{name, version, state, reason}` (empty fields left out, as Triton does).
    func repositoryIndex(_ request: Request) async throws -> Response {
        let body = try await Self.collect(request, upTo: maxBodyBytes)
        var readyOnly = false
        if let object = try Self.optionalObject(body) {
            if let ready = object["ready"] {
                guard case .bool(let flag) = ready else { throw HTTPFailure.badRequest("'ready' must be a boolean, not \(ready.kind)") }
                readyOnly = flag
            }
        }
        let entries: [JSONValue] = inference.index(readyOnly: readyOnly).models.map { entry in
            var object: [String: JSONValue] = ["name": .string(entry.name)]
            if !entry.version.isEmpty { object["version"] = .string(entry.version) }
            if !entry.state.isEmpty { object["state"] = .string(entry.state) }
            if !entry.reason.isEmpty { object["reason"] = .string(entry.reason) }
            return .object(object)
        }
        return Self.json(.array(entries))
    }

    /// `POST /v2/repository/models/{m}/load` and `/unload`. A body, if any, must be a JSON
    /// object; its `parameters` are not used (workers load from their repository as it is, the
    /// same as over gRPC). Needs the admin token in `Authorization: Bearer TOKEN` under
    /// `--model-control explicit` (403 without it; 400 when model control is off). Answers 200
    /// with an empty body.
    func control(_ request: Request, model: String, load: Bool) async throws -> Response {
        let body = try await Self.collect(request, upTo: maxBodyBytes)
        _ = try Self.optionalObject(body)
        try await inference.control(model: model, load: load, authorization: request.headers[.authorization])
        return Response(status: .ok)
    }

    /// `POST .../infer`: JSON or binary-extension body in, the same out.
    func infer(_ request: Request, model: String, version: String) async throws -> Response {
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            throw HTTPFailure.badRequest("Content-Encoding '\(encoding)' is not supported; send the request body uncompressed")
        }
        var headerLength: Int? = nil
        if let text = request.headers[Self.headerLengthField] {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw HTTPFailure.badRequest("Inference-Header-Content-Length '\(text)' is not a non-negative integer")
            }
            headerLength = value
        }
        let body = try await Self.collect(request, upTo: maxBodyBytes)
        let decoded = try InferJSON.decodeRequest(body, headerLength: headerLength, model: model, version: version)
        var trace = InstrumentationContext.topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &trace, using: HTTPHeaderExtractor())
        let response = try await InstrumentationContext.withValue(trace) {
            try await inference.infer(decoded.request, timeout: nil)
        }
        let encoded = try InferJSON.encodeResponse(response, for: decoded)
        var headers: HTTPFields = [:]
        if let length = encoded.headerLength {
            headers[.contentType] = "application/octet-stream"
            headers[Self.headerLengthField] = String(length)
        } else {
            headers[.contentType] = "application/json"
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: encoded.body)))
    }

    // MARK: Helpers

    /// The `{model}` and optional `{version}` path parameters.
    static func target<Context: RequestContext>(_ context: Context) throws -> (String, String) {
        (try context.parameters.require("model"), context.parameters.get("version") ?? "")
    }

    /// 200 with an empty body when `ok`, else 400 (what tritonclient's live/ready checks expect).
    static func status(_ ok: Bool) -> Response {
        Response(status: ok ? .ok : .badRequest)
    }

    /// A 200 JSON answer.
    static func json(_ value: JSONValue) -> Response {
        json(bytes: value.serialized)
    }

    /// A 200 answer with an already serialized JSON body.
    static func json(bytes: [UInt8]) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The whole body, refusing (413) one whose Content-Length or actual size exceeds `limit`.
    static func collect(_ request: Request, upTo limit: Int) async throws -> [UInt8] {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw NIOTooManyBytesError(maxBytes: limit)
        }
        let buffer = try await request.body.collect(upTo: limit)
        return Array(buffer.readableBytesView)
    }

    /// Parses an optional JSON object body (nil when empty or whitespace).
    static func optionalObject(_ body: [UInt8]) throws(HTTPFailure) -> JSONValue? {
        guard body.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else { return nil }
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw .badRequest("the request body is not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard case .object = value else { throw .badRequest("the request body must be a JSON object, not \(value.kind)") }
        return value
    }
}

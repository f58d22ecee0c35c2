import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Who may call the frontend, from `--api-keys FILE`: each key names a tenant, the models it may
/// call and its request rate. Without a valid key a call is UNAUTHENTICATED (HTTP 401); a model
/// outside the key's list is PERMISSION_DENIED (403); past its rate a call is RESOURCE_EXHAUSTED
/// (429) with `fulcrum-rejected: quota` and a retry hint. Health checks and repository control
/// (which needs the admin token instead) need no key.
///
/// The file is JSON:
///
///     {"keys": [{"key": "…", "tenant": "acme", "models": ["ranking_mlp"], "rate": 100, "burst": 200}]}
///
/// `models` absent or `["*"]`: every model; `rate` absent: no limit; `burst` defaults to the
/// rate (at least 1). A key is sent as `authorization: Bearer KEY` or `x-api-key: KEY`.
/// `reload()` (on SIGHUP) swaps the table without touching connections; a file that does not
/// parse leaves the old table in place.
final class APIKeys: Sendable {
    /// The tenant whose key authorised the prediction in progress (for the prediction log).
    @TaskLocal static var tenant: String?

    struct Entry: Sendable {
        var tenant: String
        /// nil: every model.
        var models: Set<String>?
        /// Requests per second; nil: no limit.
        var rate: Double?
        var burst: Double
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var buckets: [String: Bucket] = [:]
    }

    let path: String
    private let state = Mutex(State())
    private let clock = ContinuousClock()

    /// The value of `fulcrum-rejected` on a refusal for the rate.
    static let quotaRejection = "quota"

    init(file: String) throws(APIKeysError) {
        self.path = file
        try reload()
    }

    /// Tenants in the table now.
    var tenants: Set<String> { state.withLock { Set($0.entries.values.map(\.tenant)) } }

    /// Reads the file again and swaps the table; buckets of keys that remain are kept.
    func reload() throws(APIKeysError) {
        let entries = try Self.parse(file: path)
        state.withLock { s in
            s.entries = entries
            s.buckets = s.buckets.filter { entries[$0.key] != nil }
        }
    }

    static func parse(file: String) throws(APIKeysError) -> [String: Entry] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw APIKeysError("--api-keys: cannot read '\(file)'")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], let keys = root["keys"] as? [Any] else {
            throw APIKeysError("--api-keys: '\(file)' is not JSON of the form {\"keys\": [{\"key\", \"tenant\", \"models\", \"rate\", \"burst\"}, ...]}")
        }
        var entries: [String: Entry] = [:]
        for (index, item) in keys.enumerated() {
            let place = "--api-keys: '\(file)', keys[\(index)]"
            guard let object = item as? [String: Any] else { throw APIKeysError("\(place) is not an object") }
            let known: Set<String> = ["key", "tenant", "models", "rate", "burst"]
            if let unknown = object.keys.first(where: { !known.contains($0) }) {
                throw APIKeysError("\(place) has an unknown field '\(unknown)' (fields: key, tenant, models, rate, burst)")
            }
            guard let key = object["key"] as? String, key.utf8.count >= 16, !key.contains(where: \.isWhitespace) else {
                throw APIKeysError("\(place): 'key' must be a string of at least 16 characters without spaces")
            }
            guard let tenant = object["tenant"] as? String, !tenant.isEmpty, tenant.utf8.count <= 64 else {
                throw APIKeysError("\(place): 'tenant' must be a non-empty string of at most 64 bytes")
            }
            var models: Set<String>? = nil
            if let listed = object["models"] {
                guard let names = listed as? [String], !names.isEmpty else {
                    throw APIKeysError("\(place): 'models' must be a non-empty list of model names (or [\"*\"])")
                }
                models = names.contains("*") ? nil : Set(names)
            }
            var rate: Double? = nil
            if let value = object["rate"] {
                guard let number = (value as? NSNumber)?.doubleValue, number > 0, number.isFinite else {
                    throw APIKeysError("\(place): 'rate' must be a positive number of requests per second")
                }
                rate = number
            }
            var burst = max(1, rate ?? 1)
            if let value = object["burst"] {
                guard let number = (value as? NSNumber)?.doubleValue, number >= 1, number.isFinite else {
                    throw APIKeysError("\(place): 'burst' must be a number of at least 1")
                }
                burst = number
            }
            guard entries[key] == nil else { throw APIKeysError("\(place): the key appears twice") }
            entries[key] = Entry(tenant: tenant, models: models, rate: rate, burst: burst)
        }
        return entries
    }

    /// The key a call carries: `authorization: Bearer KEY`, else `x-api-key`.
    static func credential(authorization: String?, apiKey: String?) -> String? {
        ModelControl.bearerToken(authorization) ?? apiKey?.trimmingCharacters(in: .whitespaces)
    }

    /// The same, from gRPC metadata.
    static func credential(_ metadata: Metadata) -> String? {
        credential(
            authorization: ModelControl.authorization(metadata),
            apiKey: metadata[stringValues: "x-api-key"].first(where: { _ in true }))
    }

    /// Checks a call: the key, the model (nil: a call not about one model; "" with `needsAll`:
    /// about every model) and, when `counts`, takes one request from the key's rate. Returns the
    /// tenant.
    @discardableResult
    func authorize(_ credential: String?, model: String?, counts: Bool = true) throws(RPCError) -> String {
        guard let credential, !credential.isEmpty else {
            Counter(label: "fulcrum_frontend_unauthenticated_total").increment()
            throw RPCError(
                code: .unauthenticated,
                message: "this frontend needs an API key: send it as 'authorization: Bearer KEY' or 'x-api-key: KEY'")
        }
        let now = clock.now
        let (tenant, refusal): (String?, RPCError?) = state.withLock { s in
            guard let entry = s.entries[credential] else {
                return (nil, RPCError(code: .unauthenticated, message: "the API key is not valid"))
            }
            if let model, let models = entry.models, !models.contains(model) {
                let what = model.isEmpty ? "every model" : "model '\(model)'"
                return (entry.tenant, RPCError(code: .permissionDenied, message: "tenant '\(entry.tenant)' may not call \(what)"))
            }
            guard counts, let rate = entry.rate else { return (entry.tenant, nil) }
            var bucket = s.buckets[credential] ?? Bucket(tokens: entry.burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(entry.burst, bucket.tokens + seconds * rate)
            bucket.updated = now
            defer { s.buckets[credential] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return (entry.tenant, nil)
            }
            let waitMs = max(1, Int(((1 - bucket.tokens) / rate * 1000).rounded(.up)))
            return (
                entry.tenant,
                RPCError(
                    code: .resourceExhausted,
                    message: "tenant '\(entry.tenant)' is over its rate of \(Self.format(rate)) requests/s (burst \(Self.format(entry.burst))): retry in \(waitMs) ms",
                    metadata: [RejectionMetadata.key: .string(Self.quotaRejection), "grpc-retry-pushback-ms": .string(String(waitMs))])
            )
        }
        guard let refusal else {
            if counts, let tenant {
                Counter(label: "fulcrum_frontend_tenant_requests_total", dimensions: [("tenant", tenant), ("outcome", "admitted")]).increment()
            }
            return tenant ?? ""
        }
        if let tenant {
            let outcome = refusal.code == .resourceExhausted ? "over_rate" : "forbidden"
            Counter(label: "fulcrum_frontend_tenant_requests_total", dimensions: [("tenant", tenant), ("outcome", outcome)]).increment()
        } else {
            Counter(label: "fulcrum_frontend_unauthenticated_total").increment()
        }
        throw refusal
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// An `--api-keys` file that cannot be used.
struct APIKeysError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// The API-key check for every gRPC method grpc-swift serves behind the edge (all but
/// ModelInfer, which `FrontendInferenceService` checks itself). Exempt: ServerLive, ServerReady,
/// the health service, and repository load/unload (the admin token governs those). Calls about
/// one model are checked against the key's models; each ModelStreamInfer request counts against
/// the rate and is checked against the models too.
struct APIKeyInterceptor: ServerInterceptor {
    let keys: APIKeys

    static let exempt: Set<String> = ["ServerLive", "ServerReady", "RepositoryModelLoad", "RepositoryModelUnload"]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        guard context.descriptor.service.fullyQualifiedService == "inference.GRPCInferenceService", !Self.exempt.contains(method) else {
            return try await next(request, context)
        }
        let credential = APIKeys.credential(request.metadata)
        if method == "ModelStreamInfer" {
            try keys.authorize(credential, model: nil, counts: false)
            let keys = self.keys
            let checked = request.messages.map { message -> Input in
                if let infer = message as? Inference_ModelInferRequest {
                    try keys.authorize(credential, model: infer.modelName)
                }
                return message
            }
            return try await next(StreamingServerRequest(metadata: request.metadata, messages: RPCAsyncSequence(wrapping: checked)), context)
        }
        // A unary call: read its one message to learn the model it is about.
        var iterator = request.messages.makeAsyncIterator()
        let first = try await iterator.next()
        var model: String? = nil
        switch first {
        case let m as Inference_ModelMetadataRequest: model = m.name
        case let m as Inference_ModelConfigRequest: model = m.name
        case let m as Inference_ModelReadyRequest: model = m.name
        case let m as Inference_ModelStatisticsRequest: model = m.name  // "": every model
        default: break
        }
        try keys.authorize(credential, model: model)
        let replay = AsyncThrowingStream<Input, any Error> { continuation in
            if let first { continuation.yield(first) }
            continuation.finish()
        }
        return try await next(StreamingServerRequest(metadata: request.metadata, messages: RPCAsyncSequence(wrapping: replay)), context)
    }
}

extension APIKeys {
    /// The SIGHUP action: reads the keys file again; a file that does not parse keeps the
    /// previous keys. Connections stay.
    static func reloadAction(_ keys: APIKeys, logger: Logger) -> @Sendable () -> Void {
        {
            do throws(APIKeysError) {
                try keys.reload()
                logger.notice("reloaded the API keys from \(keys.path): \(keys.tenants.count) tenant(s)")
            } catch {
                logger.error("SIGHUP: kept the previous API keys: \(error.message)")
            }
        }
    }
}

/// The API-key check for the HTTP/REST edge, on every route but health checks and repository
/// control. A route under `/v2/models/{model}` is checked against the key's models.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: APIKeys

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: true)
        let exempt = parts.starts(with: ["v2", "health"]) || (parts.starts(with: ["v2", "repository", "models"]) && parts.count == 5)
        guard !exempt else { return try await next(request, context) }
        var model: String? = nil
        if parts.starts(with: ["v2", "models"]), parts.count >= 3 {
            model = parts[2] == "stats" ? "" : String(parts[2]).removingPercentEncoding ?? String(parts[2])
        }
        let credential = APIKeys.credential(authorization: request.headers[.authorization], apiKey: request.headers[HTTPField.Name("x-api-key")!])
        let tenant = try keys.authorize(credential, model: model)
        return try await APIKeys.$tenant.withValue(tenant) { try await next(request, context) }
    }
}

extension FrontendConfiguration {
    /// Why the `--api-keys` file cannot be used, or nil when it can.
    public static func apiKeysProblem(_ file: String) -> String? {
        do throws(APIKeysError) {
            _ = try APIKeys.parse(file: file)
            return nil
        } catch {
            return error.message
        }
    }
}

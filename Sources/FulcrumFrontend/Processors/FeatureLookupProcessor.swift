import Dispatch
import Foundation
import FulcrumSchema
import Logging
import PostgresNIO
import Synchronization

/// `platform: "fulcrum_feature_lookup"`: per-entity feature vectors from an online feature store
/// in PostgreSQL, one query per request for the entities the cache does not hold.
///
/// Input 0: entity ids (INT64, INT32 or TYPE_STRING, any shape); output 0: FP32 of the ids' shape
/// followed by the vector length D (the last of the output's dims). The table holds one row per
/// entity: a key column and a `real[]` (or `double precision[]`) column of D values.
///
/// Parameters (names of tables and columns are checked to be plain SQL identifiers and quoted):
/// - `url_env`: the name of an environment variable holding
///   `postgresql://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`; or
///   `host` (default 127.0.0.1), `port` (5432), `database`, `user`, `password_env` (the name of
///   an environment variable holding the password: never the password itself in config.pbtxt)
///   and `tls`: `disable`, `prefer` (default) or `require`.
/// - `table`, `key_column`, `value_column`.
/// - `timeout_ms` (default 200): a query that has not answered by then — or by the request's
///   deadline, if sooner — fails the request with UNAVAILABLE; the store being down does the same.
/// - `missing`: `error` (default: INVALID_ARGUMENT naming the unknown ids) or `default` (a vector
///   of `default_value`, default 0).
/// - `cache_ttl_ms` (default 60000; 0 turns the cache off) and `cache_entries` (default 100000):
///   found vectors are kept that long, at most that many; nothing is served past its TTL, and
///   unknown ids are not cached.
/// - `max_connections` (default 8): the connection pool's size.
final class FeatureLookupProcessor: Processor {
    enum Missing: String { case error, `default` }

    let ids: String
    let output: String
    let width: Int
    let missing: Missing
    let defaultValue: Float
    let timeout: Duration
    let sql: (ints: String, texts: String)
    let table: String
    let cache: FeatureCache
    let client: PostgresClient

    static let kind = ProcessorKind(platform: "fulcrum_feature_lookup") { setup in try FeatureLookupProcessor(setup) }

    init(_ setup: ProcessorSetup) throws(ProcessorError) {
        let input = try setup.tensor(\.inputs, 0, "an input: the entity ids (INT64, INT32 or TYPE_STRING)")
        guard [.int64, .int32, .bytes].contains(input.dataType) else {
            throw setup.error("input '\(input.name)' must be TYPE_INT64, TYPE_INT32 or TYPE_STRING")
        }
        ids = input.name
        let out = try setup.tensor(\.outputs, 0, "an output: the features, TYPE_FP32 [..., D]")
        guard out.dataType == .fp32, let last = out.dims.last, last > 0 else {
            throw setup.error("output '\(out.name)' must be TYPE_FP32 with a fixed last dimension (the vector length)")
        }
        output = out.name
        width = last
        missing = Missing(rawValue: try setup.choice("missing", default: "error", in: ["error", "default"]))!
        guard let value = Float(setup.parameter("default_value", default: "0")!), value.isFinite else {
            throw setup.error("parameter 'default_value' must be a finite number")
        }
        defaultValue = value
        timeout = .milliseconds(try setup.integer("timeout_ms", default: 200, in: 1...600_000))
        cache = FeatureCache(
            ttl: .milliseconds(try setup.integer("cache_ttl_ms", default: 60_000, in: 0...86_400_000)),
            capacity: try setup.integer("cache_entries", default: 100_000, in: 1...100_000_000))

        func identifier(_ key: String) throws(ProcessorError) -> String {
            guard let name = setup.parameter(key), !name.isEmpty else { throw setup.error("needs the parameter '\(key)'") }
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            for part in parts {
                guard let first = part.unicodeScalars.first, first == "_" || CharacterSet.letters.contains(first),
                      part.unicodeScalars.allSatisfy({ $0 == "_" || CharacterSet.alphanumerics.contains($0) }), part.utf8.count <= 63
                else {
                    throw setup.error("parameter '\(key)': '\(name)' is not a plain SQL name (letters, digits and _, optionally schema.table)")
                }
            }
            return parts.map { "\"\($0)\"" }.joined(separator: ".")
        }
        let table = try identifier("table")
        let key = try identifier("key_column")
        let values = try identifier("value_column")
        self.table = setup.parameter("table")!
        sql = (
            "SELECT \(key)::text, \(values)::real[] FROM \(table) WHERE \(key) = ANY($1::bigint[])",
            "SELECT \(key)::text, \(values)::real[] FROM \(table) WHERE \(key)::text = ANY($1::text[])"
        )

        var configuration = try Self.connection(setup)
        configuration.options.maximumConnections = try setup.integer("max_connections", default: 8, in: 1...1024)
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "fulcrum.frontend.feature-store"))
        self.client = client
        // The pool lives as long as the frontend: it (re)connects in the background.
        Task { await client.run() }
    }

    /// Where the store is: `url_env` names an environment variable holding
    /// `postgresql://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`;
    /// otherwise `host`, `port`, `database`, `user`, `password_env` and `tls`.
    static func connection(_ setup: ProcessorSetup) throws(ProcessorError) -> PostgresClient.Configuration {
        func tls(_ mode: String) -> PostgresClient.Configuration.TLS {
            switch mode {
            case "disable": .disable
            case "require": .require(.makeClientConfiguration())
            default: .prefer(.makeClientConfiguration())
            }
        }
        if let variable = setup.parameter("url_env") {
            guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else {
                throw setup.error("parameter 'url_env': the environment variable \(variable) is not set (it should hold postgresql://user@host:port/database)")
            }
            guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
                  let host = url.host, !host.isEmpty, let user = url.user, !user.isEmpty,
                  url.path.count > 1
            else {
                throw setup.error("the environment variable \(variable) is not a URL of the form postgresql://user[:password]@host[:port]/database")
            }
            let mode = url.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
            guard ["disable", "prefer", "require"].contains(mode) else {
                throw setup.error("the environment variable \(variable): sslmode '\(mode)' is not disable, prefer or require")
            }
            return PostgresClient.Configuration(
                host: host, port: url.port ?? 5432, username: user, password: url.password,
                database: String(url.path.dropFirst()), tls: tls(mode))
        }
        guard let database = setup.parameter("database"), let user = setup.parameter("user") else {
            throw setup.error("needs the parameter 'url_env', or 'database' and 'user'")
        }
        var password: String? = nil
        if let variable = setup.parameter("password_env") {
            guard let value = ProcessInfo.processInfo.environment[variable] else {
                throw setup.error("parameter 'password_env': the environment variable \(variable) is not set")
            }
            password = value
        }
        return PostgresClient.Configuration(
            host: setup.parameter("host", default: "127.0.0.1")!, port: try setup.integer("port", default: 5432, in: 1...65535),
            username: user, password: password, database: database,
            tls: tls(try setup.choice("tls", default: "prefer", in: ["disable", "prefer", "require"])))
    }

    /// A key as the store's key column reads as text.
    enum Key: Hashable, Sendable {
        case int(Int64)
        case text(String)

        var text: String {
            switch self {
            case .int(let value): String(value)
            case .text(let value): value
            }
        }
    }

    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor] {
        guard let tensor = inputs[ids] else { throw ProcessorError.invalidInput("input '\(ids)' is missing") }
        let keys: [Key]
        switch tensor.dataType {
        case .int64: keys = tensor.scalars(as: Int64.self).map(Key.int)
        case .int32: keys = tensor.scalars(as: Int32.self).map { .int(Int64($0)) }
        default:
            guard let elements = tensor.byteElements else { throw ProcessorError.invalidInput("input '\(ids)' is not a well-formed TYPE_STRING tensor") }
            var texts: [Key] = []
            for element in elements {
                guard let text = String(validating: element, as: UTF8.self) else {
                    throw ProcessorError.invalidInput("input '\(ids)': an id is not UTF-8 text")
                }
                texts.append(.text(text))
            }
            keys = texts
        }
        let (count, overflow) = keys.count.multipliedReportingOverflow(by: width)
        guard !overflow, count <= 1 << 28 else { throw ProcessorError.invalidInput("input '\(ids)': too many ids") }

        var found = cache.values(for: keys)
        let wanted = Array(Set(keys.filter { found[$0] == nil }))
        if !wanted.isEmpty {
            let fetched = try await fetch(wanted, deadline: context.deadline)
            cache.store(fetched)
            found.merge(fetched) { old, _ in old }
        }
        var unknown: [Key] = []
        var values = [Float]()
        values.reserveCapacity(count)
        for key in keys {
            if let vector = found[key] {
                values.append(contentsOf: vector)
            } else {
                unknown.append(key)
                values.append(contentsOf: repeatElement(defaultValue, count: width))
            }
        }
        if missing == .error, !unknown.isEmpty {
            let listed = unknown.prefix(10).map(\.text).joined(separator: ", ")
            throw ProcessorError.invalidInput("\(unknown.count) id(s) not in the feature store's table \(table): \(listed)\(unknown.count > 10 ? ", ..." : "")")
        }
        return [output: Tensor(shape: tensor.shape + [width], scalars: values)]
    }

    /// One query for `keys`, bounded by the timeout and the request's deadline.
    private func fetch(_ keys: [Key], deadline: ContinuousClock.Instant?) async throws -> [Key: [Float]] {
        var bound = timeout
        if let deadline {
            let left = deadline - .now
            guard left > .zero else { throw ProcessorError.unavailable("the request's deadline passed before the feature store was asked") }
            bound = min(bound, left)
        }
        let query: PostgresQuery
        var binds = PostgresBindings(capacity: 1)
        if case .int = keys.first {
            let numbers: [Int64] = keys.compactMap { key in
                if case .int(let value) = key { return value }
                return nil
            }
            binds.append(numbers)
            query = PostgresQuery(unsafeSQL: sql.ints, binds: binds)
        } else {
            binds.append(keys.map(\.text))
            query = PostgresQuery(unsafeSQL: sql.texts, binds: binds)
        }
        let client = client, width = width, table = table, limit = bound
        let isInt = if case .int = keys.first { true } else { false }
        return try await withThrowingTaskGroup(of: [Key: [Float]]?.self) { group in
            group.addTask {
                do {
                    var rows: [Key: [Float]] = [:]
                    for try await (key, vector) in try await client.query(query).decode((String, [Float]?).self) {
                        guard let vector else { continue }
                        guard vector.count == width else {
                            throw ProcessorError(.internalError, "the feature store's row for id \(key) in \(table) has \(vector.count) values; the output needs \(width)")
                        }
                        if isInt, let number = Int64(key) { rows[.int(number)] = vector } else { rows[.text(key)] = vector }
                    }
                    return rows
                } catch let error as ProcessorError {
                    throw error
                } catch let error as PSQLError {
                    throw ProcessorError.unavailable("the feature store failed: \(Self.describe(error))")
                }
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let rows = first else {
                throw ProcessorError.unavailable("the feature store did not answer within \(limit.milliseconds) ms")
            }
            return rows
        }
    }

    /// What went wrong, without the query's values: the kind of failure and the server's message.
    static func describe(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] { return message }
        switch error.code {
        case .connectionError: return "cannot connect"
        case .serverClosedConnection, .clientClosedConnection: return "the connection closed"
        case .queryCancelled: return "the query was cancelled"
        default: return "\(error.code)"
        }
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// Feature vectors by id, each kept at most `ttl`, at most `capacity` of them (the oldest
/// inserted go first). Expired vectors are never returned.
final class FeatureCache: Sendable {
    private struct State {
        var entries: [FeatureLookupProcessor.Key: (vector: [Float], expires: UInt64)] = [:]
        var order: [(key: FeatureLookupProcessor.Key, expires: UInt64)] = []
        var head = 0
    }

    private let ttlNanoseconds: UInt64
    private let capacity: Int
    private let state = Mutex(State())

    init(ttl: Duration, capacity: Int) {
        ttlNanoseconds = UInt64(max(ttl.milliseconds, 0)) * 1_000_000
        self.capacity = capacity
    }

    /// The vectors still fresh for `keys`.
    func values(for keys: [FeatureLookupProcessor.Key], now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> [FeatureLookupProcessor.Key: [Float]] {
        guard ttlNanoseconds > 0 else { return [:] }
        return state.withLock { state in
            var found: [FeatureLookupProcessor.Key: [Float]] = [:]
            for key in keys {
                guard let entry = state.entries[key] else { continue }
                if entry.expires > now {
                    found[key] = entry.vector
                } else {
                    state.entries[key] = nil
                }
            }
            return found
        }
    }

    /// Keeps `vectors` for the TTL, evicting the oldest beyond the capacity.
    func store(_ vectors: [FeatureLookupProcessor.Key: [Float]], now: UInt64 = DispatchTime.now().uptimeNanoseconds) {
        guard ttlNanoseconds > 0, !vectors.isEmpty else { return }
        let expires = now + ttlNanoseconds
        state.withLock { state in
            for (key, vector) in vectors {
                state.entries[key] = (vector, expires)
                state.order.append((key, expires))
            }
            // Drop the oldest insertions (an entry re-stored later keeps its newer expiry).
            while state.entries.count > capacity, state.head < state.order.count {
                let oldest = state.order[state.head]
                state.head += 1
                if let entry = state.entries[oldest.key], entry.expires == oldest.expires { state.entries[oldest.key] = nil }
            }
            // Forget expired insertions at the front, and compact now and then.
            while state.head < state.order.count, state.order[state.head].expires <= now {
                let oldest = state.order[state.head]
                state.head += 1
                if let entry = state.entries[oldest.key], entry.expires == oldest.expires { state.entries[oldest.key] = nil }
            }
            if state.head > 1024, state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    /// How many vectors are held (expired ones included until they are next touched).
    var count: Int { state.withLock { $0.entries.count } }
}

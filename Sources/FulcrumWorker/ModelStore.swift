import Foundation
import FulcrumProtocol
import FulcrumRuntime
import FulcrumSchema
import FulcrumService
import GRPCCore
import Logging
import Synchronization

/// The models this worker hosts, loaded from its repository: every version the version policy
/// selects, and for each model or version that failed to load, the reason (shown as UNAVAILABLE
/// in RepositoryIndex and reported to the balancer). Thread-safe.
final class ModelStore: Sendable {
    /// What the store knows about one model name.
    struct Entry: Sendable {
        /// Served versions, newest last.
        var versions: [ServedModel] = []
        /// Versions that failed to load, with the reason.
        var failures: [(version: String, reason: String)] = []
        /// A model-level failure (unreadable config, no versions), with the reason.
        var failure: String? = nil
        /// A content hash per served version, for the balancer's snapshot.
        var hashes: [String: String] = [:]
    }

    private let repository: ModelRepository
    private let emulation: EmulationProfile?
    private let entries = Mutex<[String: Entry]>([:])
    private let logger: Logger

    init(repository: ModelRepository, emulation: EmulationProfile? = nil, logger: Logger) {
        self.repository = repository
        self.emulation = emulation
        self.logger = logger
    }

    /// Loads every model in the repository. Failures are recorded, never fatal.
    func loadAll() throws(FulcrumSchema.RuntimeError) {
        for name in try repository.modelNames() {
            load(name)
        }
    }

    /// Loads (or reloads) one model by name.
    @discardableResult
    func load(_ name: String) -> Entry {
        var entry = Entry()
        do {
            for load in try repository.load(name) {
                switch load.result {
                case .success(let model):
                    do {
                        let served = try ServedModel(
                            model: model, folder: (repository.path as NSString).appendingPathComponent(name), emulation: emulation
                        )
                        entry.versions.append(served)
                        entry.hashes[served.version] = model.contentHash
                        logger.info("loaded model '\(name)' version \(load.version)")
                    } catch {
                        entry.failures.append((String(load.version), error.message))
                        logger.error("model '\(name)' version \(load.version) is unavailable: \(error.message)")
                    }
                case .failure(let error):
                    entry.failures.append((String(load.version), error.message))
                    logger.error("model '\(name)' version \(load.version) is unavailable: \(error.message)")
                }
            }
            entry.versions.sort { $0.model.version < $1.model.version }
        } catch {
            entry.failure = error.message
            logger.error("model '\(name)' is unavailable: \(error.message)")
        }
        let stored = entry
        entries.withLock { $0[name] = stored }
        return entry
    }

    /// Stops serving a model; requests already executing finish.
    func unload(_ name: String) -> Bool {
        entries.withLock { $0.removeValue(forKey: name) != nil }
    }

    /// Whether a model folder exists in the repository (for load requests of new models).
    func repositoryHas(_ name: String) -> Bool {
        (try? repository.modelNames().contains(name)) ?? false
    }

    /// The served version `version` of `name` ("" = the newest), or the error a client should get.
    func resolve(_ name: String, version: String) throws(RPCError) -> ServedModel {
        let entry = entries.withLock { $0[name] }
        guard let entry else {
            throw RPCError(code: .notFound, message: "unknown model '\(name)'")
        }
        if version.isEmpty {
            guard let newest = entry.versions.last else {
                let reason = entry.failure ?? entry.failures.last?.reason ?? "no version loaded"
                throw RPCError(code: .unavailable, message: "model '\(name)' is not available: \(reason)")
            }
            return newest
        }
        if let served = entry.versions.first(where: { $0.version == version }) { return served }
        if let failed = entry.failures.first(where: { $0.version == version }) {
            throw RPCError(code: .unavailable, message: "model '\(name)' version \(version) is not available: \(failed.reason)")
        }
        throw RPCError(code: .notFound, message: "unknown version '\(version)' of model '\(name)'")
    }

    /// Every entry, by model name.
    var snapshot: [String: Entry] { entries.withLock { $0 } }

    /// Every served version, for statistics and reports.
    var served: [ServedModel] {
        entries.withLock { $0.values.flatMap(\.versions) }
    }

    /// The store as the control plane describes it.
    var hostedModels: [Fulcrum_Control_V1_HostedModel] {
        var result: [Fulcrum_Control_V1_HostedModel] = []
        for (name, entry) in snapshot.sorted(by: { $0.key < $1.key }) {
            for served in entry.versions {
                var m = Fulcrum_Control_V1_HostedModel()
                m.name = name
                m.version = served.version
                m.state = "READY"
                m.contentHash = entry.hashes[served.version] ?? ""
                let configuration = served.model.configuration
                // The batch an execution can hold: without dynamic_batching every request runs on
                // its own, so the capacity model must not count on batches forming.
                m.maxBatchSize = configuration.dynamicBatching == nil ? 1 : UInt32(max(configuration.maxBatchSize, 0))
                // Checked when the model loaded (BatchPolicy): a bad value never gets this far.
                m.latencyTargetMs = configuration.fulcrum.latencyTarget.map { Double($0 / .microseconds(1)) / 1000 } ?? 0
                m.memoryBytes = UInt64(served.model.weightBytes)
                result.append(m)
            }
            for failure in entry.failures {
                var m = Fulcrum_Control_V1_HostedModel()
                m.name = name
                m.version = failure.version
                m.state = "UNAVAILABLE"
                m.reason = failure.reason
                result.append(m)
            }
            if let failure = entry.failure {
                var m = Fulcrum_Control_V1_HostedModel()
                m.name = name
                m.state = "UNAVAILABLE"
                m.reason = failure
                result.append(m)
            }
        }
        return result
    }
}

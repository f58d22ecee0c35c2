import Foundation
import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import GRPCCore
import Logging
import Synchronization

/// A processor loaded from the repository, ready to run.
struct ProcessorModel: Sendable {
    let name: String
    let version: String
    let configuration: ModelConfiguration
    let signature: ModelSignature
    let processor: any Processor
}

/// The models a frontend serves itself, read from the model repository once when it starts
/// (`--model-repository`): pipelines (`platform: "ensemble"`) and processors
/// (`platform: "fulcrum_*"`). One that fails its checks stays listed, UNAVAILABLE with the reason,
/// as Triton lists a model that failed to load; requests for it get UNAVAILABLE with the same
/// reason. Workers skip these folders.
final class FrontendModels: Sendable {
    /// One model served here, or why it cannot be.
    enum Entry: Sendable {
        case pipeline(Pipeline)
        case processor(ProcessorModel)
        case failed(name: String, version: String, reason: String)

        var name: String {
            switch self {
            case .pipeline(let pipeline): pipeline.name
            case .processor(let processor): processor.name
            case .failed(let name, _, _): name
            }
        }

        var version: String {
            switch self {
            case .pipeline(let pipeline): pipeline.version
            case .processor(let processor): processor.version
            case .failed(_, let version, _): version
            }
        }
    }

    /// What a request for a name served here runs.
    enum Local: Sendable {
        case pipeline(Pipeline)
        case processor(ProcessorModel)

        var name: String { signature.name }
        var signature: ModelSignature {
            switch self {
            case .pipeline(let pipeline): pipeline.signature
            case .processor(let processor): processor.signature
            }
        }
        var configuration: ModelConfiguration {
            switch self {
            case .pipeline(let pipeline): pipeline.configuration
            case .processor(let processor): processor.configuration
            }
        }
        /// "pipeline" or "processor", for spans and logs.
        var kind: String {
            switch self {
            case .pipeline: "pipeline"
            case .processor: "processor"
            }
        }
    }

    /// Entries by name.
    let entries: [String: Entry]
    /// Counts and times per model, for ModelStatistics.
    private let statistics = Mutex<[String: LocalStatistics]>([:])

    /// Nothing served here (a frontend started without `--model-repository`).
    init() {
        entries = [:]
    }

    init(entries: [Entry]) {
        self.entries = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Reads the pipelines and processors under `repository` and checks each; logs each one and
    /// what is wrong. `kinds` are the processor kinds this frontend knows.
    convenience init(repository: String, kinds: [ProcessorKind] = ProcessorKind.builtIn, logger: Logger) throws(FulcrumSchema.RuntimeError) {
        let loaded = try Self.load(repository: repository, kinds: kinds)
        for entry in loaded {
            switch entry {
            case .pipeline(let pipeline):
                logger.info("pipeline '\(pipeline.name)' version \(pipeline.version): \(pipeline.steps.count) step(s) calling \(pipeline.models.sorted().joined(separator: ", "))")
            case .processor(let processor):
                logger.info("processor '\(processor.name)' version \(processor.version) (\(processor.configuration.platform))")
            case .failed(let name, _, let reason):
                logger.error("'\(name)' cannot be served: \(reason)")
            }
        }
        self.init(entries: loaded)
    }

    /// What a request for `name` runs here, or the error it gets; nil when `name` is not served
    /// here (a pool model, or nothing).
    func local(_ name: String, version: String) throws(RPCError) -> Local? {
        guard let entry = entries[name] else { return nil }
        guard version.isEmpty || version == entry.version else {
            throw RPCError(code: .notFound, message: "unknown version '\(version)' of model '\(name)'")
        }
        switch entry {
        case .pipeline(let pipeline): return .pipeline(pipeline)
        case .processor(let processor): return .processor(processor)
        case .failed(_, _, let reason):
            throw RPCError(code: .unavailable, message: "model '\(name)' is not available: \(reason)")
        }
    }

    /// Records one finished request of `model`.
    func record(_ model: String, batch: Int, succeeded: Bool, nanoseconds: UInt64, queue: UInt64, compute: UInt64) {
        statistics.withLock { all in
            all[model, default: LocalStatistics()].record(batch: batch, succeeded: succeeded, nanoseconds: nanoseconds, queue: queue, compute: compute)
        }
    }

    /// ModelStatistics for the models served here matching `name` ("" = all), each also for `version` when set.
    func statistics(name: String, version: String) -> [Inference_ModelStatistics] {
        let recorded = statistics.withLock { $0 }
        return entries.values
            .filter { (name.isEmpty || $0.name == name) && (version.isEmpty || $0.version == version) }
            .sorted { $0.name < $1.name }
            .map { entry in (recorded[entry.name] ?? LocalStatistics()).wire(name: entry.name, version: entry.version) }
    }

    // MARK: Loading

    /// Reads the repository's pipelines and processors and checks each, then refuses pipelines
    /// that call each other in a cycle.
    static func load(repository: String, kinds: [ProcessorKind] = ProcessorKind.builtIn) throws(FulcrumSchema.RuntimeError) -> [Entry] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: repository, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FulcrumSchema.RuntimeError(code: .notFound, message: "model repository \(repository) is not a folder")
        }
        let folders: [String]
        do {
            folders = try FileManager.default.contentsOfDirectory(atPath: repository).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw FulcrumSchema.RuntimeError(code: .notFound, message: "cannot list \(repository): \(error.localizedDescription)")
        }
        let models = Set(folders.filter { folder in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: (repository as NSString).appendingPathComponent(folder), isDirectory: &isDirectory)
                && isDirectory.boolValue
        })
        var entries: [Entry] = []
        for name in models.sorted() {
            let folder = (repository as NSString).appendingPathComponent(name)
            let file = (folder as NSString).appendingPathComponent("config.pbtxt")
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            let version = highestVersion(in: folder) ?? "1"
            do throws(FulcrumSchema.RuntimeError) {
                guard let text = String(data: data, encoding: .utf8) else {
                    throw FulcrumSchema.RuntimeError(code: .invalidConfiguration, message: "\(file) is not UTF-8 text")
                }
                var configuration = try ModelConfiguration.parse(text: text, file: file)
                guard configuration.isServedByFrontends else { continue }
                if configuration.name.isEmpty { configuration.name = name }
                guard configuration.name == name else {
                    throw FulcrumSchema.RuntimeError(code: .invalidConfiguration, message: "\(file): name '\(configuration.name)' does not match the folder '\(name)'")
                }
                if configuration.isPipeline {
                    entries.append(.pipeline(try Pipeline(configuration: configuration, version: version, file: file, exists: models.contains)))
                } else {
                    entries.append(try processor(configuration, version: version, folder: folder, file: file, kinds: kinds))
                }
            } catch {
                // Only the errors of a model served here are its to report; a pool model's bad
                // config.pbtxt is the workers' to report.
                guard isFrontendText(data) else { continue }
                entries.append(.failed(name: name, version: version, reason: error.message))
            }
        }
        return refusingCycles(entries)
    }

    /// Whether a config.pbtxt that failed to parse was meant to be a pipeline or a processor.
    private static func isFrontendText(_ data: Data) -> Bool {
        guard let text = String(data: data, encoding: .utf8) else { return false }
        return text.contains("ensemble_scheduling")
            || text.range(of: #"platform\s*:\s*"(ensemble|fulcrum_[A-Za-z0-9_]*)""#, options: .regularExpression) != nil
    }

    /// Builds a processor of the kind its platform names.
    private static func processor(
        _ configuration: ModelConfiguration, version: String, folder: String, file: String, kinds: [ProcessorKind]
    ) throws(FulcrumSchema.RuntimeError) -> Entry {
        guard let kind = kinds.first(where: { $0.platform == configuration.platform }) else {
            let known = kinds.map { "\"\($0.platform)\"" }.joined(separator: ", ")
            throw FulcrumSchema.RuntimeError(code: .invalidConfiguration, message: "\(file): no processor has platform \"\(configuration.platform)\" (this frontend has \(known))")
        }
        let setup = ProcessorSetup(configuration: configuration, folder: (folder as NSString).appendingPathComponent(version), file: file)
        do {
            let processor = try kind.make(setup)
            return .processor(ProcessorModel(
                name: configuration.name, version: version, configuration: configuration,
                signature: ModelSignature(configuration: configuration, version: version), processor: processor))
        } catch let error as ProcessorError {
            throw FulcrumSchema.RuntimeError(code: .invalidConfiguration, message: error.message)
        } catch {
            throw FulcrumSchema.RuntimeError(code: .invalidConfiguration, message: "\(file): \(error)")
        }
    }

    /// The highest numeric version folder, if any.
    private static func highestVersion(in folder: String) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name -> Int64? in
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int64(name)
        }.max().map(String.init)
    }

    /// Pipelines whose steps call pipelines that (through any chain) call them back are marked
    /// failed, naming the chain.
    static func refusingCycles(_ entries: [Entry]) -> [Entry] {
        var calls: [String: [String]] = [:]
        for case .pipeline(let pipeline) in entries {
            calls[pipeline.name] = pipeline.models.sorted()
        }
        var result: [Entry] = []
        for entry in entries {
            guard case .pipeline(let pipeline) = entry, let chain = chainBack(to: pipeline.name, calls: calls) else {
                result.append(entry)
                continue
            }
            result.append(.failed(
                name: pipeline.name, version: pipeline.version,
                reason: "pipelines call each other in a cycle: \(chain.joined(separator: " → "))"))
        }
        return result
    }

    /// A chain of pipeline calls from `start` back to `start`, if there is one.
    private static func chainBack(to start: String, calls: [String: [String]]) -> [String]? {
        var seen: Set<String> = []
        func walk(_ name: String, _ path: [String]) -> [String]? {
            for next in calls[name] ?? [] {
                if next == start { return path + [next] }
                guard calls[next] != nil, seen.insert(next).inserted else { continue }
                if let found = walk(next, path + [next]) { return found }
            }
            return nil
        }
        return walk(start, [start])
    }
}

/// The counters of a model served here, as Triton's ModelStatistics reports an ensemble: requests
/// that succeeded and failed with their whole time, and (pipelines) the queue and compute time of
/// their steps summed; a processor's compute is its own time.
struct LocalStatistics: Sendable {
    private var lastInference: UInt64 = 0
    private var inferences: UInt64 = 0
    private var executions: UInt64 = 0
    private var success = (count: UInt64(0), ns: UInt64(0))
    private var fail = (count: UInt64(0), ns: UInt64(0))
    private var queue = (count: UInt64(0), ns: UInt64(0))
    private var compute = (count: UInt64(0), ns: UInt64(0))

    mutating func record(batch: Int, succeeded: Bool, nanoseconds: UInt64, queue: UInt64, compute: UInt64) {
        lastInference = UInt64(Date().timeIntervalSince1970 * 1000)
        if succeeded {
            inferences += UInt64(max(batch, 1))
            executions += 1
            success.count += 1
            success.ns += nanoseconds
            self.queue.count += 1
            self.queue.ns += queue
            self.compute.count += 1
            self.compute.ns += compute
        } else {
            fail.count += 1
            fail.ns += nanoseconds
        }
    }

    func wire(name: String, version: String) -> Inference_ModelStatistics {
        func duration(_ value: (count: UInt64, ns: UInt64)) -> Inference_StatisticDuration {
            var d = Inference_StatisticDuration()
            d.count = value.count
            d.ns = value.ns
            return d
        }
        var stats = Inference_ModelStatistics()
        stats.name = name
        stats.version = version
        stats.lastInference = lastInference
        stats.inferenceCount = inferences
        stats.executionCount = executions
        stats.inferenceStats.success = duration(success)
        stats.inferenceStats.fail = duration(fail)
        stats.inferenceStats.queue = duration(queue)
        stats.inferenceStats.computeInfer = duration(compute)
        return stats
    }
}

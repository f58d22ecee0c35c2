import Foundation
import FulcrumSchema

/// A model repository on disk in Triton's layout:
/// `<path>/<model>/config.pbtxt` and `<path>/<model>/<version>/model.onnx`.
///
/// A value: it reads the file system when asked and holds no state, so the worker can rescan
/// whenever it likes. Loading decodes the ONNX file and builds its execution plan (the costly
/// part: proportional to the weights' size).
public struct ModelRepository: Sendable {
    /// The repository's root folder.
    public var path: String
    /// Which backend each model's plan runs on.
    public var placement: DevicePlacement

    /// A repository rooted at `path`, placing models by `placement` (default: all on the CPU).
    public init(path: String, placement: DevicePlacement = .cpu) {
        self.path = path
        self.placement = placement
    }

    private static func isVersionName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && Int64(name) != nil
    }

    private func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private func contents(_ folder: String) throws(RuntimeError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw RuntimeError(code: .notFound, message: "cannot list \(folder): \(error.localizedDescription)")
        }
    }

    /// Model folder names (sorted) under `path`: folders holding config.pbtxt or a numeric
    /// version folder. Hidden folders, pipelines and processors (which the frontends serve) are skipped. Throws `.notFound` when `path` is not a folder.
    public func modelNames() throws(RuntimeError) -> [String] {
        guard isDirectory(path) else {
            throw RuntimeError(code: .notFound, message: "model repository \(path) is not a folder")
        }
        var names: [String] = []
        for entry in try contents(path) where !entry.hasPrefix(".") {
            let folder = (path as NSString).appendingPathComponent(entry)
            guard isDirectory(folder) else { continue }
            let hasConfig = FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent("config.pbtxt"))
            let hasVersion = ((try? contents(folder)) ?? []).contains {
                Self.isVersionName($0) && isDirectory((folder as NSString).appendingPathComponent($0))
            }
            guard hasConfig || hasVersion else { continue }
            // Pipelines and processors run in the frontends, not here.
            if hasConfig, (try? readConfiguration(folder: folder))?.configuration.isServedByFrontends == true { continue }
            names.append(entry)
        }
        return names.sorted()
    }

    /// Reads `<path>/<name>/config.pbtxt` (a missing config.pbtxt is allowed: the configuration
    /// is completed from the graph, as Triton does), picks versions by the version policy, and
    /// loads each. Throws for a model-level problem (no such folder, unreadable or invalid
    /// config, unsupported platform, no versions); per-version failures are in the results,
    /// in ascending version order.
    public func load(_ name: String) throws(RuntimeError) -> [ModelVersionLoad] {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw RuntimeError(code: .notFound, message: "'\(name)' is not a model name")
        }
        let folder = (path as NSString).appendingPathComponent(name)
        guard isDirectory(folder) else {
            throw RuntimeError(code: .notFound, message: "model '\(name)' not found: \(folder) is not a folder")
        }
        let configPath = (folder as NSString).appendingPathComponent("config.pbtxt")
        var config: ModelConfiguration?
        let read = try readConfiguration(folder: folder)
        let configText = read?.text
        if var parsed = read?.configuration {
            if parsed.name.isEmpty { parsed.name = name }
            guard parsed.name == name else {
                throw RuntimeError(
                    code: .invalidConfiguration,
                    message: "\(configPath): name '\(parsed.name)' does not match the model folder '\(name)'")
            }
            guard !parsed.isServedByFrontends else {
                throw RuntimeError(
                    code: .invalidConfiguration,
                    message: "'\(name)' has platform \"\(parsed.platform)\": the frontends run it, not the workers")
            }
            config = try parsed.withONNXPlatform(file: configPath)
        }

        let available = try contents(folder)
            .filter { Self.isVersionName($0) && isDirectory((folder as NSString).appendingPathComponent($0)) }
            .compactMap { Int64($0) }
            .sorted()
        let policy = config?.versionPolicy ?? .latest(1)
        var chosen: [Int64]
        switch policy {
        case .latest(let count): chosen = Array(available.suffix(max(count, 1)))
        case .all: chosen = available
        case .specific(let versions): chosen = Array(Set(versions)).sorted()
        }
        guard !chosen.isEmpty else {
            throw RuntimeError(
                code: .notFound,
                message: "model '\(name)' has no version folders in \(folder) (expected numeric folders such as 1/ holding \(config.map(modelFilename) ?? "model.onnx"))")
        }
        return chosen.map { version in
            guard available.contains(version) else {
                return ModelVersionLoad(
                    version: version,
                    result: .failure(RuntimeError(code: .notFound, message: "model '\(name)' version \(version) is in version_policy but \(folder)/\(version) does not exist")))
            }
            do throws(RuntimeError) {
                let model = try loadVersion(name: name, version: version, folder: folder, config: config, configText: configText, configPath: configPath)
                return ModelVersionLoad(version: version, result: .success(model))
            } catch {
                return ModelVersionLoad(version: version, result: .failure(error))
            }
        }
    }

    /// `<folder>/config.pbtxt`, its text and parsed configuration; nil when the folder has none.
    private func readConfiguration(folder: String) throws(RuntimeError) -> (text: String, configuration: ModelConfiguration)? {
        let configPath = (folder as NSString).appendingPathComponent("config.pbtxt")
        guard FileManager.default.fileExists(atPath: configPath) else { return nil }
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw RuntimeError(code: .invalidConfiguration, message: "cannot read \(configPath)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(configPath) is not UTF-8 text")
        }
        return (text, try ModelConfiguration.parse(text: text, file: configPath))
    }

    private func modelFilename(_ config: ModelConfiguration) -> String {
        config.defaultModelFilename.isEmpty ? "model.onnx" : config.defaultModelFilename
    }

    private func loadVersion(
        name: String, version: Int64, folder: String, config: ModelConfiguration?, configText: String?, configPath: String
    ) throws(RuntimeError) -> Model {
        let filename = config.map(modelFilename) ?? "model.onnx"
        guard !filename.contains("/"), filename != "..", filename != "." else {
            throw RuntimeError(code: .invalidConfiguration, message: "\(configPath): default_model_filename '\(filename)' must be a file name, not a path")
        }
        let modelPath = ((folder as NSString).appendingPathComponent(String(version)) as NSString).appendingPathComponent(filename)
        let (plan, bytes) = try ONNXModelLoader.load(path: modelPath, target: try placement.target(for: config))
        let completed: ModelConfiguration
        if let config {
            completed = try config.completed(with: plan, file: configPath)
        } else {
            completed = try ModelConfiguration.autoCompleted(name: name, plan: plan)
                .completed(with: plan, file: "\(folder) (no config.pbtxt)")
        }
        var hash = ContentHash()
        if let configText { hash.update(configText.utf8) }
        hash.update(bytes)
        return Model(name: name, version: version, configuration: completed, contentHash: hash.hex, plan: plan)
    }
}

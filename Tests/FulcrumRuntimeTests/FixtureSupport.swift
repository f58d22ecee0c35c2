import Foundation
import FulcrumRuntime
import FulcrumSchema
import Testing

/// Access to the committed fixtures (scripts/make-runtime-fixtures.py) and temporary repositories.
enum Fixtures {
    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// The repository's example model repository (examples/models), found from this file's
    /// path (through the symlinks of a shadow package).
    static var examples: URL {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/models")
    }

    /// The per-operator cases in Fixtures/ops (names without extension), sorted.
    static var operatorCases: [String] {
        let folder = directory.appendingPathComponent("ops")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(".onnx") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// Inputs and onnxruntime's outputs stored beside a fixture model.
    static func expectations(_ name: String) throws -> (inputs: [String: Tensor], outputs: [String: Tensor]) {
        let data = try Data(contentsOf: url(name + ".json"))
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func tensors(_ key: String) throws -> [String: Tensor] {
            let entries = try #require(document[key] as? [String: [String: Any]])
            var result: [String: Tensor] = [:]
            for (name, entry) in entries {
                let shape = try #require(entry["shape"] as? [Int])
                // JSON has no NaN: the fixtures write it as the string "nan".
                let raw = try #require(entry["data"] as? [Any])
                let values = raw.map { ($0 as? NSNumber) ?? NSNumber(value: Float.nan) }
                switch entry["dtype"] as? String {
                case "FP32": result[name] = Tensor(shape: shape, scalars: values.map(\.floatValue))
                case "FP64": result[name] = Tensor(shape: shape, scalars: values.map(\.doubleValue))
                case "INT32": result[name] = Tensor(shape: shape, scalars: values.map(\.int32Value))
                case "INT64": result[name] = Tensor(shape: shape, scalars: values.map(\.int64Value))
                case "BOOL": result[name] = Tensor(shape: shape, scalars: values.map { $0.intValue != 0 })
                default: Issue.record("unknown dtype in \(name)")
                }
            }
            return result
        }
        return (try tensors("inputs"), try tensors("outputs"))
    }
}

/// A model repository in a fresh temporary folder, removed when the value is deinitialised.
final class TemporaryRepository {
    let root: URL
    var repository: ModelRepository { ModelRepository(path: root.path) }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Adds `<model>/<version>/<filename>` copied from a fixture (plus any extra fixture files)
    /// and, when given, `<model>/config.pbtxt`.
    func add(
        model: String, fixture: String, versions: [Int] = [1], config: String? = nil,
        filename: String = "model.onnx", extraFiles: [String] = []
    ) throws {
        let folder = root.appendingPathComponent(model)
        for version in versions {
            let versionFolder = folder.appendingPathComponent(String(version))
            try FileManager.default.createDirectory(at: versionFolder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url(fixture), to: versionFolder.appendingPathComponent(filename))
            for extra in extraFiles {
                try FileManager.default.copyItem(at: Fixtures.url(extra), to: versionFolder.appendingPathComponent(extra))
            }
        }
        if versions.isEmpty { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        if let config {
            try config.write(to: folder.appendingPathComponent("config.pbtxt"), atomically: true, encoding: .utf8)
        }
    }

    /// Writes raw bytes as `<model>/<version>/model.onnx`.
    func add(model: String, bytes: Data, version: Int = 1) throws {
        let folder = root.appendingPathComponent(model).appendingPathComponent(String(version))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try bytes.write(to: folder.appendingPathComponent("model.onnx"))
    }

    /// Loads `model` and returns its single version's result.
    func loadOne(_ model: String) throws -> Result<Model, RuntimeError> {
        let loads = try repository.load(model)
        try #require(loads.count == 1)
        return loads[0].result
    }
}

/// Expects `actual` to match `expected` in type, shape and values (FP32 within `tolerance`,
/// relative to the magnitude).
func expectClose(_ actual: Tensor?, _ expected: Tensor, tolerance: Float = 1e-5, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else {
        Issue.record("\(label): missing output", sourceLocation: sourceLocation)
        return
    }
    #expect(actual.dataType == expected.dataType, "\(label)", sourceLocation: sourceLocation)
    #expect(actual.shape == expected.shape, "\(label)", sourceLocation: sourceLocation)
    guard actual.dataType == expected.dataType, actual.shape == expected.shape else { return }
    if expected.dataType == .fp32 {
        let a = actual.scalars(as: Float.self)
        let e = expected.scalars(as: Float.self)
        let worst = zip(a, e).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst <= tolerance, "\(label): largest relative difference \(worst)", sourceLocation: sourceLocation)
    } else {
        #expect(actual.data == expected.data, "\(label)", sourceLocation: sourceLocation)
    }
}

/// Relative L2 error `‖actual − expected‖ / ‖expected‖` of two FP32 tensors (∞ on a type or
/// shape mismatch).
func relativeL2(_ actual: Tensor?, _ expected: Tensor) -> Double {
    guard let actual, actual.dataType == .fp32, expected.dataType == .fp32, actual.shape == expected.shape else { return .infinity }
    var difference = 0.0
    var norm = 0.0
    for (a, e) in zip(actual.scalars(as: Float.self), expected.scalars(as: Float.self)) {
        difference += Double(a - e) * Double(a - e)
        norm += Double(e) * Double(e)
    }
    return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
}

extension RuntimeError {
    /// Whether this error has `code` and its message contains every fragment.
    func matches(_ code: Code, _ fragments: String...) -> Bool {
        self.code == code && fragments.allSatisfy { message.contains($0) }
    }
}

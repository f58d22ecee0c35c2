import Foundation
import FulcrumSchema
import ONNXFormat
import SwiftProtobuf

/// Reads an ONNX file and turns it into an `ExecutionPlan`.
enum ONNXModelLoader {
    /// Files larger than this are refused before reading (protobuf caps messages at 2 GiB;
    /// bigger weights belong in external data).
    static let maximumFileSize = 2 << 30

    /// Reads and decodes `path` and plans it for `target`. Returns the plan and the file's bytes (for the content hash).
    /// A missing file is `.notFound`; an unreadable, truncated or inconsistent one `.invalidModel`.
    static func load(path: String, target: ExecutionTarget = .cpu) throws(RuntimeError) -> (plan: ExecutionPlan, bytes: Data) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuntimeError(code: .notFound, message: "model file \(path) does not exist")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw RuntimeError(code: .invalidModel, message: "cannot read model file \(path): \(error.localizedDescription)")
        }
        guard data.count <= maximumFileSize else {
            throw RuntimeError(code: .invalidModel, message: "model file \(path) is larger than 2 GiB; store weights as external data")
        }
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            model = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw RuntimeError(
                code: .invalidModel,
                message: "\(path) is not a valid ONNX model (protobuf decoding failed: \(error)); the file may be truncated or not an ONNX file")
        }
        let directory = (path as NSString).deletingLastPathComponent
        do throws(RuntimeError) {
            return (try ExecutionPlan(model: model, modelDirectory: directory, target: target), data)
        } catch {
            throw RuntimeError(code: error.code, message: "\(path): \(error.message)")
        }
    }
}

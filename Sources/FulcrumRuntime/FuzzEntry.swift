import Foundation
import ONNXFormat
import SwiftProtobuf

/// What the fuzz harness (`Sources/fulcrum-fuzz`) drives in this library: the ONNX loader on
/// bytes (decoding and planning, as `ONNXModelLoader.load` does after reading the file).
/// Package-visible only.
package enum RuntimeFuzzing {
    package static func planONNX(_ bytes: Data) throws {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 64
        let model = try Onnx_ModelProto(serializedBytes: bytes, options: options)
        _ = try ExecutionPlan(model: model, modelDirectory: "/nonexistent-fulcrum-fuzz", target: .cpu)
    }
}

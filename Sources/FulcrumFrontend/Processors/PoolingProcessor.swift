import Foundation
import FulcrumSchema

/// `platform: "fulcrum_pooling"`: one vector per text from a transformer's token embeddings, as
/// sentence-transformers pools them.
///
/// Input 0: the token embeddings, FP32 [batch, tokens, hidden]; input 1: the attention mask
/// [batch, tokens] (INT64, INT32, FP32 or BOOL; needed for `mean`). Output 0: FP32 [batch, hidden].
/// Parameters: `mode` = `mean` (the average of the tokens the mask keeps; the default) or `cls`
/// (the first token); `normalize` = `true` divides each vector by its L2 norm.
struct PoolingProcessor: Processor {
    enum Mode: String { case mean, cls }

    let mode: Mode
    let normalize: Bool
    let embeddings: String
    let mask: String?
    let output: String

    static let kind = ProcessorKind(platform: "fulcrum_pooling") { setup in try PoolingProcessor(setup) }

    init(_ setup: ProcessorSetup) throws(ProcessorError) {
        mode = Mode(rawValue: try setup.choice("mode", default: "mean", in: ["mean", "cls"]))!
        normalize = try setup.flag("normalize", default: false)
        let input = try setup.tensor(\.inputs, 0, "an input: the token embeddings, FP32 [batch, tokens, hidden]")
        guard input.dataType == .fp32 else { throw setup.error("input '\(input.name)' must be TYPE_FP32") }
        embeddings = input.name
        mask = setup.configuration.inputs.count > 1 ? setup.configuration.inputs[1].name : nil
        if mode == .mean && mask == nil {
            throw setup.error("mode 'mean' needs a second input: the attention mask [batch, tokens]")
        }
        let out = try setup.tensor(\.outputs, 0, "an output: the pooled vectors, FP32 [batch, hidden]")
        guard out.dataType == .fp32 else { throw setup.error("output '\(out.name)' must be TYPE_FP32") }
        output = out.name
    }

    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor] {
        guard let tokens = inputs[embeddings] else { throw ProcessorError.invalidInput("input '\(embeddings)' is missing") }
        var shape = tokens.shape
        if !context.batching { shape.insert(1, at: 0) }
        guard shape.count == 3 else {
            throw ProcessorError.invalidInput("input '\(embeddings)': expected [batch, tokens, hidden], got \(tokens.shape)")
        }
        let (rows, length, hidden) = (shape[0], shape[1], shape[2])
        let values = tokens.scalars(as: Float.self)
        var weights = [Double](repeating: 0, count: rows * length)
        if mode == .mean, let mask {
            guard let maskTensor = inputs[mask], let maskValues = maskTensor.doubles else {
                throw ProcessorError.invalidInput("input '\(mask)' is missing or not numeric")
            }
            guard maskValues.count == rows * length else {
                throw ProcessorError.invalidInput("input '\(mask)' has shape \(maskTensor.shape); the embeddings need [\(rows), \(length)]")
            }
            weights = maskValues
        }
        var pooled = [Float](repeating: 0, count: rows * hidden)
        var sum = [Double](repeating: 0, count: hidden)
        for row in 0..<rows {
            switch mode {
            case .cls:
                for h in 0..<hidden { sum[h] = length > 0 ? Double(values[row * length * hidden + h]) : 0 }
            case .mean:
                for h in 0..<hidden { sum[h] = 0 }
                var count = 0.0
                for t in 0..<length {
                    let w = weights[row * length + t]
                    guard w != 0 else { continue }
                    count += w
                    let base = (row * length + t) * hidden
                    for h in 0..<hidden { sum[h] += w * Double(values[base + h]) }
                }
                // sentence-transformers clamps the token count at 1e-9.
                let divisor = max(count, 1e-9)
                for h in 0..<hidden { sum[h] /= divisor }
            }
            var scale = 1.0
            if normalize {
                let norm = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
                scale = 1 / max(norm, 1e-12)
            }
            for h in 0..<hidden { pooled[row * hidden + h] = Float(sum[h] * scale) }
        }
        let outShape = context.batching ? [rows, hidden] : [hidden]
        return [output: Tensor(shape: outShape, scalars: pooled)]
    }
}

import Foundation
import FulcrumSchema
import FulcrumService
import GRPCCore

/// `platform: "fulcrum_classify"`: the top-k classes of each row of scores, labelled, as Triton's
/// classification extension answers them — but in the frontend, as a pipeline step.
///
/// Input 0: scores [batch, classes] (any numeric type). Output 0: BYTES [batch, k], each element
/// `"<score>:<index>:<label>"` (`"<score>:<index>"` without a label). Parameters: `top_k`
/// (default 1). Labels: one per line in the output's `label_filename`, a file in the processor's
/// folder (`<repository>/<name>/`), as Triton reads it.
struct ClassifyProcessor: Processor {
    let scores: String
    let output: String
    let k: Int
    let labels: [String]?

    static let kind = ProcessorKind(platform: "fulcrum_classify") { setup in try ClassifyProcessor(setup) }

    init(_ setup: ProcessorSetup) throws(ProcessorError) {
        scores = try setup.tensor(\.inputs, 0, "an input: the scores [batch, classes]").name
        let out = try setup.tensor(\.outputs, 0, "an output: the labels, TYPE_STRING [batch, k]")
        guard out.dataType == .bytes else { throw setup.error("output '\(out.name)' must be TYPE_STRING") }
        output = out.name
        k = try setup.integer("top_k", default: 1, in: 1...65536)
        if let file = out.labelFilename {
            let modelFolder = (setup.folder as NSString).deletingLastPathComponent
            let path = (modelFolder as NSString).appendingPathComponent(file)
            guard !file.contains("/"), let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw setup.error("label_filename '\(file)': cannot read \(path)")
            }
            labels = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        } else {
            labels = nil
        }
    }

    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor] {
        guard let tensor = inputs[scores] else { throw ProcessorError.invalidInput("input '\(scores)' is missing") }
        do {
            var top = try Classification.topK(tensor, k: k, labels: labels, batching: context.batching, output: output)
            if !context.batching { top.shape = [top.shape.last ?? 0] }
            return [output: top]
        } catch {
            throw ProcessorError.invalidInput(error.message)
        }
    }
}

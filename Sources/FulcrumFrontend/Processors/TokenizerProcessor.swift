import Foundation
import FulcrumSchema

/// `platform: "fulcrum_tokenizer"`: texts to token ids with a Hugging Face `tokenizer.json` (BERT
/// WordPiece or byte-level BPE; `HFTokenizer`), producing exactly what the `tokenizers` package
/// produces for the same file.
///
/// Input 0: the texts, TYPE_STRING (UTF-8), one per batch row ([batch, 1] with
/// `max_batch_size > 0`, or [n] without). Outputs, INT64 [batch, tokens], by name:
/// `input_ids`, `attention_mask`, `token_type_ids` (any subset, in any order). Parameters:
/// - `file` (default `tokenizer.json`): in the version folder.
/// - `max_length`: truncation (the special tokens count); default the file's own truncation, else 512.
/// - `padding`: `longest` (pad to the batch's longest text; default) or `fixed` (to `max_length`),
///   with the file's pad id.
/// - `add_special_tokens` (default true): [CLS] … [SEP] or the file's template.
struct TokenizerProcessor: Processor {
    let tokenizer: HFTokenizer
    let text: String
    let outputs: [(name: String, field: Field)]
    let maxLength: Int
    let fixed: Bool
    let special: Bool

    enum Field: String, CaseIterable { case inputIDs = "input_ids", attentionMask = "attention_mask", typeIDs = "token_type_ids" }

    static let kind = ProcessorKind(platform: "fulcrum_tokenizer") { setup in try TokenizerProcessor(setup) }

    init(_ setup: ProcessorSetup) throws(ProcessorError) {
        let input = try setup.tensor(\.inputs, 0, "an input: the texts, TYPE_STRING")
        guard input.dataType == .bytes else { throw setup.error("input '\(input.name)' must be TYPE_STRING") }
        text = input.name
        var outputs: [(String, Field)] = []
        for output in setup.configuration.outputs {
            guard let field = Field(rawValue: output.name) else {
                throw setup.error("output '\(output.name)': a tokenizer's outputs are named input_ids, attention_mask or token_type_ids")
            }
            guard output.dataType == .int64 else { throw setup.error("output '\(output.name)' must be TYPE_INT64") }
            outputs.append((output.name, field))
        }
        guard !outputs.isEmpty else { throw setup.error("needs at least one output (input_ids, attention_mask, token_type_ids)") }
        self.outputs = outputs
        let path = try setup.file(named: setup.parameter("file", default: "tokenizer.json")!)
        guard let data = FileManager.default.contents(atPath: path) else { throw setup.error("cannot read \(path)") }
        do {
            tokenizer = try HFTokenizer(json: data)
        } catch {
            throw setup.error("\(path): \(error.message)")
        }
        maxLength = try setup.integer("max_length", default: tokenizer.configuredMaxLength ?? 512, in: 2...65536)
        fixed = try setup.choice("padding", default: "longest", in: ["longest", "fixed"]) == "fixed"
        special = try setup.flag("add_special_tokens", default: true)
    }

    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor] {
        guard let tensor = inputs[text], let elements = tensor.byteElements else {
            throw ProcessorError.invalidInput("input '\(text)' is missing or not a well-formed TYPE_STRING tensor")
        }
        let rows = context.batching ? (tensor.shape.first ?? 0) : elements.count
        guard elements.count == rows else {
            throw ProcessorError.invalidInput("input '\(text)': one text per row is expected, got \(elements.count) for \(rows) rows")
        }
        var encodings: [TokenizerEncoding] = []
        encodings.reserveCapacity(rows)
        for (row, element) in elements.enumerated() {
            guard let string = String(validating: element, as: UTF8.self) else {
                throw ProcessorError.invalidInput("input '\(text)': text \(row) is not UTF-8")
            }
            encodings.append(tokenizer.encode(string, addSpecialTokens: special, maxLength: maxLength))
        }
        let width = fixed ? maxLength : encodings.map(\.ids.count).max() ?? 0
        var result: [String: Tensor] = [:]
        for (name, field) in outputs {
            var values = [Int64](repeating: 0, count: rows * width)
            let pad: Int64 = switch field {
            case .inputIDs: tokenizer.padID
            case .typeIDs: tokenizer.padTypeID
            case .attentionMask: 0
            }
            for row in 0..<rows {
                let encoding = encodings[row]
                let source: [Int64] = switch field {
                case .inputIDs: encoding.ids
                case .attentionMask: encoding.attentionMask
                case .typeIDs: encoding.typeIDs
                }
                for column in 0..<width {
                    values[row * width + column] = column < source.count ? source[column] : pad
                }
            }
            result[name] = Tensor(shape: [rows, width], scalars: values)
        }
        return result
    }
}

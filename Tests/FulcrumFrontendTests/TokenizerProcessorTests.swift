import Foundation
@testable import FulcrumFrontend
import FulcrumSchema
import Testing

/// The tokenizer processor's configuration checks and padding, on a small WordPiece file written
/// here (exactness against the `tokenizers` package is tests/integration/test_embeddings.py's).
@Suite struct TokenizerProcessorTests {
    static let tokenizerJSON = """
        {"version": "1.0", "truncation": null, "padding": null,
         "added_tokens": [
           {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
         "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
         "pre_tokenizer": {"type": "BertPreTokenizer"},
         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
         "decoder": null,
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                   "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "play": 6, "##ing": 7, "!": 8}}}
        """

    static func folder(json: String = tokenizerJSON) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("1"), withIntermediateDirectories: true)
        try json.write(to: root.appendingPathComponent("1/tokenizer.json"), atomically: true, encoding: .utf8)
        return root
    }

    static func setup(_ extra: String, folder: URL, input: String = "TYPE_STRING", outputs: String = #"{ name: "input_ids" data_type: TYPE_INT64 dims: [ -1 ] }, { name: "attention_mask" data_type: TYPE_INT64 dims: [ -1 ] }"#) throws -> ProcessorSetup {
        let text = """
            platform: "fulcrum_tokenizer"
            max_batch_size: 8
            input [ { name: "text" data_type: \(input) dims: [ 1 ] } ]
            output [ \(outputs) ]
            \(extra)
            """
        var configuration = try ModelConfiguration.parse(text: text, file: "t/config.pbtxt")
        configuration.name = "t"
        return ProcessorSetup(configuration: configuration, folder: folder.appendingPathComponent("1").path, file: "t/config.pbtxt")
    }

    static func texts(_ values: [String]) -> Tensor {
        Tensor(bytes: values.map { Array($0.utf8) }, shape: [values.count, 1])
    }

    @Test func tokensArePaddedToTheLongestTextOrToMaxLength() async throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let longest = try TokenizerProcessor(Self.setup("", folder: root))
        let out = try await longest.process(["text": Self.texts(["Hello world!", "playing"])], context: .init(model: "t", batching: true))
        // [CLS] hello world ! [SEP] and [CLS] play ##ing [SEP] [PAD].
        #expect(out["input_ids"]?.shape == [2, 5])
        #expect(out["input_ids"]?.scalars(as: Int64.self) == [2, 4, 5, 8, 3, 2, 6, 7, 3, 0])
        #expect(out["attention_mask"]?.scalars(as: Int64.self) == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        let fixed = try TokenizerProcessor(Self.setup(#"parameters { key: "padding" value: { string_value: "fixed" } } parameters { key: "max_length" value: { string_value: "4" } }"#, folder: root))
        let cut = try await fixed.process(["text": Self.texts(["Hello world!", "playing"])], context: .init(model: "t", batching: true))
        #expect(cut["input_ids"]?.shape == [2, 4])
        #expect(cut["input_ids"]?.scalars(as: Int64.self) == [2, 4, 5, 3, 2, 6, 7, 3])
    }

    @Test func textThatIsNotUTF8IsInvalidInput() async throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let processor = try TokenizerProcessor(Self.setup("", folder: root))
        let bad = Tensor(bytes: [[0xFF, 0xFE, 0x41]], shape: [1, 1])
        await #expect(throws: ProcessorError.self) {
            _ = try await processor.process(["text": bad], context: .init(model: "t", batching: true))
        }
    }

    @Test("a tokenizer configured wrongly is refused at load, saying what is wrong")
    func refusals() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let unigram = try Self.folder(json: #"{"model": {"type": "Unigram", "vocab": []}, "normalizer": null, "pre_tokenizer": null, "post_processor": null, "added_tokens": []}"#)
        defer { try? FileManager.default.removeItem(at: unigram) }
        let cases: [(() throws -> ProcessorSetup, String)] = [
            ({ try Self.setup("", folder: root, input: "TYPE_INT32") }, "must be TYPE_STRING"),
            ({ try Self.setup("", folder: root, outputs: #"{ name: "ids" data_type: TYPE_INT64 dims: [ -1 ] }"#) }, "input_ids, attention_mask or token_type_ids"),
            ({ try Self.setup("", folder: root, outputs: #"{ name: "input_ids" data_type: TYPE_INT32 dims: [ -1 ] }"#) }, "must be TYPE_INT64"),
            ({ try Self.setup(#"parameters { key: "file" value: { string_value: "missing.json" } }"#, folder: root) }, "does not exist"),
            ({ try Self.setup(#"parameters { key: "file" value: { string_value: "../x.json" } }"#, folder: root) }, "not a path"),
            ({ try Self.setup(#"parameters { key: "padding" value: { string_value: "max" } }"#, folder: root) }, "'padding': 'max' is not one of longest, fixed"),
            ({ try Self.setup("", folder: unigram) }, "Unigram"),
        ]
        for (setup, fragment) in cases {
            do {
                _ = try TokenizerProcessor(setup())
                Issue.record("accepted (\(fragment))")
            } catch let error as ProcessorError {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
    }
}

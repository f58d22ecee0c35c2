import Foundation

// Hugging Face `tokenizers` encoding, read from a `tokenizer.json`, matching what the Rust crate
// (and the `tokenizers` package on PyPI, which wraps it) produces: the same ids, type ids and
// attention mask for any text.
//
// The pipeline is the library's:
//   1. added tokens ([CLS], <mask>, ...) are cut out of the raw text (those with
//      `normalized: false`), then out of each normalized piece (those with `normalized: true`);
//   2. the remaining pieces are normalized, pre-tokenized into words, and each word is turned
//      into ids by the model (WordPiece or BPE);
//   3. the ids are truncated (keeping room for the special tokens) and the post-processor adds
//      the special tokens and type ids.
//
// Supported components:
//   normalizers      BertNormalizer, Lowercase, NFD, NFKD, StripAccents, Strip, Prepend,
//                    Sequence
//   pre-tokenizers   BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, ByteLevel,
//                    Sequence
//   models           WordPiece, BPE (no dropout)
//   post-processors  TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, and a
//                    Sequence of those with at most one that adds tokens
// Anything else is refused with a `TokenizerError` naming it; the decoder is not used.
//
// Text is processed as Unicode scalars (never Swift `Character`s, which are grapheme clusters),
// and every table lookup compares UTF-8 bytes: Swift's `String ==` treats canonically equivalent
// strings ("é" and "e\u{301}") as equal, the library does not.
//
// Character classes follow the tables the Rust crate was built with, which are not all of the
// same Unicode version (see `CharClass`); the Swift standard library provides the properties
// and each class is cut at the version its Rust table has.

// MARK: - Public API

/// Why a `tokenizer.json` could not be loaded: malformed JSON, a missing or ill-typed field, or a
/// component this implementation does not support (named in `message`).
public struct TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "tokenizer.json: \(message)" }
}

/// The model inputs for one text: token ids, token type ids (segment ids) and the attention mask
/// (all ones: `encode` never pads; pad with `HFTokenizer.padID` / `padTypeID` and mask 0).
public struct TokenizerEncoding: Sendable, Equatable {
    public var ids: [Int64]
    public var typeIDs: [Int64]
    public var attentionMask: [Int64]

    public init(ids: [Int64], typeIDs: [Int64], attentionMask: [Int64]) {
        self.ids = ids
        self.typeIDs = typeIDs
        self.attentionMask = attentionMask
    }
}

/// A tokenizer loaded from a Hugging Face `tokenizer.json`. Immutable and thread-safe (the BPE
/// word cache is behind a lock); load once and share.
public struct HFTokenizer: Sendable {
    /// The padding id: the file's `padding.pad_id`, else the id of `[PAD]` or `<pad>`, else 0.
    public let padID: Int64
    /// The padding type id: the file's `padding.pad_type_id`, else 0.
    public let padTypeID: Int64
    /// The file's `truncation.max_length`, when the file enables truncation. `encode` only
    /// truncates when given `maxLength`; pass this value to reproduce the file's setting.
    public let configuredMaxLength: Int?

    private let rawAddedTokens: AddedTokens
    private let normalizedAddedTokens: AddedTokens
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let model: TokenModel
    private let postProcessor: PostProcessor

    /// Loads a tokenizer from the contents of a `tokenizer.json`.
    public init(json: Data) throws(TokenizerError) {
        let root = try JSONReader.parse(json)
        guard case .object = root else { throw TokenizerError("the document is not a JSON object") }

        model = try TokenModel(try root.require("model", in: "the tokenizer"))
        normalizer = try root.member("normalizer").map { json throws(TokenizerError) in try Normalizer(json) }
        preTokenizer = try root.member("pre_tokenizer").map { json throws(TokenizerError) in try PreTokenizer(json) }
        postProcessor = try root.member("post_processor").map { json throws(TokenizerError) in try PostProcessor(json) }
            ?? PostProcessor(pieces: [.sequence(typeID: 0)])

        // Added tokens, as `AddedVocabulary::add_tokens` registers them: an id from the model's
        // vocabulary when the content is in it, else the next id after the vocabulary (the file's
        // "id" field is only checked by the library, not used).
        var raw = AddedTokens(), normalized = AddedTokens()
        var addedIDs: [[UInt8]: Int64] = [:]
        var special: [AddedTokens.Pattern] = [], nonSpecial: [AddedTokens.Pattern] = []
        let vocabularySize = Int64(model.vocabularySize)
        for entry in try root.member("added_tokens")?.arrayValue(of: "added_tokens") ?? [] {
            let content = try entry.require("content", in: "an added token").stringValue(of: "added token content")
            guard !content.isEmpty else { continue }
            let key = Array(content.utf8)
            guard addedIDs[key] == nil else { continue }
            let id: Int64
            if let modelID = model.id(of: key) {
                id = modelID
            } else if let maxID = addedIDs.values.max() {
                id = maxID >= vocabularySize || vocabularySize == 0 ? maxID + 1 : vocabularySize
            } else {
                id = vocabularySize
            }
            addedIDs[key] = id
            let isSpecial = try entry.bool("special", default: false, in: "an added token")
            let pattern = AddedTokens.Pattern(
                scalars: Array(content.unicodeScalars), id: id,
                singleWord: try entry.bool("single_word", default: false, in: "an added token"),
                lstrip: try entry.bool("lstrip", default: false, in: "an added token"),
                rstrip: try entry.bool("rstrip", default: false, in: "an added token"),
                normalized: try entry.bool("normalized", default: !isSpecial, in: "an added token"))
            if isSpecial { special.append(pattern) } else { nonSpecial.append(pattern) }
        }
        // The library searches special tokens first, then the others; a `normalized` token is
        // searched for in its normalized form.
        for var pattern in special + nonSpecial {
            if pattern.normalized {
                if let normalizer { pattern.scalars = normalizer.apply(pattern.scalars) }
                normalized.add(pattern)
            } else {
                raw.add(pattern)
            }
        }
        rawAddedTokens = raw
        normalizedAddedTokens = normalized

        // Padding and truncation settings of the file.
        if let padding = root.member("padding") {
            padID = try padding.int("pad_id", default: 0, in: "padding")
            padTypeID = try padding.int("pad_type_id", default: 0, in: "padding")
        } else {
            let model = self.model
            padID = ["[PAD]", "<pad>"].lazy.compactMap { token in
                addedIDs[Array(token.utf8)] ?? model.id(of: Array(token.utf8))
            }.first ?? 0
            padTypeID = 0
        }
        if let truncation = root.member("truncation") {
            configuredMaxLength = Int(try truncation.int("max_length", default: 0, in: "truncation"))
        } else {
            configuredMaxLength = nil
        }
    }

    /// Loads a tokenizer from a `tokenizer.json` file.
    public init(contentsOf url: URL) throws(TokenizerError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError("cannot read \(url.path): \(error.localizedDescription)")
        }
        try self.init(json: data)
    }

    /// Encodes one text, as `Tokenizer.encode(text, add_special_tokens=...)` does.
    ///
    /// - Parameters:
    ///   - addSpecialTokens: whether the post-processor adds its special tokens ([CLS] ... [SEP],
    ///     <s> ... </s>). Added tokens written in the text are matched either way.
    ///   - maxLength: truncates as `enable_truncation(max_length)` does (longest first, stride 0,
    ///     from the right): the special tokens are kept and count towards the length.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> TokenizerEncoding {
        var content: [Int64] = []
        content.reserveCapacity(text.utf8.count / 2 + 4)
        for segment in rawAddedTokens.split(Array(text.unicodeScalars)) {
            switch segment {
            case .token(let id):
                content.append(id)
            case .text(let rawPiece):
                let piece = normalizer?.apply(Array(rawPiece)) ?? Array(rawPiece)
                for inner in normalizedAddedTokens.split(piece) {
                    switch inner {
                    case .token(let id): content.append(id)
                    case .text(let normalizedPiece): tokenize(Array(normalizedPiece), into: &content)
                    }
                }
            }
        }

        if let maxLength {
            // `TokenizerImpl::post_process`: room is kept for the special tokens. The library
            // subtracts in unsigned arithmetic, so a limit below the number of special tokens
            // wraps around and disables truncation; that is reproduced here.
            let added = addSpecialTokens ? postProcessor.addedTokenCount : 0
            let limit = maxLength - added
            if limit >= 0, content.count > limit {
                content.removeLast(content.count - limit)
            }
        }
        return postProcessor.apply(content, addSpecialTokens: addSpecialTokens)
    }

    /// Pre-tokenizes one normalized piece and runs the model on each word.
    private func tokenize(_ piece: [Unicode.Scalar], into ids: inout [Int64]) {
        guard !piece.isEmpty else { return }
        if let preTokenizer {
            for word in preTokenizer.apply([piece]) where !word.isEmpty {
                model.tokenize(word, into: &ids)
            }
        } else {
            model.tokenize(piece, into: &ids)
        }
    }

    /// The normalized form of `text` (no added-token handling); for tests.
    func normalizeForTesting(_ text: String) -> String {
        var result = String()
        result.unicodeScalars.append(contentsOf: normalizer?.apply(Array(text.unicodeScalars)) ?? Array(text.unicodeScalars))
        return result
    }
}

// MARK: - Character classes

extension HFTokenizer {
    /// The character classes of the Rust crate. Its tables come from different crates built on
    /// different Unicode versions, so each class is the current Swift property cut at the version
    /// of the table the crate uses (`age`), with the few characters whose category changed since
    /// listed explicitly. Checked code point by code point against `tokenizers` 0.23.
    fileprivate enum CharClass {
        /// The Unicode version that assigned `s`, as major * 100 + minor; `Int.max` if unassigned.
        @inline(__always)
        static func age(_ s: Unicode.Scalar) -> Int {
            guard let version = s.properties.age else { return .max }
            return version.major * 100 + version.minor
        }

        /// Rust's `char::is_whitespace` (the White_Space property), also the `\s` of the regex
        /// engines (Oniguruma, `regex`).
        @inline(__always)
        static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
            switch s.value {
            case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
                true
            default:
                false
            }
        }

        /// `unicode_categories::is_other` (Unicode 8.0): Cc, Cf, Co (unassigned code points are
        /// not included). BertNormalizer's `clean_text` drops these (except \t \n \r).
        @inline(__always)
        static func isOther(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0xA0 { return v < 0x20 || (v >= 0x7F && v < 0xA0) }
            switch s.properties.generalCategory {
            case .control, .format, .privateUse: return age(s) <= 800
            default: return false
            }
        }

        /// BertPreTokenizer's punctuation: ASCII punctuation (which includes symbols such as $ + <
        /// = > ^ ` | ~) or `unicode_categories::is_punctuation` (general category P*, Unicode 8.0).
        @inline(__always)
        static func isBertPunctuation(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 {
                return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v)
                    || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v)
            }
            // Punctuation in Unicode 8.0 whose category changed later.
            if v == 0x166D || v == 0x111C9 { return true }
            switch s.properties.generalCategory {
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                 .initialPunctuation, .finalPunctuation, .otherPunctuation:
                return age(s) <= 800
            default:
                return false
            }
        }

        /// `unicode_categories::is_mark_nonspacing` (Mn, Unicode 8.0): what BertNormalizer's
        /// `strip_accents` removes after NFD.
        @inline(__always)
        static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x300 { return false }
            switch v {
            case 0x1734, 0x1171E: return true  // Mn in 8.0, Mc since
            case 0x1885, 0x1886, 0xA9BD, 0x111C9: return false  // Mn only since later versions
            default: break
            }
            return s.properties.generalCategory == .nonspacingMark && age(s) <= 800
        }

        /// `unicode_normalization_alignments::char::is_combining_mark` (M*, Unicode 9.0): what the
        /// StripAccents normalizer removes.
        @inline(__always)
        static func isCombiningMark(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x300 { return false }
            switch v {
            case 0x1CF2, 0x1CF3: return true  // Mc in 9.0, Lo since
            case 0x111C9: return false  // Po in 9.0
            default: break
            }
            switch s.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark: return age(s) <= 900
            default: return false
            }
        }

        /// `\p{L}` of the Oniguruma build in `tokenizers` (Unicode 16.0).
        @inline(__always)
        static func isLetter(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 { return (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) }
            switch s.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                return age(s) <= 1600
            default:
                return false
            }
        }

        /// `\p{N}` of the Oniguruma build in `tokenizers` (Unicode 16.0).
        @inline(__always)
        static func isNumber(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 { return (0x30...0x39).contains(v) }
            switch s.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return age(s) <= 1600
            default: return false
            }
        }

        /// `\w` of Oniguruma and of the `regex` crate (Unicode 16.0): Alphabetic, marks, decimal
        /// numbers, connector punctuation and the joiners.
        @inline(__always)
        static func isWord(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 {
                return (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) || v == 0x5F
            }
            let properties = s.properties
            let word: Bool
            switch properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
                word = true
            default:
                word = properties.isAlphabetic || properties.isJoinControl
            }
            return word && age(s) <= 1600
        }

        /// BertNormalizer's "Chinese character": the CJK ideograph blocks, as the crate lists them
        /// (note 0x2B820...0x2B91F is not among them).
        @inline(__always)
        static func isChinese(_ s: Unicode.Scalar) -> Bool {
            switch s.value {
            case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
                 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
                true
            default:
                false
            }
        }
    }
}

// MARK: - Normalizers

extension HFTokenizer {
    fileprivate indirect enum Normalizer: Sendable {
        /// The decomposition forms. (NFC and NFKC are refused: Foundation's composition on Linux
        /// mishandles supplementary-plane starters, and there is no public composition API.)
        enum Form: Sendable { case nfd, nfkd }

        case bert(cleanText: Bool, chineseChars: Bool, stripAccents: Bool, lowercase: Bool)
        case lowercase
        case unicode(Form)
        case stripAccents
        case strip(left: Bool, right: Bool)
        case prepend([Unicode.Scalar])
        case sequence([Normalizer])

        init(_ json: JSON) throws(TokenizerError) {
            let type = try json.type(of: "normalizer")
            switch type {
            case "BertNormalizer":
                let lowercase = try json.bool("lowercase", default: true, in: type)
                // `strip_accents: null` follows `lowercase`.
                let strip = try json["strip_accents"].flatMap { value throws(TokenizerError) in
                    value.isNull ? nil : try value.boolValue(of: "BertNormalizer.strip_accents")
                } ?? lowercase
                self = .bert(
                    cleanText: try json.bool("clean_text", default: true, in: type),
                    chineseChars: try json.bool("handle_chinese_chars", default: true, in: type),
                    stripAccents: strip, lowercase: lowercase)
            case "Lowercase": self = .lowercase
            case "NFD": self = .unicode(.nfd)
            case "NFKD": self = .unicode(.nfkd)
            case "StripAccents": self = .stripAccents
            case "Strip":
                self = .strip(left: try json.bool("strip_left", default: true, in: type),
                              right: try json.bool("strip_right", default: true, in: type))
            case "Prepend":
                let text = try json.require("prepend", in: type).stringValue(of: "Prepend.prepend")
                self = .prepend(Array(text.unicodeScalars))
            case "Sequence":
                let members = try json.require("normalizers", in: type).arrayValue(of: "Sequence.normalizers")
                var normalizers: [Normalizer] = []
                for member in members { normalizers.append(try Normalizer(member)) }
                self = .sequence(normalizers)
            default:
                throw TokenizerError("unsupported normalizer type '\(type)'")
            }
        }

        func apply(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
            switch self {
            case let .bert(cleanText, chineseChars, stripAccents, lowercase):
                var out: [Unicode.Scalar] = []
                out.reserveCapacity(text.count)
                for var s in text {
                    if cleanText {
                        // Drop NUL, U+FFFD and control characters; any whitespace becomes a space.
                        let v = s.value
                        if v == 0x09 || v == 0x0A || v == 0x0D {
                            s = " "
                        } else if v == 0 || v == 0xFFFD || CharClass.isOther(s) {
                            continue
                        } else if CharClass.isWhitespace(s) {
                            s = " "
                        }
                    }
                    if chineseChars && s.value >= 0x3400 && CharClass.isChinese(s) {
                        out.append(" ")
                        out.append(s)
                        out.append(" ")
                    } else {
                        out.append(s)
                    }
                }
                if stripAccents { out = Self.stripNonspacingMarks(out) }
                if lowercase { out = Self.lowercased(out) }
                return out
            case .lowercase:
                return Self.lowercased(text)
            case .unicode(let form):
                return Self.normalized(text, form)
            case .stripAccents:
                return text.filter { !CharClass.isCombiningMark($0) }
            case let .strip(left, right):
                var lower = text.startIndex, upper = text.endIndex
                if left { while lower < upper && CharClass.isWhitespace(text[lower]) { lower += 1 } }
                if right { while upper > lower && CharClass.isWhitespace(text[upper - 1]) { upper -= 1 } }
                return Array(text[lower..<upper])
            case .prepend(let prefix):
                return text.isEmpty ? text : prefix + text
            case .sequence(let normalizers):
                return normalizers.reduce(text) { $1.apply($0) }
            }
        }

        /// Rust's `char::to_lowercase` per scalar (full mappings, no context: "İ" becomes "i̇",
        /// a final "Σ" becomes "σ").
        static func lowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count)
            for s in text {
                let v = s.value
                if v < 0x80 {
                    out.append((0x41...0x5A).contains(v) ? Unicode.Scalar(UInt8(v + 0x20)) : s)
                } else if s.properties.changesWhenLowercased {
                    out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                } else {
                    out.append(s)
                }
            }
            return out
        }

        /// NFD, then drop the nonspacing marks (BertNormalizer's `strip_accents`).
        static func stripNonspacingMarks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
            guard text.contains(where: { $0.value >= 0xC0 }) else { return text }
            return normalized(text, .nfd).filter { !CharClass.isNonspacingMark($0) }
        }

        /// NFD or NFKD of `text`, as the crate's `unicode-normalization-alignments` (Unicode 9.0
        /// data) computes it: characters assigned after 9.0 are left as they are and treated as
        /// starters (the crate knows neither their decompositions nor their combining classes), so
        /// the text is decomposed in runs between them. Foundation supplies each decomposition;
        /// the canonical ordering is redone here, as Foundation does not reorder the marks of one
        /// decomposition with those that follow ("\u{F73}\u{F73}"). Text below U+00A0 is left as
        /// it is by both forms.
        static func normalized(_ text: [Unicode.Scalar], _ form: Form) -> [Unicode.Scalar] {
            guard text.contains(where: { $0.value >= 0xA0 }) else { return text }
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count + text.count / 4)
            var runStart = 0
            func flush(upTo end: Int) {
                guard runStart < end else { return }
                var string = String()
                string.unicodeScalars.append(contentsOf: text[runStart..<end])
                let result = switch form {
                case .nfd: string.decomposedStringWithCanonicalMapping
                case .nfkd: string.decomposedStringWithCompatibilityMapping
                }
                out.append(contentsOf: result.unicodeScalars)
            }
            for (index, s) in text.enumerated() where s.value >= 0x300 && CharClass.age(s) > 900 {
                flush(upTo: index)
                out.append(s)
                runStart = index + 1
            }
            flush(upTo: text.count)
            reorderCanonically(&out)
            return out
        }

        /// Canonical ordering: each run of non-starters is sorted by combining class, keeping the
        /// order of equal classes.
        static func reorderCanonically(_ text: inout [Unicode.Scalar]) {
            @inline(__always) func combiningClass(_ s: Unicode.Scalar) -> UInt8 {
                s.value < 0x300 ? 0 : CharClass.age(s) > 900 ? 0 : s.properties.canonicalCombiningClass.rawValue
            }
            var index = 0
            while index < text.count {
                guard combiningClass(text[index]) != 0 else { index += 1; continue }
                var end = index + 1
                while end < text.count && combiningClass(text[end]) != 0 { end += 1 }
                // Insertion sort: runs are short, and it is stable.
                if end - index > 1 {
                    for i in (index + 1)..<end {
                        let s = text[i], key = combiningClass(s)
                        var j = i
                        while j > index && combiningClass(text[j - 1]) > key {
                            text[j] = text[j - 1]
                            j -= 1
                        }
                        text[j] = s
                    }
                }
                index = end
            }
        }
    }
}

// MARK: - Pre-tokenizers

extension HFTokenizer {
    /// How a split keeps the characters it splits on (`SplitDelimiterBehavior`).
    fileprivate enum SplitBehavior: Sendable {
        case removed, isolated, mergedWithPrevious, mergedWithNext, contiguous

        init(_ name: String) throws(TokenizerError) {
            switch name.lowercased() {
            case "removed": self = .removed
            case "isolated": self = .isolated
            case "mergedwithprevious", "merged_with_previous": self = .mergedWithPrevious
            case "mergedwithnext", "merged_with_next": self = .mergedWithNext
            case "contiguous": self = .contiguous
            default: throw TokenizerError("unsupported split behavior '\(name)'")
            }
        }
    }

    fileprivate indirect enum PreTokenizer: Sendable {
        case bert
        case whitespace
        case whitespaceSplit
        case punctuation(SplitBehavior)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        case sequence([PreTokenizer])

        init(_ json: JSON) throws(TokenizerError) {
            let type = try json.type(of: "pre_tokenizer")
            switch type {
            case "BertPreTokenizer": self = .bert
            case "Whitespace": self = .whitespace
            case "WhitespaceSplit": self = .whitespaceSplit
            case "Punctuation":
                let behavior = try json["behavior"].map { value throws(TokenizerError) in
                    try SplitBehavior(try value.stringValue(of: "Punctuation.behavior"))
                }
                self = .punctuation(behavior ?? .isolated)
            case "ByteLevel":
                self = .byteLevel(addPrefixSpace: try json.bool("add_prefix_space", default: true, in: type),
                                  useRegex: try json.bool("use_regex", default: true, in: type))
            case "Sequence":
                let members = try json.require("pretokenizers", in: type).arrayValue(of: "Sequence.pretokenizers")
                var preTokenizers: [PreTokenizer] = []
                for member in members { preTokenizers.append(try PreTokenizer(member)) }
                self = .sequence(preTokenizers)
            default:
                throw TokenizerError("unsupported pre_tokenizer type '\(type)'")
            }
        }

        /// Splits each piece into words; empty words are dropped, as the library does.
        func apply(_ pieces: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
            var out: [[Unicode.Scalar]] = []
            switch self {
            case .bert:
                // Split on whitespace (dropped), then isolate each punctuation character.
                for piece in pieces {
                    var word: [Unicode.Scalar] = []
                    for s in piece {
                        if CharClass.isWhitespace(s) {
                            if !word.isEmpty { out.append(word); word.removeAll(keepingCapacity: true) }
                        } else if CharClass.isBertPunctuation(s) {
                            if !word.isEmpty { out.append(word); word.removeAll(keepingCapacity: true) }
                            out.append([s])
                        } else {
                            word.append(s)
                        }
                    }
                    if !word.isEmpty { out.append(word) }
                }
            case .whitespaceSplit:
                for piece in pieces {
                    out.append(contentsOf: Self.split(piece, where: CharClass.isWhitespace, .removed))
                }
            case .whitespace:
                // The regex `\w+|[^\w\s]+`: runs of word characters and runs of other non-spaces.
                for piece in pieces {
                    var start = 0
                    while start < piece.count {
                        if CharClass.isWhitespace(piece[start]) { start += 1; continue }
                        let word = CharClass.isWord(piece[start])
                        var end = start + 1
                        while end < piece.count && !CharClass.isWhitespace(piece[end])
                            && CharClass.isWord(piece[end]) == word {
                            end += 1
                        }
                        out.append(Array(piece[start..<end]))
                        start = end
                    }
                }
            case .punctuation(let behavior):
                for piece in pieces {
                    out.append(contentsOf: Self.split(piece, where: CharClass.isBertPunctuation, behavior))
                }
            case let .byteLevel(addPrefixSpace, useRegex):
                for var piece in pieces where !piece.isEmpty {
                    if addPrefixSpace && piece[0] != " " { piece.insert(" ", at: 0) }
                    if useRegex {
                        for range in ByteLevel.split(piece) { out.append(ByteLevel.map(piece[range])) }
                    } else {
                        out.append(ByteLevel.map(piece[...]))
                    }
                }
            case .sequence(let preTokenizers):
                out = preTokenizers.reduce(pieces) { $1.apply($0) }
            }
            return out
        }

        /// `NormalizedString::split` with a character predicate: every matching character is a
        /// delimiter of its own, kept as `behavior` says.
        static func split(_ piece: [Unicode.Scalar], where isDelimiter: (Unicode.Scalar) -> Bool,
                          _ behavior: SplitBehavior) -> [[Unicode.Scalar]] {
            // (range, is delimiter), covering the piece.
            var parts: [(Range<Int>, Bool)] = []
            var last = 0
            for (i, s) in piece.enumerated() where isDelimiter(s) {
                if last < i { parts.append((last..<i, false)) }
                parts.append((i..<i + 1, true))
                last = i + 1
            }
            if last < piece.count { parts.append((last..<piece.count, false)) }

            var ranges: [Range<Int>] = []
            switch behavior {
            case .removed:
                ranges = parts.filter { !$0.1 }.map(\.0)
            case .isolated:
                ranges = parts.map(\.0)
            case .mergedWithPrevious:
                var previousWasDelimiter = false
                for (range, isDelimiter) in parts {
                    if isDelimiter && !previousWasDelimiter, let previous = ranges.last {
                        ranges[ranges.count - 1] = previous.lowerBound..<range.upperBound
                    } else {
                        ranges.append(range)
                    }
                    previousWasDelimiter = isDelimiter
                }
            case .mergedWithNext:
                var previousWasDelimiter = false
                for (range, isDelimiter) in parts.reversed() {
                    if isDelimiter && !previousWasDelimiter, let next = ranges.last {
                        ranges[ranges.count - 1] = range.lowerBound..<next.upperBound
                    } else {
                        ranges.append(range)
                    }
                    previousWasDelimiter = isDelimiter
                }
                ranges.reverse()
            case .contiguous:
                var previousWasDelimiter = false
                for (range, isDelimiter) in parts {
                    if isDelimiter == previousWasDelimiter, let previous = ranges.last {
                        ranges[ranges.count - 1] = previous.lowerBound..<range.upperBound
                    } else {
                        ranges.append(range)
                    }
                    previousWasDelimiter = isDelimiter
                }
            }
            return ranges.filter { !$0.isEmpty }.map { Array(piece[$0]) }
        }
    }

    /// GPT-2's byte-level pre-tokenization.
    fileprivate enum ByteLevel {
        /// The printable stand-in of each byte (`bytes_to_unicode`): printable Latin-1 bytes stand
        /// for themselves, the others are mapped in order to U+0100 and up.
        static let byteToScalar: [Unicode.Scalar] = {
            var table = [Unicode.Scalar](repeating: " ", count: 256)
            var next: UInt32 = 256
            for byte in 0..<256 {
                if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                    table[byte] = Unicode.Scalar(UInt32(byte))!
                } else {
                    table[byte] = Unicode.Scalar(next)!
                    next += 1
                }
            }
            return table
        }()

        /// The UTF-8 bytes of `text`, each replaced by its stand-in.
        static func map(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(text.count)
            for s in text { HFTokenizer.appendUTF8(s, to: &bytes) }
            let table = byteToScalar
            return bytes.map { table[Int($0)] }
        }

        private enum Class: UInt8 { case letter, number, space, other }

        /// The matches of GPT-2's regex, which cover the whole text:
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        /// (alternatives tried in order at each position, each quantifier greedy).
        static func split(_ text: [Unicode.Scalar]) -> [Range<Int>] {
            let classes: [Class] = text.map { s in
                if CharClass.isWhitespace(s) { return .space }
                if CharClass.isLetter(s) { return .letter }
                if CharClass.isNumber(s) { return .number }
                return .other
            }
            let n = text.count
            var ranges: [Range<Int>] = []
            var i = 0
            while i < n {
                // 's 't 'm 'd 're 've 'll (lowercase only).
                if text[i] == "'" && i + 1 < n {
                    let a = text[i + 1]
                    if a == "s" || a == "t" || a == "m" || a == "d" {
                        ranges.append(i..<i + 2); i += 2; continue
                    }
                    if i + 2 < n {
                        let b = text[i + 2]
                        if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") {
                            ranges.append(i..<i + 3); i += 3; continue
                        }
                    }
                }
                // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
                var first = i
                if text[i] == " " && i + 1 < n && classes[i + 1] != .space { first = i + 1 }
                let kind = classes[first]
                if kind != .space {
                    var end = first + 1
                    while end < n && classes[end] == kind { end += 1 }
                    ranges.append(i..<end); i = end; continue
                }
                // `\s+(?!\S)` leaves the last space of a run to the word after it; `\s+` takes a
                // lone space before a word.
                var end = i + 1
                while end < n && classes[end] == .space { end += 1 }
                if end < n && end - i >= 2 { end -= 1 }
                ranges.append(i..<end); i = end
            }
            return ranges
        }
    }
}

// MARK: - Models

extension HFTokenizer {
    fileprivate enum TokenModel: Sendable {
        case wordPiece(WordPiece)
        case bpe(BPE)

        init(_ json: JSON) throws(TokenizerError) {
            var type = try json["type"].map { value throws(TokenizerError) in try value.stringValue(of: "model.type") }
            if type == nil {  // older files leave the type out
                type = json["merges"] != nil ? "BPE" : json["max_input_chars_per_word"] != nil ? "WordPiece" : nil
            }
            switch type ?? "" {
            case "WordPiece": self = .wordPiece(try WordPiece(json))
            case "BPE": self = .bpe(try BPE(json))
            default: throw TokenizerError("unsupported model type '\(type ?? "(none)")'")
            }
        }

        var vocabularySize: Int {
            switch self {
            case .wordPiece(let model): model.vocabulary.count
            case .bpe(let model): model.vocabulary.count
            }
        }

        func id(of token: [UInt8]) -> Int64? {
            switch self {
            case .wordPiece(let model): model.vocabulary[token].map(Int64.init)
            case .bpe(let model): model.vocabulary[token].map(Int64.init)
            }
        }

        func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int64]) {
            switch self {
            case .wordPiece(let model): model.tokenize(word, into: &ids)
            case .bpe(let model): model.tokenize(word, into: &ids)
            }
        }
    }

    /// Reads a `vocab` object: token (as UTF-8 bytes) to id.
    fileprivate static func vocabulary(_ json: JSON, in context: String) throws(TokenizerError) -> [[UInt8]: Int32] {
        guard case .object(let members) = try json.require("vocab", in: context) else {
            throw TokenizerError("\(context).vocab is not an object")
        }
        var vocabulary: [[UInt8]: Int32] = [:]
        vocabulary.reserveCapacity(members.count)
        for (token, value) in members {
            guard case .number(let number) = value, let id = Int32(exactly: number), id >= 0 else {
                throw TokenizerError("\(context).vocab['\(token)'] is not a valid id")
            }
            vocabulary[Array(token.utf8)] = id
        }
        return vocabulary
    }

    /// WordPiece: greedy longest-match-first within each word; a word that cannot be covered, or
    /// longer than `max_input_chars_per_word` scalars, is the unknown token.
    fileprivate struct WordPiece: Sendable {
        let vocabulary: [[UInt8]: Int32]
        let unknownID: Int32
        let prefix: [UInt8]
        let maxInputChars: Int
        /// The longest vocabulary entry, in scalars: no longer candidate needs looking up.
        let longestEntry: Int

        init(_ json: JSON) throws(TokenizerError) {
            vocabulary = try HFTokenizer.vocabulary(json, in: "WordPiece")
            let unknown = try json["unk_token"].map { value throws(TokenizerError) in try value.stringValue(of: "WordPiece.unk_token") } ?? "[UNK]"
            guard let id = vocabulary[Array(unknown.utf8)] else {
                throw TokenizerError("WordPiece.unk_token '\(unknown)' is not in the vocabulary")
            }
            unknownID = id
            prefix = Array((try json["continuing_subword_prefix"].map { value throws(TokenizerError) in
                try value.stringValue(of: "WordPiece.continuing_subword_prefix")
            } ?? "##").utf8)
            maxInputChars = Int(try json.int("max_input_chars_per_word", default: 100, in: "WordPiece"))
            longestEntry = vocabulary.keys.reduce(0) { longest, key in
                max(longest, key.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) })
            }
        }

        func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int64]) {
            let n = word.count
            guard n <= maxInputChars else { ids.append(Int64(unknownID)); return }
            // UTF-8 bytes of the word and the byte offset of each scalar.
            var bytes: [UInt8] = []
            bytes.reserveCapacity(n)
            var offsets: [Int] = [0]
            offsets.reserveCapacity(n + 1)
            for s in word {
                HFTokenizer.appendUTF8(s, to: &bytes)
                offsets.append(bytes.count)
            }
            var pieces: [Int64] = []
            var key: [UInt8] = []
            var start = 0
            while start < n {
                var end = min(n, start + longestEntry)
                var found: Int32?
                while end > start {
                    key.removeAll(keepingCapacity: true)
                    if start > 0 { key.append(contentsOf: prefix) }
                    key.append(contentsOf: bytes[offsets[start]..<offsets[end]])
                    if let id = vocabulary[key] { found = id; break }
                    end -= 1
                }
                guard let found else { ids.append(Int64(unknownID)); return }
                pieces.append(Int64(found))
                start = end
            }
            ids.append(contentsOf: pieces)
        }
    }

    /// Byte-pair encoding: each word starts as one symbol per scalar, then the pair with the
    /// lowest merge rank (leftmost first) is merged until no pair has a merge.
    fileprivate struct BPE: Sendable {
        struct Merge: Sendable {
            var rank: Int32
            var id: Int32
        }

        let vocabulary: [[UInt8]: Int32]
        /// Ids of the single-scalar entries, for the common case without prefix or suffix.
        let scalarIDs: [UInt32: Int32]
        /// (left id << 32 | right id) to the merge's rank and the merged token's id.
        let merges: [UInt64: Merge]
        let unknownID: Int32?
        let prefix: [UInt8]
        let suffix: [UInt8]
        let fuseUnknown: Bool
        let byteFallbackIDs: [Int32]?
        let ignoreMerges: Bool
        let cache = WordCache(capacity: 10_000)

        init(_ json: JSON) throws(TokenizerError) {
            if let dropout = json["dropout"], !dropout.isNull {
                guard case .number(let p) = dropout, p == 0 else {
                    throw TokenizerError("unsupported BPE dropout \(dropout) (encoding would be random)")
                }
            }
            let vocabulary = try HFTokenizer.vocabulary(json, in: "BPE")
            self.vocabulary = vocabulary
            func optionalString(_ key: String) throws(TokenizerError) -> String? {
                guard let value = json[key], !value.isNull else { return nil }
                return try value.stringValue(of: "BPE.\(key)")
            }
            // An unknown token missing from the vocabulary makes the library fail on unknown
            // characters; here they are dropped, as without an unknown token.
            unknownID = try optionalString("unk_token").flatMap { vocabulary[Array($0.utf8)] }
            prefix = Array(try optionalString("continuing_subword_prefix")?.utf8 ?? "".utf8)
            suffix = Array(try optionalString("end_of_word_suffix")?.utf8 ?? "".utf8)
            fuseUnknown = try json.bool("fuse_unk", default: false, in: "BPE")
            ignoreMerges = try json.bool("ignore_merges", default: false, in: "BPE")
            if try json.bool("byte_fallback", default: false, in: "BPE") {
                // "<0x41>": Rust's `format!("<{:#04X}>", byte)`.
                byteFallbackIDs = (0..<256).map { byte in
                    let hex = String(byte, radix: 16, uppercase: true)
                    return vocabulary[Array("<0x\(hex.count == 1 ? "0" + hex : hex)>".utf8)] ?? -1
                }
            } else {
                byteFallbackIDs = nil
            }
            var scalarIDs: [UInt32: Int32] = [:]
            for (key, id) in vocabulary {
                let scalars = String(decoding: key, as: UTF8.self).unicodeScalars
                if scalars.count == 1, let s = scalars.first { scalarIDs[s.value] = id }
            }
            self.scalarIDs = scalarIDs

            // Merges: "a b" strings (split on ' ', exactly two parts; "#version" lines skipped)
            // or [a, b] pairs. A later duplicate replaces an earlier one, as in the library.
            let list = try json.require("merges", in: "BPE").arrayValue(of: "BPE.merges")
            var merges: [UInt64: Merge] = [:]
            merges.reserveCapacity(list.count)
            var rank: Int32 = 0
            for entry in list {
                let left: String, right: String
                switch entry {
                case .string(let line):
                    if line.hasPrefix("#version") { continue }
                    // Split the bytes: a space before a combining mark is not a `Character` of its own.
                    let parts = line.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw TokenizerError("BPE merge \(rank + 1) '\(line)' is not two tokens separated by a space") }
                    left = String(decoding: parts[0], as: UTF8.self)
                    right = String(decoding: parts[1], as: UTF8.self)
                case .array(let pair):
                    guard pair.count == 2, case .string(let a) = pair[0], case .string(let b) = pair[1] else {
                        throw TokenizerError("BPE merge \(rank + 1) is not a pair of strings")
                    }
                    left = a
                    right = b
                default:
                    throw TokenizerError("BPE merge \(rank + 1) is neither a string nor a pair")
                }
                let leftBytes = Array(left.utf8), rightBytes = Array(right.utf8)
                guard let leftID = vocabulary[leftBytes] else { throw TokenizerError("BPE merge token '\(left)' is not in the vocabulary") }
                guard let rightID = vocabulary[rightBytes] else { throw TokenizerError("BPE merge token '\(right)' is not in the vocabulary") }
                guard rightBytes.count >= prefix.count else { throw TokenizerError("BPE merge token '\(right)' is shorter than the subword prefix") }
                let merged = leftBytes + rightBytes[prefix.count...]
                guard let mergedID = vocabulary[merged] else {
                    throw TokenizerError("BPE merged token '\(String(decoding: merged, as: UTF8.self))' is not in the vocabulary")
                }
                merges[Self.pair(leftID, rightID)] = Merge(rank: rank, id: mergedID)
                rank += 1
            }
            self.merges = merges
        }

        @inline(__always)
        static func pair(_ left: Int32, _ right: Int32) -> UInt64 {
            UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        }

        func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int64]) {
            guard !word.isEmpty else { return }
            var key: [UInt8] = []
            key.reserveCapacity(word.count)
            for s in word { HFTokenizer.appendUTF8(s, to: &key) }
            if ignoreMerges, let id = vocabulary[key] { ids.append(Int64(id)); return }
            if let cached = cache[key] {
                ids.append(contentsOf: cached.lazy.map(Int64.init))
                return
            }
            let symbols = merge(initialSymbols(word))
            ids.append(contentsOf: symbols.lazy.map(Int64.init))
            cache[key] = symbols
        }

        /// One symbol per scalar (with the subword prefix after the first and the suffix on the
        /// last); unknown scalars become byte tokens, the unknown token, or nothing.
        private func initialSymbols(_ word: [Unicode.Scalar]) -> [Int32] {
            var symbols: [Int32] = []
            symbols.reserveCapacity(word.count)
            var pendingUnknown = false
            var text: [UInt8] = []
            for (index, s) in word.enumerated() {
                let isFirst = index == 0, isLast = index == word.count - 1
                let id: Int32?
                text.removeAll(keepingCapacity: true)
                if (isFirst || prefix.isEmpty) && (!isLast || suffix.isEmpty) {
                    id = scalarIDs[s.value]
                } else {
                    if !isFirst { text.append(contentsOf: prefix) }
                    HFTokenizer.appendUTF8(s, to: &text)
                    if isLast { text.append(contentsOf: suffix) }
                    id = vocabulary[text]
                }
                if let id {
                    if pendingUnknown, let unknownID { symbols.append(unknownID); pendingUnknown = false }
                    symbols.append(id)
                    continue
                }
                if let byteFallbackIDs {
                    if text.isEmpty { HFTokenizer.appendUTF8(s, to: &text) }
                    let bytes = text.map { byteFallbackIDs[Int($0)] }
                    if !bytes.contains(-1) {
                        // As in the library, a pending unknown token is not flushed first.
                        symbols.append(contentsOf: bytes)
                        continue
                    }
                }
                if let unknownID {
                    if pendingUnknown && !fuseUnknown { symbols.append(unknownID) }
                    pendingUnknown = true
                }
            }
            if pendingUnknown, let unknownID { symbols.append(unknownID) }
            return symbols
        }

        /// `Word::merge_all`: a priority queue of candidate merges ordered by (rank, position);
        /// stale entries are skipped when popped.
        private func merge(_ initial: [Int32]) -> [Int32] {
            let n = initial.count
            guard n > 1 else { return initial }
            var symbols = initial
            var previous = Array(-1..<(n - 1))
            var next = Array(1...n)
            next[n - 1] = -1
            var removed = [Bool](repeating: false, count: n)
            var queue = MergeQueue()
            for i in 0..<(n - 1) {
                if let merge = merges[Self.pair(symbols[i], symbols[i + 1])] {
                    queue.push(rank: merge.rank, position: i, id: merge.id)
                }
            }
            while let top = queue.pop() {
                let position = top.position
                if removed[position] { continue }
                let right = next[position]
                if right < 0 { continue }
                guard let merge = merges[Self.pair(symbols[position], symbols[right])], merge.id == top.id else { continue }
                symbols[position] = top.id
                removed[right] = true
                let afterRight = next[right]
                next[position] = afterRight
                if afterRight >= 0 { previous[afterRight] = position }
                let left = previous[position]
                if left >= 0, let merge = merges[Self.pair(symbols[left], symbols[position])] {
                    queue.push(rank: merge.rank, position: left, id: merge.id)
                }
                if afterRight >= 0, let merge = merges[Self.pair(symbols[position], symbols[afterRight])] {
                    queue.push(rank: merge.rank, position: position, id: merge.id)
                }
            }
            var result: [Int32] = []
            result.reserveCapacity(n)
            for i in 0..<n where !removed[i] { result.append(symbols[i]) }
            return result
        }
    }

    /// A binary min-heap of candidate merges, ordered by rank then position.
    fileprivate struct MergeQueue {
        struct Entry {
            var rank: Int32
            var position: Int
            var id: Int32

            @inline(__always)
            static func < (a: Entry, b: Entry) -> Bool {
                a.rank != b.rank ? a.rank < b.rank : a.position < b.position
            }
        }

        private var heap: [Entry] = []

        mutating func push(rank: Int32, position: Int, id: Int32) {
            heap.append(Entry(rank: rank, position: position, id: id))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child] < heap[parent] else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> Entry? {
            guard let top = heap.first else { return nil }
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var parent = 0
                while true {
                    let left = 2 * parent + 1, right = left + 1
                    var smallest = parent
                    if left < heap.count && heap[left] < heap[smallest] { smallest = left }
                    if right < heap.count && heap[right] < heap[smallest] { smallest = right }
                    if smallest == parent { break }
                    heap.swapAt(parent, smallest)
                    parent = smallest
                }
            }
            return top
        }
    }

    /// The BPE result of recently seen words. Like the library's cache it stops growing when
    /// full; words are short, so a hit saves the merge loop.
    fileprivate final class WordCache: @unchecked Sendable {
        // @unchecked: `entries` is only touched with `lock` held.
        private let lock = NSLock()
        private var entries: [[UInt8]: [Int32]] = [:]
        private let capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
        }

        subscript(word: [UInt8]) -> [Int32]? {
            get {
                lock.lock()
                defer { lock.unlock() }
                return entries[word]
            }
            set {
                guard word.count <= 256, let newValue else { return }
                lock.lock()
                defer { lock.unlock() }
                if entries.count < capacity { entries[word] = newValue }
            }
        }
    }
}

// MARK: - Added tokens

extension HFTokenizer {
    /// The added tokens searched for in one pass (raw text, or normalized pieces), as the
    /// library's Aho-Corasick automaton does: leftmost match first, the longest one there.
    fileprivate struct AddedTokens: Sendable {
        struct Pattern: Sendable {
            var scalars: [Unicode.Scalar]
            var id: Int64
            var singleWord: Bool
            var lstrip: Bool
            var rstrip: Bool
            var normalized: Bool
        }

        enum Segment {
            case token(Int64)
            case text(ArraySlice<Unicode.Scalar>)
        }

        /// Patterns by first scalar, longest first (the first added first among equals).
        private var byFirstScalar: [UInt32: [Pattern]] = [:]

        mutating func add(_ pattern: Pattern) {
            guard let first = pattern.scalars.first else { return }
            var bucket = byFirstScalar[first.value] ?? []
            guard !bucket.contains(where: { $0.scalars == pattern.scalars }) else { return }
            let index = bucket.firstIndex { $0.scalars.count < pattern.scalars.count } ?? bucket.endIndex
            bucket.insert(pattern, at: index)
            byFirstScalar[first.value] = bucket
        }

        /// `AddedVocabulary::find_matches` + `split_with_indices`: the text cut into added
        /// tokens and the (non-empty) text between them.
        func split(_ text: [Unicode.Scalar]) -> [Segment] {
            guard !text.isEmpty else { return [] }
            guard !byFirstScalar.isEmpty else { return [.text(text[...])] }
            var segments: [Segment] = []
            let n = text.count
            var emitted = 0  // end of what has been cut so far
            var position = 0
            while position < n {
                guard let bucket = byFirstScalar[text[position].value],
                      let pattern = bucket.first(where: { Self.matches($0.scalars, text, at: position) })
                else {
                    position += 1
                    continue
                }
                let matchEnd = position + pattern.scalars.count
                defer { position = matchEnd }
                var start = position, stop = matchEnd
                if pattern.singleWord {
                    // Only a whole word: no word character right before or after.
                    let before = start == 0 || !CharClass.isWord(text[start - 1])
                    let after = stop == n || !CharClass.isWord(text[stop])
                    guard before && after else { continue }
                }
                if pattern.lstrip {
                    var newStart = start
                    while newStart > 0 && CharClass.isWhitespace(text[newStart - 1]) { newStart -= 1 }
                    start = max(newStart, emitted)
                }
                if pattern.rstrip {
                    while stop < n && CharClass.isWhitespace(text[stop]) { stop += 1 }
                }
                if emitted < start { segments.append(.text(text[emitted..<start])) }
                segments.append(.token(pattern.id))
                emitted = stop
            }
            if emitted < n { segments.append(.text(text[emitted..<n])) }
            return segments
        }

        @inline(__always)
        private static func matches(_ pattern: [Unicode.Scalar], _ text: [Unicode.Scalar], at position: Int) -> Bool {
            guard position + pattern.count <= text.count else { return false }
            for (offset, s) in pattern.enumerated() where text[position + offset] != s { return false }
            return true
        }
    }
}

// MARK: - Post-processors

extension HFTokenizer {
    /// The single-sequence template of the post-processor: special tokens around the sequence.
    fileprivate struct PostProcessor: Sendable {
        enum Piece: Sendable {
            case special(ids: [Int64], typeID: Int64)
            case sequence(typeID: Int64)
        }

        var pieces: [Piece]

        /// How many ids the template adds (`PostProcessor::added_tokens(false)`).
        var addedTokenCount: Int {
            pieces.reduce(0) { count, piece in
                if case .special(let ids, _) = piece { count + ids.count } else { count }
            }
        }

        init(pieces: [Piece]) {
            self.pieces = pieces
        }

        init(_ json: JSON) throws(TokenizerError) {
            let type = try json.type(of: "post_processor")
            switch type {
            case "BertProcessing", "RobertaProcessing":
                // `cls` and `sep` are [token, id] pairs; the sequence keeps type id 0.
                func id(_ key: String) throws(TokenizerError) -> Int64 {
                    let pair = try json.require(key, in: type).arrayValue(of: "\(type).\(key)")
                    guard pair.count == 2, case .number(let number) = pair[1], let id = Int64(exactly: number) else {
                        throw TokenizerError("\(type).\(key) is not a [token, id] pair")
                    }
                    return id
                }
                pieces = [.special(ids: [try id("cls")], typeID: 0), .sequence(typeID: 0), .special(ids: [try id("sep")], typeID: 0)]
            case "TemplateProcessing":
                let specialTokens = json["special_tokens"]
                let template = try json.require("single", in: type).arrayValue(of: "TemplateProcessing.single")
                pieces = []
                for item in template {
                    if let special = item["SpecialToken"] {
                        let name = try special.require("id", in: "SpecialToken").stringValue(of: "SpecialToken.id")
                        guard let token = specialTokens?[name] else {
                            throw TokenizerError("TemplateProcessing: special token '\(name)' is missing from special_tokens")
                        }
                        var ids: [Int64] = []
                        for value in try token.require("ids", in: "special token '\(name)'").arrayValue(of: "special token ids") {
                            guard case .number(let number) = value, let id = Int64(exactly: number) else {
                                throw TokenizerError("TemplateProcessing: special token '\(name)' has an invalid id")
                            }
                            ids.append(id)
                        }
                        pieces.append(.special(ids: ids, typeID: try special.int("type_id", default: 0, in: "SpecialToken")))
                    } else if let sequence = item["Sequence"] {
                        let name = try sequence.require("id", in: "Sequence").stringValue(of: "Sequence.id")
                        guard name == "A" else {
                            throw TokenizerError("TemplateProcessing: the single template uses sequence '\(name)'")
                        }
                        pieces.append(.sequence(typeID: try sequence.int("type_id", default: 0, in: "Sequence")))
                    } else {
                        throw TokenizerError("TemplateProcessing: unsupported template piece \(item)")
                    }
                }
            case "ByteLevel":
                pieces = [.sequence(typeID: 0)]  // only adjusts offsets
            case "Sequence":
                let members = try json.require("processors", in: type).arrayValue(of: "Sequence.processors")
                var adding: [PostProcessor] = []
                for member in members {
                    if try member.type(of: "post_processor") != "ByteLevel" { adding.append(try PostProcessor(member)) }
                }
                guard adding.count <= 1 else {
                    throw TokenizerError("unsupported post_processor Sequence with more than one processor that adds tokens")
                }
                pieces = adding.first?.pieces ?? [.sequence(typeID: 0)]
            default:
                throw TokenizerError("unsupported post_processor type '\(type)'")
            }
        }

        func apply(_ content: [Int64], addSpecialTokens: Bool) -> TokenizerEncoding {
            var ids: [Int64] = [], typeIDs: [Int64] = []
            ids.reserveCapacity(content.count + addedTokenCount)
            typeIDs.reserveCapacity(content.count + addedTokenCount)
            for piece in pieces {
                switch piece {
                case let .special(specialIDs, typeID):
                    guard addSpecialTokens else { continue }
                    ids.append(contentsOf: specialIDs)
                    typeIDs.append(contentsOf: repeatElement(typeID, count: specialIDs.count))
                case .sequence(let typeID):
                    ids.append(contentsOf: content)
                    typeIDs.append(contentsOf: repeatElement(typeID, count: content.count))
                }
            }
            return TokenizerEncoding(ids: ids, typeIDs: typeIDs, attentionMask: [Int64](repeating: 1, count: ids.count))
        }
    }
}

// MARK: - UTF-8

extension HFTokenizer {
    /// Appends the UTF-8 encoding of `s`.
    @inline(__always)
    fileprivate static func appendUTF8(_ s: Unicode.Scalar, to bytes: inout [UInt8]) {
        let v = s.value
        switch v {
        case ..<0x80:
            bytes.append(UInt8(v))
        case ..<0x800:
            bytes.append(UInt8(0xC0 | v >> 6))
            bytes.append(UInt8(0x80 | v & 0x3F))
        case ..<0x10000:
            bytes.append(UInt8(0xE0 | v >> 12))
            bytes.append(UInt8(0x80 | v >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | v & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | v >> 18))
            bytes.append(UInt8(0x80 | v >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | v >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | v & 0x3F))
        }
    }
}

// MARK: - JSON

extension HFTokenizer {
    /// A parsed JSON value. Objects keep their members in order with their exact keys (a Swift
    /// dictionary keyed by `String` would merge canonically equivalent vocabulary entries).
    fileprivate indirect enum JSON: CustomStringConvertible {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSON])
        case object([(key: String, value: JSON)])

        /// The member `key` of an object (compared by bytes), or nil.
        subscript(key: String) -> JSON? {
            guard case .object(let members) = self else { return nil }
            return members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
        }

        /// The member `key` of an object, or nil when it is absent or null.
        func member(_ key: String) -> JSON? {
            guard let value = self[key], !value.isNull else { return nil }
            return value
        }

        var isNull: Bool {
            if case .null = self { true } else { false }
        }

        var description: String {
            switch self {
            case .null: "null"
            case .bool(let value): "\(value)"
            case .number(let value): "\(value)"
            case .string(let value): "'\(value)'"
            case .array: "an array"
            case .object: "an object"
            }
        }

        func require(_ key: String, in context: String) throws(TokenizerError) -> JSON {
            guard let value = self[key] else { throw TokenizerError("\(context) has no '\(key)'") }
            return value
        }

        /// The `type` member of a component.
        func type(of component: String) throws(TokenizerError) -> String {
            try require("type", in: component).stringValue(of: "\(component).type")
        }

        func stringValue(of what: String) throws(TokenizerError) -> String {
            guard case .string(let value) = self else { throw TokenizerError("\(what) is not a string") }
            return value
        }

        func boolValue(of what: String) throws(TokenizerError) -> Bool {
            guard case .bool(let value) = self else { throw TokenizerError("\(what) is not a boolean") }
            return value
        }

        func arrayValue(of what: String) throws(TokenizerError) -> [JSON] {
            guard case .array(let value) = self else { throw TokenizerError("\(what) is not an array") }
            return value
        }

        /// A boolean member; `fallback` when absent or null.
        func bool(_ key: String, default fallback: Bool, in context: String) throws(TokenizerError) -> Bool {
            guard let value = self[key], !value.isNull else { return fallback }
            return try value.boolValue(of: "\(context).\(key)")
        }

        /// An integer member; `fallback` when absent or null.
        func int(_ key: String, default fallback: Int64, in context: String) throws(TokenizerError) -> Int64 {
            guard let value = self[key], !value.isNull else { return fallback }
            guard case .number(let number) = value, let integer = Int64(exactly: number) else {
                throw TokenizerError("\(context).\(key) is not an integer")
            }
            return integer
        }
    }

    /// A strict, minimal JSON parser (RFC 8259) over UTF-8 bytes.
    fileprivate struct JSONReader {
        private let bytes: [UInt8]
        private var index = 0

        static func parse(_ data: Data) throws(TokenizerError) -> JSON {
            // Decoding replaces invalid UTF-8 with U+FFFD, so every string below is valid.
            var reader = JSONReader(bytes: Array(String(decoding: data, as: UTF8.self).utf8))
            reader.skipWhitespace()
            let value = try reader.value(depth: 0)
            reader.skipWhitespace()
            guard reader.index == reader.bytes.count else { throw reader.error("trailing characters") }
            return value
        }

        private init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        private func error(_ message: String) -> TokenizerError {
            TokenizerError("invalid JSON at byte \(index): \(message)")
        }

        private mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        private mutating func expect(_ literal: String, _ value: JSON) throws(TokenizerError) -> JSON {
            let literalBytes = Array(literal.utf8)
            guard index + literalBytes.count <= bytes.count,
                  bytes[index..<index + literalBytes.count].elementsEqual(literalBytes)
            else { throw error("unexpected characters") }
            index += literalBytes.count
            return value
        }

        private mutating func value(depth: Int) throws(TokenizerError) -> JSON {
            guard depth < 512 else { throw error("nested too deeply") }
            guard index < bytes.count else { throw error("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(key: String, value: JSON)] = []
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                    let key = try string()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    index += 1
                    skipWhitespace()
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unexpected end") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                    throw error("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [JSON] = []
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                while true {
                    skipWhitespace()
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unexpected end") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                    throw error("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                return try expect("true", .bool(true))
            case UInt8(ascii: "f"):
                return try expect("false", .bool(false))
            case UInt8(ascii: "n"):
                return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                while index < bytes.count, "+-.eE0123456789".utf8.contains(bytes[index]) { index += 1 }
                guard let number = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
                    throw error("invalid number")
                }
                return .number(number)
            default:
                throw error("unexpected character")
            }
        }

        /// A string literal; `index` is at its opening quote.
        private mutating func string() throws(TokenizerError) -> String {
            index += 1
            let start = index
            // Fast path: no escapes.
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
                guard bytes[index] >= 0x20 else { throw error("control character in a string") }
                index += 1
            }
            guard index < bytes.count else { throw error("unterminated string") }
            if bytes[index] == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: bytes[start..<index - 1], as: UTF8.self)
            }
            var buffer = Array(bytes[start..<index])
            while true {
                guard index < bytes.count else { throw error("unterminated string") }
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: buffer, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw error("unterminated string") }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escape)
                    case UInt8(ascii: "b"): buffer.append(0x08)
                    case UInt8(ascii: "f"): buffer.append(0x0C)
                    case UInt8(ascii: "n"): buffer.append(0x0A)
                    case UInt8(ascii: "r"): buffer.append(0x0D)
                    case UInt8(ascii: "t"): buffer.append(0x09)
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800..<0xDC00).contains(code) {
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                                throw error("lone surrogate escape")
                            }
                            index += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                            code = 0x10000 + (code - 0xD800) << 10 + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw error("lone surrogate escape") }
                        HFTokenizer.appendUTF8(scalar, to: &buffer)
                    default:
                        throw error("invalid escape")
                    }
                default:
                    guard byte >= 0x20 else { throw error("control character in a string") }
                    buffer.append(byte)
                }
            }
        }

        private mutating func hex4() throws(TokenizerError) -> UInt32 {
            guard index + 4 <= bytes.count,
                  let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
            else { throw error("invalid \\u escape") }
            index += 4
            return code
        }
    }
}

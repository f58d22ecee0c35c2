import Foundation
import FulcrumSchema

/// Logic that runs in the frontend instead of the compute pool: turning a request into model
/// inputs (a tokenizer, a feature lookup) or model outputs into an answer (pooling, ranking,
/// labels). A processor is configured in the model repository like a model — its own folder with
/// a `config.pbtxt` whose platform names its kind (`fulcrum_pooling`, ...), its inputs and
/// outputs, `parameters`, and its files in the version folder — and is called by pipeline steps,
/// or directly like any model.
///
/// Built-in kinds are in `ProcessorKind.builtIn`; a custom frontend registers its own kinds with
/// `FrontendConfiguration.processors` before `Frontend.run`.
public protocol Processor: Sendable {
    /// Computes the outputs from the inputs. `inputs` holds the request's tensors by name, already
    /// checked against the processor's configuration (names, datatypes, shapes, batch size);
    /// return every output the configuration declares (the frontend picks the requested ones).
    /// Throw `ProcessorError` to answer with a status; anything else is INTERNAL.
    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor]
}

/// What a processor knows about the request it is running for.
public struct ProcessorContext: Sendable {
    /// The processor's name in the repository.
    public var model: String
    /// The request's id (may be empty).
    public var requestID: String
    /// When the client stops waiting; nil when it set no deadline.
    public var deadline: ContinuousClock.Instant?
    /// Whether the first dimension of every tensor is the batch (`max_batch_size > 0`).
    public var batching: Bool

    public init(model: String, requestID: String = "", deadline: ContinuousClock.Instant? = nil, batching: Bool) {
        self.model = model
        self.requestID = requestID
        self.deadline = deadline
        self.batching = batching
    }
}

/// A failure a processor reports on purpose, answered with the matching status.
public struct ProcessorError: Error, Sendable {
    public enum Kind: Sendable {
        /// The request's data cannot be processed (INVALID_ARGUMENT, HTTP 400).
        case invalidInput
        /// Something the processor depends on is down or too slow (UNAVAILABLE, HTTP 503).
        case unavailable
        /// The processor's own fault (INTERNAL, HTTP 500).
        case internalError
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func invalidInput(_ message: String) -> Self { Self(.invalidInput, message) }
    public static func unavailable(_ message: String) -> Self { Self(.unavailable, message) }
}

/// A processor's configuration as the repository gives it, for a `ProcessorKind` to build from.
public struct ProcessorSetup: Sendable {
    /// The processor's config.pbtxt (name filled in from the folder).
    public var configuration: ModelConfiguration
    /// Its version folder (`<repository>/<name>/<version>`), where its files are; it may not exist.
    public var folder: String
    /// Its config.pbtxt, for error messages.
    public var file: String

    public init(configuration: ModelConfiguration, folder: String, file: String) {
        self.configuration = configuration
        self.folder = folder
        self.file = file
    }

    /// A configuration error naming the file.
    public func error(_ message: String) -> ProcessorError {
        ProcessorError(.internalError, "\(file): \(message)")
    }

    /// The string parameter `key`, or `defaultValue`.
    public func parameter(_ key: String, default defaultValue: String? = nil) -> String? {
        configuration.parameters[key] ?? defaultValue
    }

    /// The integer parameter `key` (refused when present but not an integer in `range`).
    public func integer(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ProcessorError) -> Int {
        guard let text = configuration.parameters[key] else { return defaultValue }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw error("parameter '\(key)': '\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// The boolean parameter `key` (true/false).
    public func flag(_ key: String, default defaultValue: Bool) throws(ProcessorError) -> Bool {
        guard let text = configuration.parameters[key] else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw error("parameter '\(key)': '\(text)' is not true or false")
        }
    }

    /// One of `choices` for the parameter `key`.
    public func choice(_ key: String, default defaultValue: String, in choices: [String]) throws(ProcessorError) -> String {
        let value = configuration.parameters[key] ?? defaultValue
        guard choices.contains(value) else {
            throw error("parameter '\(key)': '\(value)' is not one of \(choices.joined(separator: ", "))")
        }
        return value
    }

    /// The path of `name` in the version folder, refused when it is not a plain file name or
    /// the file does not exist.
    public func file(named name: String) throws(ProcessorError) -> String {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw error("'\(name)' must be a file name in the version folder, not a path")
        }
        let path = (folder as NSString).appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: path) else { throw error("\(path) does not exist") }
        return path
    }

    /// The declared input or output at `index`, refused when there is none.
    public func tensor(_ role: KeyPath<ModelConfiguration, [ModelConfiguration.TensorConfiguration]>, _ index: Int, _ what: String) throws(ProcessorError) -> ModelConfiguration.TensorConfiguration {
        let tensors = configuration[keyPath: role]
        guard tensors.indices.contains(index) else { throw error("needs \(what)") }
        return tensors[index]
    }
}

/// A kind of processor: the platform name config.pbtxt uses for it and how to build one.
public struct ProcessorKind: Sendable {
    /// The `platform` in config.pbtxt, e.g. `fulcrum_pooling`; must start with `fulcrum_`.
    public var platform: String
    /// Builds a processor from its configuration; throw `ProcessorError` for a bad one.
    public var make: @Sendable (ProcessorSetup) throws -> any Processor

    public init(platform: String, make: @escaping @Sendable (ProcessorSetup) throws -> any Processor) {
        self.platform = platform
        self.make = make
    }

    /// The processors every frontend has.
    public static let builtIn: [ProcessorKind] = [
        TokenizerProcessor.kind, PoolingProcessor.kind, ClassifyProcessor.kind, RankProcessor.kind, FeatureLookupProcessor.kind,
    ]
}

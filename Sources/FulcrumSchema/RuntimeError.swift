/// An error from the runtime: loading configuration, models and tensors, or running a model.
///
/// The `code` is extensible (new codes can be added without breaking callers); the `message`
/// is written for the person who has to fix the problem and names the file, line, field, node or
/// operator involved. Services map codes to gRPC status codes at their edge, never here.
public struct RuntimeError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure. Compare with the static members; new codes may be added later.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// A model configuration (config.pbtxt) is malformed or inconsistent.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// A model file is malformed, truncated, or inconsistent with its configuration.
        public static let invalidModel = Code("invalidModel")
        /// A model uses an operator (or operator version) that no backend implements.
        public static let unsupportedOperator = Code("unsupportedOperator")
        /// A request's tensors do not match what the model expects.
        public static let invalidInput = Code("invalidInput")
        /// A model, version or file does not exist.
        public static let notFound = Code("notFound")
        /// A bug or an unexpected condition inside the runtime.
        public static let internalError = Code("internalError")
        /// The accelerator failed: it was lost (driver reset, removed card) or refused work. The
        /// worker stops taking requests for the device's models until it is restarted.
        public static let deviceFailure = Code("deviceFailure")

        /// The code's name, e.g. `invalidModel`.
        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// A message a user can act on.
    public var message: String

    /// Creates an error with a code and an actionable message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}

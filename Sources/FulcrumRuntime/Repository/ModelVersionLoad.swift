import FulcrumSchema

/// The outcome of loading one version of a model: the model, or why it could not load.
public struct ModelVersionLoad: Sendable {
    /// The version number (the version folder's name).
    public var version: Int64
    /// The loaded model, or the error that stopped this version (other versions may still load).
    public var result: Result<Model, RuntimeError>

    /// Creates a load outcome.
    public init(version: Int64, result: Result<Model, RuntimeError>) {
        self.version = version
        self.result = result
    }
}

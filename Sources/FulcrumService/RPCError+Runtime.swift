import FulcrumSchema
import GRPCCore

extension RPCError {
    /// The status a runtime error maps to at the service edge: invalid input is the client's
    /// fault (INVALID_ARGUMENT), an unknown model is NOT_FOUND, a model that cannot load is
    /// UNAVAILABLE, so is a failed accelerator (the worker stops taking work; another may), anything
    /// else INTERNAL.
    public init(_ error: FulcrumSchema.RuntimeError) {
        let code: RPCError.Code =
            switch error.code {
            case .invalidInput: .invalidArgument
            case .notFound: .notFound
            case .invalidModel, .invalidConfiguration, .unsupportedOperator, .deviceFailure: .unavailable
            default: .internalError
            }
        self.init(code: code, message: error.message)
    }
}

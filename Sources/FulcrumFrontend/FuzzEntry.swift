import FulcrumProtocol
import FulcrumSchema

/// What the fuzz harness (`Sources/fulcrum-fuzz`) drives in this library: the HTTP/REST decoder
/// a client's body reaches, and the checks a pipeline's graph passes at load. Package-visible only.
package enum FrontendFuzzing {
    /// `InferJSON.decodeRequest` on `body`; the decoded request, or nil when it was refused.
    package static func restRequest(_ body: [UInt8], headerLength: Int?) -> Inference_ModelInferRequest? {
        try? InferJSON.decodeRequest(body, headerLength: headerLength, model: "m", version: "").request
    }

    /// The graph checks of a pipeline configuration (every model name taken as present).
    package static func pipeline(_ configuration: ModelConfiguration) {
        guard configuration.isPipeline else { return }
        _ = try? Pipeline(configuration: configuration, version: "1", file: "fuzz/config.pbtxt") { _ in true }
    }
}

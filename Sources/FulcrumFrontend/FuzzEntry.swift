import FulcrumProtocol

/// What the fuzz harness (`Sources/fulcrum-fuzz`) drives in this library: the HTTP/REST decoder
/// a client's body reaches. Package-visible only.
package enum FrontendFuzzing {
    /// `InferJSON.decodeRequest` on `body`; the decoded request, or nil when it was refused.
    package static func restRequest(_ body: [UInt8], headerLength: Int?) -> Inference_ModelInferRequest? {
        try? InferJSON.decodeRequest(body, headerLength: headerLength, model: "m", version: "").request
    }
}

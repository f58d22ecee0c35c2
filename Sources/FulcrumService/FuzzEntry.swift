import FulcrumProtocol
import NIOCore

/// What the fuzz harness (`Sources/fulcrum-fuzz`) drives in this library: the gRPC edge's
/// decoding of a ModelInfer message. Package-visible only.
package enum ServiceFuzzing {
    /// `EdgeConnection.decodeRequest` on a body (5-byte gRPC prefix and message).
    package static func edgeRequest(_ bytes: [UInt8], maxMessageBytes: Int) -> Inference_ModelInferRequest? {
        try? EdgeConnection.decodeRequest(ByteBuffer(bytes: bytes), maxMessageBytes: maxMessageBytes).get()
    }
}

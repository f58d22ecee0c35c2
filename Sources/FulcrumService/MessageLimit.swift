import FulcrumProtocol
import GRPCCore

/// The configurable limit on one inference request (`--max-message-bytes`, default 64 MiB).
///
/// grpc-swift's HTTP/2 transport answers a message over its own limit by resetting the stream
/// (clients see CANCELLED), not with a status. So the transport is given a larger limit (the
/// configured one plus the larger of itself and 64 MiB) and requests are measured here, where an
/// oversized one gets RESOURCE_EXHAUSTED saying what the limit is. Only messages beyond the
/// transport's limit are still cut off by a stream reset.
public struct MessageLimit: Sendable {
    /// The limit the operator configured.
    public var bytes: Int

    public init(bytes: Int) {
        self.bytes = bytes
    }

    /// The limit to give the transport.
    public var transportBytes: Int {
        let margin = max(bytes, 64 * 1024 * 1024)
        return bytes > Int.max - margin ? Int.max : bytes + margin
    }

    /// The bytes of a request's tensors, raw or typed.
    public static func payloadBytes(_ request: Inference_ModelInferRequest) -> Int {
        var total = request.rawInputContents.reduce(0) { $0 + $1.count }
        for input in request.inputs where input.hasContents {
            let c = input.contents
            total += c.boolContents.count + 4 * (c.intContents.count + c.uintContents.count + c.fp32Contents.count)
            total += 8 * (c.int64Contents.count + c.uint64Contents.count + c.fp64Contents.count)
            total += c.bytesContents.reduce(0) { $0 + $1.count }
        }
        return total
    }

    /// Throws RESOURCE_EXHAUSTED when the request's tensor payload exceeds the limit.
    public func check(_ request: Inference_ModelInferRequest) throws(RPCError) {
        try check(payloadBytes: Self.payloadBytes(request))
    }

    /// The same check on a payload size already counted (`payloadBytes`).
    public func check(payloadBytes total: Int) throws(RPCError) {
        if total > bytes {
            throw RPCError(
                code: .resourceExhausted,
                message: "request of \(total) bytes exceeds the server's limit of \(bytes) bytes (--max-message-bytes)"
            )
        }
    }
}

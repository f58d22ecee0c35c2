import FulcrumService
import Foundation
import GRPCCore
import Synchronization

/// The frontend's admission limit: how many predictions, and how many bytes of their tensors, it
/// holds at once (gRPC and HTTP together). A request over either limit is refused at once with
/// RESOURCE_EXHAUSTED (HTTP 429) and `fulcrum-rejected: admission`, so an overload meets fast
/// refusals instead of a queue that grows until every request waits out its deadline, and the
/// frontend's memory stays bounded.
final class Admission: Sendable {
    let maxRequests: Int
    let maxBytes: Int
    private let state = Mutex((requests: 0, bytes: 0))

    /// The value `fulcrum-rejected` carries on an admission refusal.
    static let rejection = "admission"

    /// Requests in flight by default.
    static let defaultMaxRequests = 2048

    /// Bytes in flight by default: an eighth of the machine's memory, at most 1 GiB.
    static var defaultMaxBytes: Int {
        Int(min(ProcessInfo.processInfo.physicalMemory / 8, 1 << 30))
    }

    init(maxRequests: Int = Admission.defaultMaxRequests, maxBytes: Int = Admission.defaultMaxBytes) {
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
    }

    /// Admits a request holding `bytes` of tensors, or throws RESOURCE_EXHAUSTED. A request larger
    /// than the whole byte limit is still admitted when nothing else is in flight, so the byte
    /// limit never refuses what the message limit allows.
    func enter(bytes: Int) throws(RPCError) {
        let admitted = state.withLock { s -> Bool in
            guard s.requests < maxRequests else { return false }
            guard s.requests == 0 || bytes <= maxBytes - s.bytes else { return false }
            s.requests += 1
            s.bytes += bytes
            return true
        }
        guard admitted else {
            throw RPCError(
                code: .resourceExhausted,
                message: "the frontend is at its admission limit (\(maxRequests) requests or \(maxBytes) bytes of tensors in flight; --max-inflight, --max-inflight-bytes): retry shortly",
                metadata: [RejectionMetadata.key: .string(Self.rejection), "grpc-retry-pushback-ms": "100"]
            )
        }
    }

    /// Releases what `enter(bytes:)` admitted.
    func leave(bytes: Int) {
        state.withLock {
            $0.requests -= 1
            $0.bytes -= bytes
        }
    }

    /// Requests and bytes in flight now.
    var inFlight: (requests: Int, bytes: Int) { state.withLock { ($0.requests, $0.bytes) } }
}

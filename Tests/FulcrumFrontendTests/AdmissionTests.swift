import FulcrumService
import GRPCCore
import Testing

@testable import FulcrumFrontend

@Suite struct AdmissionTests {
    @Test func refusesPastTheRequestLimitAndAdmitsAgainAfterALeave() throws {
        let admission = Admission(maxRequests: 2, maxBytes: 1 << 20)
        try admission.enter(bytes: 10)
        try admission.enter(bytes: 10)
        do {
            try admission.enter(bytes: 10)
            Issue.record("a third request was admitted")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) == Admission.rejection)
            #expect(error.message.contains("--max-inflight"))
        }
        admission.leave(bytes: 10)
        try admission.enter(bytes: 10)
        #expect(admission.inFlight.requests == 2 && admission.inFlight.bytes == 20)
    }

    @Test func refusesPastTheByteLimitButNeverARequestAlone() throws {
        let admission = Admission(maxRequests: 100, maxBytes: 100)
        try admission.enter(bytes: 60)
        #expect(throws: RPCError.self) { try admission.enter(bytes: 41) }
        try admission.enter(bytes: 40)
        admission.leave(bytes: 60)
        admission.leave(bytes: 40)
        // Alone, a request larger than the byte limit is admitted (the message limit governs it).
        try admission.enter(bytes: 1000)
        #expect(throws: RPCError.self) { try admission.enter(bytes: 1) }
        admission.leave(bytes: 1000)
        #expect(admission.inFlight.requests == 0 && admission.inFlight.bytes == 0)
    }
}

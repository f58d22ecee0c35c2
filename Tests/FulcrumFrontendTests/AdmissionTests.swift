import Foundation
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

@Suite struct DeadlineAdmissionTests {
    static let ms: UInt64 = 1_000_000

    @Test func theEstimateIsTheLastIntervalsMeanAndNeverSticks() {
        var estimate = LatencyEstimate()
        var now: UInt64 = 1_000 * Self.ms
        estimate.observe(latencyNanoseconds: 40 * Self.ms, now: now)
        #expect(estimate.expected == 0)  // the first interval has not closed
        for _ in 0..<10 {
            now += 5 * Self.ms
            estimate.observe(latencyNanoseconds: 40 * Self.ms, now: now)
        }
        now += 60 * Self.ms
        estimate.roll(now: now)
        #expect(estimate.expected == 40 * Self.ms)
        // One slow answer alone (a cold model) is too few to count: the estimate halves instead.
        estimate.observe(latencyNanoseconds: 2_000 * Self.ms, now: now)
        now += 100 * Self.ms
        estimate.roll(now: now)
        #expect(estimate.expected == 20 * Self.ms)
        // With nothing answered (everything refused) it halves for every interval that passed (3).
        now += 300 * Self.ms
        estimate.roll(now: now)
        #expect(estimate.expected == 20 * Self.ms / 8)
        now += 10_000 * Self.ms
        estimate.roll(now: now)
        #expect(estimate.expected == 0)
    }

    @Test func aCallThatCannotMakeItsDeadlineIsRefusedEarly() throws {
        let admission = Admission(maxRequests: 100, maxBytes: 1 << 20)
        // Nothing known yet: every deadline is admitted.
        #expect(admission.refusalIfFull(timeout: .milliseconds(1)) == nil)
        // 200 ms answers for a while (a queue), with calls in flight.
        for _ in 0..<3 { try admission.enter(bytes: 1) }
        let start = DispatchTime.now().uptimeNanoseconds
        while DispatchTime.now().uptimeNanoseconds - start < 2 * LatencyEstimate.interval + 10 * Self.ms {
            try admission.enter(bytes: 1)
            admission.leave(bytes: 1, model: "m", latency: 200 * Self.ms)
        }
        // 2 x 200 ms is more than a 250 ms deadline allows: refused at once, with its reason.
        let refusal = try #require(admission.refusalIfFull(timeout: .milliseconds(250)))
        #expect(refusal.code == .deadlineExceeded)
        #expect(refusal.metadata[stringValues: RejectionMetadata.key].first(where: { _ in true }) == Admission.lateRejection)
        #expect(refusal.message.contains("200 ms") && refusal.message.contains("250 ms"))
        #expect(throws: RPCError.self) { try admission.enter(bytes: 1, model: "m", timeout: .milliseconds(250)) }
        // A call without a deadline, or with room for two answers, goes on; so does any call
        // once nothing is in flight (no queue to wait in).
        #expect(admission.refusalIfFull(timeout: nil) == nil)
        #expect(admission.refusalIfFull(timeout: .seconds(1)) == nil)
        #expect(admission.refusalIfFull(timeout: .seconds(Int64.max)) == nil)
        for _ in 0..<3 { admission.leave(bytes: 1) }
        #expect(admission.refusalIfFull(timeout: .milliseconds(250)) == nil)
    }

    @Test func eachModelIsJudgedByItsOwnAnswers() throws {
        let admission = Admission(maxRequests: 100, maxBytes: 1 << 20)
        try admission.enter(bytes: 1)
        let start = DispatchTime.now().uptimeNanoseconds
        while DispatchTime.now().uptimeNanoseconds - start < 2 * LatencyEstimate.interval + 10 * Self.ms {
            for (model, latency) in [("slow", 300 * Self.ms), ("fast", Self.ms)] {
                try admission.enter(bytes: 1, model: model)
                admission.leave(bytes: 1, model: model, latency: latency)
            }
        }
        // From a call's headers the model is not known yet: the fastest model decides, so a
        // call that one of them could answer in time is not refused there.
        #expect(admission.refusalIfFull(timeout: .milliseconds(250)) == nil)
        // Once the message names it, the slow model's call is refused and the fast one's admitted.
        #expect(throws: RPCError.self) { try admission.enter(bytes: 1, model: "slow", timeout: .milliseconds(250)) }
        try admission.enter(bytes: 1, model: "fast", timeout: .milliseconds(250))
        // A model with no answers yet has no estimate: nothing to refuse it for.
        try admission.enter(bytes: 1, model: "new", timeout: .milliseconds(1))
    }

    @Test func grpcTimeoutsAreReadWithoutOverflow() {
        #expect(Deadline.timeout(grpcTimeout: "250m") == .milliseconds(250))
        #expect(Deadline.timeout(grpcTimeout: "99999999H") == .seconds(99_999_999 * 3600))
        // Longer than the protocol's 8 digits: malformed, never a trap in the multiplication.
        #expect(Deadline.timeout(grpcTimeout: "9223372036854775807H") == nil)
        #expect(Deadline.timeout(grpcTimeout: "-5S") == nil)
        #expect(Deadline.timeout(grpcTimeout: "5x") == nil)
        #expect(Deadline.timeout(grpcTimeout: "") == nil)
    }
}

@Suite struct AdaptiveAdmissionTests {
    static let ms: UInt64 = 1_000_000

    @Test func theEdgeAsksBeforeReadingAndIsRefusedOnlyWhenFull() throws {
        let admission = Admission(maxRequests: 1, maxBytes: 1 << 20)
        #expect(admission.refusalIfFull() == nil)
        try admission.enter(bytes: 1)
        let refusal = try #require(admission.refusalIfFull())
        #expect(refusal.code == .resourceExhausted)
        #expect(refusal.metadata[stringValues: "grpc-retry-pushback-ms"].first(where: { _ in true }) == "100")
        admission.leave(bytes: 1)
        #expect(admission.refusalIfFull() == nil)
    }

    /// Drives `limit` through an open-loop overload until it engages: one unloaded answer sets
    /// the floor (`floor`), then every 100 ms requests in flight double while answers take 10x it.
    static func engage(_ limit: inout ConcurrencyLimit, now: inout UInt64, floor: UInt64 = ms) {
        limit.observe(model: "m", latencyNanoseconds: floor, inFlight: 1, now: now)
        var inFlight = 8
        for _ in 0..<ConcurrencyLimit.risingIntervals {
            #expect(!limit.engaged)
            now += 101 * ms
            inFlight *= 2
            limit.observe(model: "m", latencyNanoseconds: 10 * floor, inFlight: inFlight, now: now)
        }
        #expect(limit.engaged)
    }

    @Test func aClosedLoopNeverEngagesTheLimitWhateverItsLatency() {
        var limit = ConcurrencyLimit(maximum: 2048, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        limit.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 1, now: now)
        // A benchmark starts 64 callers at once, then holds them in flight for 30 s; every answer
        // queues behind the others (5x the floor), and the count the frontend sees jitters.
        for step in 0..<300 {
            now += 101 * Self.ms
            let inFlight = 64 - [0, 3, 7, 1, 5][step % 5]
            limit.observe(model: "m", latencyNanoseconds: 5 * Self.ms, inFlight: inFlight, now: now)
            #expect(!limit.engaged)
        }
        #expect(limit.limit == 2048)
        // Its concurrency doubled once (a step of a sweep): still one rise, not an overload.
        for step in 0..<50 {
            now += 101 * Self.ms
            limit.observe(model: "m", latencyNanoseconds: 10 * Self.ms, inFlight: step == 0 ? 96 : 128, now: now)
        }
        #expect(!limit.engaged)
    }

    @Test func anOpenLoopOverloadEngagesTheLimitAndItsEndDisengagesIt() {
        var limit = ConcurrencyLimit(maximum: 2048, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        #expect(limit.limit == 2048)
        // Requests in flight grow by a hundred an interval while answers queue.
        limit.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 1, now: now)
        for interval in 1...ConcurrencyLimit.risingIntervals {
            now += 101 * Self.ms
            limit.observe(model: "m", latencyNanoseconds: 20 * Self.ms, inFlight: 100 * interval, now: now)
        }
        #expect(limit.engaged)
        #expect(limit.limit == ConcurrencyLimit.initial)
        // Growth with prompt answers (a pool that keeps up as more is sent) is not an overload.
        var other = ConcurrencyLimit(maximum: 2048, tolerance: 2)
        other.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 1, now: now)
        for interval in 1...10 {
            other.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 100 * interval, now: now + UInt64(interval) * 101 * Self.ms)
        }
        #expect(!other.engaged)
        // While the overload lasts, the limit is reached and refuses: it stays engaged.
        for _ in 0..<20 {
            now += 101 * Self.ms
            limit.refused()
            limit.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: limit.limit, now: now)
        }
        #expect(limit.engaged)
        // Intervals that refused nothing, below the limit: the overload is over once there were
        // `quietIntervals` of them in a row (one is a stall, not the end).
        func quietInterval() {
            now += 101 * Self.ms
            limit.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 2, now: now)
        }
        quietInterval()
        quietInterval()
        // A refusal in between starts the count again.
        limit.refused()
        quietInterval()
        for _ in 1..<ConcurrencyLimit.quietIntervals {
            quietInterval()
            #expect(limit.engaged)
        }
        quietInterval()
        #expect(!limit.engaged)
        #expect(limit.limit == 2048)
    }

    @Test func aSlowModelsSteadyOverloadEngagesHoweverLongItTookToQueue() {
        // A device that answers once per 100 ms, sent 80 requests a second: requests in flight
        // climb by 7 an interval, and from the second answer on they queue past the tolerance.
        var limit = ConcurrencyLimit(maximum: 2048, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        limit.observe(model: "m", latencyNanoseconds: 100 * Self.ms, inFlight: 1, now: now)
        var engagedAt: Int?
        for interval in 1...30 where engagedAt == nil {
            now += 101 * Self.ms
            limit.observe(model: "m", latencyNanoseconds: UInt64(100 + 88 * interval) * Self.ms, inFlight: 7 * interval, now: now)
            if limit.engaged { engagedAt = interval }
        }
        #expect(engagedAt == 1 + ConcurrencyLimit.risingIntervals)
    }

    @Test func refusalsAtTheStaticLimitCountAsAnOverload() {
        // Requests in flight cannot rise past --max-inflight; refusing there with queued answers
        // is rising too (an overload that filled the static limit before the adaptive one engaged).
        var limit = ConcurrencyLimit(maximum: 64, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        limit.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 1, now: now)
        // A few refusals an interval beside many answers (short-deadline calls refused beside a
        // closed loop) are not an overload.
        for _ in 0..<10 {
            now += 101 * Self.ms
            limit.refused()
            limit.refused()
            for _ in 0..<20 { limit.observe(model: "m", latencyNanoseconds: 30 * Self.ms, inFlight: 64, now: now) }
        }
        #expect(!limit.engaged)
        // As many refused as answered, interval after interval: an overload.
        for _ in 1...ConcurrencyLimit.risingIntervals {
            #expect(!limit.engaged)
            now += 101 * Self.ms
            for _ in 0..<20 { limit.refused() }
            for _ in 0..<20 { limit.observe(model: "m", latencyNanoseconds: 30 * Self.ms, inFlight: 64, now: now) }
        }
        #expect(limit.engaged)
        #expect(limit.limit == ConcurrencyLimit.initial)
    }

    @Test func theLimitFallsWhenEvenTheBestAnswerQueuedAndNamesItself() throws {
        var limit = ConcurrencyLimit(maximum: 1000, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        // Engaged, it starts low and grows with use.
        Self.engage(&limit, now: &now)
        #expect(limit.limit == ConcurrencyLimit.initial)
        // 100 ms of answers that all took 10 ms with 200 in flight: every one queued.
        for _ in 1...101 {
            now += Self.ms
            limit.observe(model: "m", latencyNanoseconds: 10 * Self.ms, inFlight: 200, now: now)
        }
        // 10x over a tolerance of 2: the cut is the deepest, to half of the limit (less than was in flight).
        #expect(limit.limit == ConcurrencyLimit.initial / 2)

        let admission = Admission(maxRequests: 1, maxBytes: 1 << 20, mode: .adaptive)
        try admission.enter(bytes: 1)
        let refusal = try #require(admission.refusalIfFull())
        #expect(refusal.message.contains("--max-inflight"))
        admission.leave(bytes: 1, model: "m", latency: Self.ms)
        #expect(admission.limit == 1)
    }

    @Test func oneLuckyAnswerDoesNotHideTheQueueButHalfPromptAnswersDo() {
        func run(promptEvery: Int) -> Int {
            var limit = ConcurrencyLimit(maximum: 64, tolerance: 2)
            var now: UInt64 = 1_000 * Self.ms
            Self.engage(&limit, now: &now)
            for step in 1...101 {
                now += Self.ms
                let latency = step % promptEvery == 0 ? Self.ms : 10 * Self.ms
                limit.observe(model: "m", latencyNanoseconds: latency, inFlight: 32, now: now)
            }
            return limit.limit
        }
        // One prompt answer in a hundred: 1 % prompt, the cut is nearly the deepest.
        #expect(run(promptEvery: 100) == 16)
        // Every other answer prompt: half the answers did not queue, no cut (and the limit, in use, grows).
        #expect(run(promptEvery: 2) > ConcurrencyLimit.initial)
    }

    @Test func theLimitGrowsBackWhileAnswersKeepTheirLatencyAndTheLimitIsUsed() {
        var limit = ConcurrencyLimit(maximum: 64, minimum: 4, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        Self.engage(&limit, now: &now)
        // Drive it down first: queued answers, refusals every interval.
        for _ in 0..<12 {
            now += 101 * Self.ms
            limit.refused()
            limit.observe(model: "m", latencyNanoseconds: 50 * Self.ms, inFlight: 8, now: now)
        }
        #expect(limit.limit == 4)
        // Answers at their floor with the limit in use: it grows, by a tenth (at least one) an interval.
        var seen = [limit.limit]
        for _ in 0..<40 {
            now += 101 * Self.ms
            limit.refused()
            limit.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: limit.limit, now: now)
            seen.append(limit.limit)
        }
        #expect(seen == seen.sorted())
        #expect(limit.limit == 64)
        // A limit less than half used while it still refuses (a burst now and then) does not
        // grow: it has shown nothing about more load.
        var idle = ConcurrencyLimit(maximum: 64, minimum: 4, tolerance: 2)
        Self.engage(&idle, now: &now)
        for _ in 0..<12 {
            now += 101 * Self.ms
            idle.refused()
            idle.observe(model: "m", latencyNanoseconds: 50 * Self.ms, inFlight: 8, now: now)
        }
        let low = idle.limit
        for _ in 0..<10 {
            now += 101 * Self.ms
            idle.refused()
            idle.observe(model: "m", latencyNanoseconds: Self.ms, inFlight: 1, now: now)
        }
        #expect(idle.limit == low)
        #expect(idle.engaged)
    }

    @Test func aByteRefusalNamesTheByteLimitEvenUnderAnAdaptiveLimit() throws {
        let admission = Admission(maxRequests: 1000, maxBytes: 100, mode: .adaptive)
        try admission.enter(bytes: 60)
        do {
            try admission.enter(bytes: 60)
            Issue.record("a request past the byte limit was admitted")
        } catch {
            #expect(error.message.contains("--max-inflight-bytes"), "\(error.message)")
        }
    }

    @Test func eachModelHasItsOwnFloor() {
        // Both models answer at their own floors; then, engaged, only the slow one is called.
        // Its 40 ms answers are not queueing, whatever the fast model's floor is: the limit grows.
        var limit = ConcurrencyLimit(maximum: 100, tolerance: 2)
        var now: UInt64 = 1_000 * Self.ms
        Self.engage(&limit, now: &now)
        limit.observe(model: "fast", latencyNanoseconds: Self.ms, inFlight: 60, now: now)
        limit.observe(model: "slow", latencyNanoseconds: 40 * Self.ms, inFlight: 60, now: now)
        for _ in 0..<30 {
            now += 101 * Self.ms
            limit.refused()
            limit.observe(model: "slow", latencyNanoseconds: 40 * Self.ms, inFlight: 60, now: now)
        }
        #expect(limit.limit == 100)
        // The same answers from the fast model's name are 40x its floor: the limit falls.
        limit.refused()
        limit.observe(model: "fast", latencyNanoseconds: 40 * Self.ms, inFlight: 60, now: now + 101 * Self.ms)
        limit.observe(model: "fast", latencyNanoseconds: 40 * Self.ms, inFlight: 60, now: now + 202 * Self.ms)
        #expect(limit.limit < 100)
    }
}

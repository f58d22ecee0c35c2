import Testing

@testable import FulcrumLoad

/// The open-loop plan driven by a manual clock: `now` is whatever the test says.
@Suite struct ArrivalPlanTests {
    @Test func evenlySpacedArrivalsFollowTheSchedule() {
        var plan = ArrivalPlan(schedule: .constant(100, seconds: 1), poisson: false, seed: 1)
        #expect(plan.step(now: 0) == .wait(until: 0.005))
        #expect(plan.step(now: 0.005) == .send(intended: 0.005))
        #expect(plan.step(now: 0.005) == .wait(until: 0.015))
        var times: [Double] = [0.005]
        while case .send(let t) = plan.step(now: 2) { times.append(t) }
        #expect(plan.step(now: 2) == .finished)
        #expect(times.count == 100)
        for (index, t) in times.enumerated() {
            #expect(abs(t - (Double(index) + 0.5) / 100) < 1e-9)
        }
    }

    @Test func aStalledSenderGetsTheBacklogWithTheOriginalIntendedTimes() {
        var plan = ArrivalPlan(schedule: .constant(1000, seconds: 1), poisson: false, seed: 1)
        // The sender stalls for 100 ms: everything due meanwhile is sent at once, each with its
        // own intended time, in order; nothing is skipped or shifted.
        var backlog: [Double] = []
        while case .send(let t) = plan.step(now: 0.1) { backlog.append(t) }
        #expect(backlog.count == 100)
        #expect(backlog.first! < 0.001)
        #expect(zip(backlog, backlog.dropFirst()).allSatisfy { $0 < $1 })
        #expect(plan.step(now: 0.1) == .wait(until: plan.nextIntended!))
    }

    @Test func poissonArrivalsAreReproducibleAndHaveTheRightMean() {
        func arrivals(seed: UInt64) -> [Double] {
            var plan = ArrivalPlan(schedule: .constant(1000, seconds: 20), poisson: true, seed: seed)
            var times: [Double] = []
            while case .send(let t) = plan.step(now: 100) { times.append(t) }
            return times
        }
        let a = arrivals(seed: 7), b = arrivals(seed: 7), c = arrivals(seed: 8)
        #expect(a == b)
        #expect(a != c)
        // 20 000 expected; a Poisson count has sd √20000 ≈ 141.
        #expect(abs(a.count - 20_000) < 700)
        let gaps = zip(a, a.dropFirst()).map { $1 - $0 }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let variance = gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)
        #expect(abs(mean - 0.001) < 0.00005)
        // Exponential gaps: sd equals the mean (even spacing would have sd 0).
        #expect(abs(variance.squareRoot() - mean) / mean < 0.05)
    }

    @Test func theInFlightCapAdmitsBelowItOnly() {
        #expect(ArrivalPlan.admits(inFlight: 0, cap: 1))
        #expect(!ArrivalPlan.admits(inFlight: 1, cap: 1))
        #expect(!ArrivalPlan.admits(inFlight: 5, cap: 4))
    }
}

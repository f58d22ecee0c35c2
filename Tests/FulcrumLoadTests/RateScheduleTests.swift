import Testing

@testable import FulcrumLoad

@Suite struct RateScheduleTests {
    @Test func rateIsAPureFunctionOfTime() {
        let schedule = RateSchedule([.constant(100, seconds: 10), .init(from: 100, to: 300, seconds: 10), .constant(0, seconds: 5)])
        #expect(schedule.duration == 25)
        #expect(schedule.rate(at: 0) == 100)
        #expect(schedule.rate(at: 9.99) == 100)
        #expect(abs(schedule.rate(at: 15) - 200) < 1e-9)
        #expect(schedule.rate(at: 22) == 0)
        #expect(schedule.rate(at: 30) == 0)
        #expect(schedule.rate(at: -1) == 0)
        #expect(schedule.peakRate == 300)
    }

    @Test func cumulativeAndItsInverseAgree() {
        let schedule = RateSchedule([.constant(100, seconds: 10), .init(from: 100, to: 300, seconds: 10), .constant(0, seconds: 5), .constant(50, seconds: 2)])
        #expect(abs(schedule.cumulative(at: 10) - 1000) < 1e-9)
        #expect(abs(schedule.cumulative(at: 20) - 3000) < 1e-9)
        #expect(abs(schedule.cumulative(at: 27) - 3100) < 1e-9)
        for target in stride(from: 0.5, to: 3100, by: 37.3) {
            let t = try! #require(schedule.time(forCumulative: target))
            #expect(abs(schedule.cumulative(at: t) - target) < 1e-6)
        }
        // The idle segment is skipped: the next arrival after 3000 lands in the last segment.
        #expect(schedule.time(forCumulative: 3000.5)! >= 25)
        #expect(schedule.time(forCumulative: 3100.5) == nil)
    }

    @Test func parsesTheInlineForm() throws {
        let schedule = try RateSchedule(parsing: "100@10, 100-400@20,1500@2")
        #expect(schedule.segments == [.constant(100, seconds: 10), .init(from: 100, to: 400, seconds: 20), .constant(1500, seconds: 2)])
        #expect(schedule.inlineDescription == "100@10,100-400@20,1500@2")
        #expect(throws: LoadError.self) { try RateSchedule(parsing: "100") }
        #expect(throws: LoadError.self) { try RateSchedule(parsing: "x@3") }
        #expect(throws: LoadError.self) { try RateSchedule(parsing: "100@0") }
        #expect(throws: LoadError.self) { try RateSchedule(parsing: "") }
    }

    @Test func rampFromZeroStillSends() {
        let schedule = RateSchedule([.init(from: 0, to: 100, seconds: 10)])
        var plan = ArrivalPlan(schedule: schedule, poisson: false, seed: 1)
        var count = 0
        while case .send = plan.step(now: 100) { count += 1 }
        #expect(count == 500)
    }
}

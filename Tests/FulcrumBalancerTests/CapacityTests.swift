import FulcrumBalancer
import Testing

/// A hand-set clock for the pure capacity logic.
struct TestInstant: InstantProtocol, Sendable {
    var offset: Duration
    static func seconds(_ s: Double) -> TestInstant { TestInstant(offset: .milliseconds(Int64(s * 1000))) }
    func advanced(by duration: Duration) -> TestInstant { TestInstant(offset: offset + duration) }
    func duration(to other: TestInstant) -> Duration { other.offset - offset }
    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool { lhs.offset < rhs.offset }
}

@Suite struct CapacityTests {
    @Test func rateEstimatorConvergesOnTheShortWindowFirst() {
        var rate = RateEstimator<TestInstant>(shortWindow: .seconds(2), longWindow: .seconds(30))
        rate.observe(0, at: .seconds(0))
        for step in 1...40 { rate.observe(25, at: .seconds(Double(step) * 0.25)) }  // 100 req/s for 10 s
        #expect(abs(rate.shortRate - 100) < 1)
        #expect(rate.longRate > 20 && rate.longRate < 40)
        for step in 41...48 { rate.observe(0, at: .seconds(Double(step) * 0.25)) }  // silence for 2 s
        #expect(rate.shortRate < 40)
    }

    @Test func serviceCurveFitsFixedAndPerSampleCosts() {
        var curve = ServiceCurve()
        curve.add((1...8).flatMap { b in Array(repeating: (batchSize: b, seconds: 0.005 + 0.001 * Double(b)), count: 3) })
        #expect(abs(curve.fixed - 0.005) < 1e-9)
        #expect(abs(curve.perSample - 0.001) < 1e-9)
        #expect(abs(curve.seconds(batch: 8) - 0.013) < 1e-9)
    }

    @Test func oneBatchSizeScalesThePriorThroughTheMean() {
        var curve = ServiceCurve(fixed: 0.002, perSample: 0.001)
        curve.add([(batchSize: 1, seconds: 0.006)])
        #expect(abs(curve.seconds(batch: 1) - 0.006) < 1e-12)
    }

    /// The rehearsal profile: 5 ms + 1 ms per sample, max batch 8 (≈ 615 samples/s per worker).
    let planner = Planner(curve: ServiceCurve(fixed: 0.005, perSample: 0.001), maxBatchSize: 8, latencyTarget: 0.050)

    @Test func plannerSizesThePoolForRateAndTarget() {
        #expect(planner.plan(rate: 100).workers == 1)
        let plan = planner.plan(rate: 2000)
        // 2000/s needs ≥ 3.25 workers of 615/s; with 20 % headroom 5 (4 would run at 81 %).
        #expect(plan.workers == 5)
        #expect(plan.row.utilisation <= 0.8)
        #expect((plan.row.p99 ?? 1) <= 0.050)
        #expect(planner.row(rate: 2000, workers: 3).p99 == nil)  // 667/s per worker: cannot keep up
    }

    @Test func aTargetTooTightForAnyPoolIsReported() {
        var tight = planner
        tight.latencyTarget = 0.005  // below one execution
        #expect(tight.plan(rate: 100, maxWorkers: 8).workers == nil)
    }

    @Test func autoscalerScalesUpAtOnceAndDownSlowlyOneStepAtATime() {
        var scaler = Autoscaler<TestInstant>(minWorkers: 1, maxWorkers: 8, stabilisation: .seconds(30), settle: .seconds(10))
        #expect(scaler.decide(.init(current: 1, planned: 5), now: .seconds(0)).desired == 5)
        // Load drops: nothing happens while the scale-up settles or before the window passes.
        #expect(scaler.decide(.init(current: 5, planned: 1), now: .seconds(5)).desired == 5)
        #expect(scaler.decide(.init(current: 5, planned: 1), now: .seconds(11)).desired == 5)
        #expect(scaler.decide(.init(current: 5, planned: 1), now: .seconds(40)).desired == 5)
        #expect(scaler.decide(.init(current: 5, planned: 1), now: .seconds(41)).desired == 4)
        // The next step needs another full window.
        #expect(scaler.decide(.init(current: 4, planned: 1), now: .seconds(50)).desired == 4)
        #expect(scaler.decide(.init(current: 4, planned: 1), now: .seconds(71)).desired == 3)
        // A load increase in between cancels the wait.
        #expect(scaler.decide(.init(current: 3, planned: 3), now: .seconds(80)).desired == 3)
        #expect(scaler.decide(.init(current: 3, planned: 1), now: .seconds(100)).desired == 3)
    }

    @Test func queueDelayOverItsBudgetGrowsThePoolInProportionWithinLimits() {
        var scaler = Autoscaler<TestInstant>(minWorkers: 2, maxWorkers: 6)
        let decision = scaler.decide(.init(current: 2, planned: 2, queueDelay: 0.040, queueDelayBudget: 0.020), now: .seconds(0))
        #expect(decision.desired == 4)
        #expect(decision.reason.contains("queue delay"))
        #expect(scaler.decide(.init(current: 4, planned: 2, queueDelay: 0.100, queueDelayBudget: 0.020), now: .seconds(1)).desired == 6)
        #expect(scaler.decide(.init(current: 2, planned: 0), now: .seconds(100)).desired == 2)
    }
}

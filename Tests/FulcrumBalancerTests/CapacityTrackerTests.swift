import FulcrumBalancer
import FulcrumProtocol
import Foundation
import Testing

@Suite struct CapacityTrackerTests {
    /// A report from one worker hosting `model` with the 5 ms + 1 ms/sample profile.
    func report(model: String = "m", arrivals: UInt64, batches: [Int], queueUs: UInt64 = 0, maxBatch: UInt32 = 8, targetMs: Double = 0)
        -> WorkerReport
    {
        let dequeued = UInt64(batches.reduce(0, +))
        let executions = batches.map { WorkerLoad.Batch(size: UInt32($0), serviceMicroseconds: UInt64(5000 + 1000 * $0)) }
        let load = WorkerLoad.Model(name: model, arrivals: arrivals, batches: executions, dequeued: dequeued, queueMicroseconds: queueUs * dequeued)
        return WorkerReport(
            workerID: "w", state: .ready, load: WorkerLoad(models: [load]),
            models: [HostedModel(name: model, version: "1", state: .ready, latencyTargetMs: targetMs, maxBatchSize: maxBatch)])
    }

    /// The same report in the capacity model's terms.
    func capacity(model: String = "m", arrivals: UInt64, batches: [Int], queueUs: UInt64 = 0, maxBatch: UInt32 = 8, targetMs: Double = 0)
        -> WorkerCapacityReport
    {
        WorkerCapacityReport(report(model: model, arrivals: arrivals, batches: batches, queueUs: queueUs, maxBatch: maxBatch, targetMs: targetMs))
    }

    @Test func theWireMapsToTheCapacityModelsTerms() {
        var hosted = Fulcrum_Control_V1_HostedModel()
        hosted.name = "m"
        hosted.version = "1"
        hosted.state = "READY"
        hosted.maxBatchSize = 8
        hosted.latencyTargetMs = 20
        var loading = Fulcrum_Control_V1_HostedModel()
        loading.name = "other"
        loading.state = "LOADING"
        var load = Fulcrum_Control_V1_ModelLoad()
        load.name = "m"
        load.arrivals = 12
        let samples: [(size: UInt32, us: UInt64)] = [(2, 7000), (3, 8000)]
        load.samples = samples.map { size, us in
            var s = Fulcrum_Control_V1_BatchSample()
            s.batchSize = size
            s.serviceUs = us
            return s
        }
        load.dequeued = 5
        load.queueUsTotal = 500
        var wire = Fulcrum_Control_V1_WorkerReport()
        wire.workerID = "w"
        wire.models = [hosted, loading]
        wire.load.models = [load]
        // Through the control service's mapping: the registry's report, then the capacity model's part.
        #expect(WorkerCapacityReport(WorkerReport(wire)) == WorkerCapacityReport(
            hosted: [.init(name: "m", maxBatchSize: 8, target: 0.02)],
            load: [.init(name: "m", arrivals: 12, dequeued: 5, queueMicroseconds: 500,
                         batches: [.init(size: 2, seconds: 0.007), .init(size: 3, seconds: 0.008)])]))
        var sample = Fulcrum_Control_V1_NetworkSample()
        sample.model = "m"
        sample.requests = 4
        sample.networkUsTotal = 400
        sample.networkUsP99 = 150
        var frontend = Fulcrum_Control_V1_FrontendReport()
        frontend.models = [sample]
        #expect(NetworkReport(frontend) == NetworkReport(samples: [.init(model: "m", requests: 4, totalMicroseconds: 400, p99Microseconds: 150)]))
    }

    @Test func plansFromReportedRatesAndBatches() {
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05, headroom: 0.2, maxWorkers: 32))
        tracker.tick(now: .seconds(0))
        // 2,000 requests/s for 10 s, in 0.5 s ticks, with batches of every size reported.
        for step in 1...20 {
            tracker.record(capacity(arrivals: 1000, batches: Array(1...8)))
            tracker.tick(now: .seconds(Double(step) * 0.5))
        }
        let view = try! #require(tracker.views.first)
        #expect(abs(view.curve.fixed - 0.005) < 1e-6)
        #expect(abs(view.curve.perSample - 0.001) < 1e-6)
        #expect(abs(view.shortRate - 2000) < 50)
        #expect(view.maxBatchSize == 8)
        // 2,000/s over workers of ≈ 615 samples/s at 80 %: at least 5 workers.
        let planned = try! #require(view.plannedWorkers)
        #expect(planned >= 5 && planned <= 7)
        let observation = tracker.observation(current: 1)
        #expect(observation.planned == planned)
    }

    @Test func usesTheModelsOwnTargetOverTheDefault() {
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05))
        tracker.record(capacity(arrivals: 0, batches: [1], targetMs: 20))
        #expect(tracker.views.first?.target == 0.02)
    }

    @Test func plansWithTheNetworkTimeFrontendsMeasured() {
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05, networkSeconds: 0.002))
        tracker.tick(now: .seconds(0))
        tracker.record(capacity(arrivals: 10, batches: [2, 3]))
        tracker.tick(now: .seconds(1))
        // Until a frontend reports, the configured --network-ms.
        #expect(tracker.views.first?.network == 0.002)
        #expect(tracker.views.first?.networkMeasured == false)
        let predictedBefore = tracker.views.first?.plan.row.p99 ?? 0
        func frontend(_ requests: UInt64, meanUs: UInt64) -> Fulcrum_Control_V1_FrontendReport {
            var sample = Fulcrum_Control_V1_NetworkSample()
            sample.model = "m"
            sample.requests = requests
            sample.networkUsTotal = requests * meanUs
            var report = Fulcrum_Control_V1_FrontendReport()
            report.frontendID = "f"
            report.models = [sample]
            return report
        }
        // Two requests are too few to say anything: kept until the next interval.
        tracker.record(NetworkReport(frontend(2, meanUs: 10_000)))
        tracker.tick(now: .seconds(2))
        #expect(tracker.views.first?.networkMeasured == false)
        tracker.record(NetworkReport(frontend(8, meanUs: 10_000)))
        tracker.tick(now: .seconds(3))
        #expect(abs((tracker.views.first?.network ?? 0) - 0.010) < 1e-9)
        #expect(tracker.views.first?.networkMeasured == true)
        #expect(abs((tracker.views.first?.plan.row.p99 ?? 0) - predictedBefore - 0.008) < 1e-9)
        // Then smoothed: 0.7 · old + 0.3 · new.
        tracker.record(NetworkReport(frontend(10, meanUs: 20_000)))
        tracker.tick(now: .seconds(4))
        #expect(abs((tracker.views.first?.network ?? 0) - 0.013) < 1e-9)
    }

    @Test func noPlanBeforeAnyBatchHasRun() {
        var tracker = CapacityTracker<TestInstant>(settings: .init())
        tracker.tick(now: .seconds(0))
        tracker.record(capacity(arrivals: 100, batches: []))
        tracker.tick(now: .seconds(1))
        #expect(tracker.views.first?.plannedWorkers == nil)
        #expect(tracker.observation(current: 2).planned == nil)
    }

    @Test func queueDelayIsTheMeanOfTheLastInterval() {
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05))
        tracker.tick(now: .seconds(0))
        tracker.record(capacity(arrivals: 10, batches: [2, 3], queueUs: 40_000))
        tracker.tick(now: .seconds(1))
        let observation = tracker.observation(current: 2)
        #expect(abs(observation.queueDelay - 0.04) < 1e-9)
        #expect(abs(observation.queueDelayBudget - 0.025) < 1e-9)
    }

    @Test func modelsSharingThePoolAddUp() {
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05, headroom: 0.2))
        tracker.tick(now: .seconds(0))
        for step in 1...20 {
            tracker.record(capacity(model: "a", arrivals: 200, batches: Array(1...8)))
            tracker.record(capacity(model: "b", arrivals: 200, batches: Array(1...8)))
            tracker.tick(now: .seconds(Double(step) * 0.5))
        }
        // Each model alone (400/s) fits in one worker at 65 %; together they need two.
        #expect(tracker.views.allSatisfy { $0.plannedWorkers == 1 })
        #expect(tracker.observation(current: 1).planned == 2)
    }

    @Test func whatWasLearnedSurvivesARestartThroughJSON() throws {
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05, maxWorkers: 32))
        tracker.tick(now: .seconds(0))
        for step in 1...4 {
            tracker.record(capacity(arrivals: 100, batches: Array(1...8), targetMs: 40))
            tracker.tick(now: .seconds(Double(step) * 0.5))
        }
        var sample = Fulcrum_Control_V1_NetworkSample()
        sample.model = "m"
        sample.requests = 10
        sample.networkUsTotal = 10 * 700
        var frontend = Fulcrum_Control_V1_FrontendReport()
        frontend.models = [sample]
        tracker.record(NetworkReport(frontend))
        tracker.tick(now: .seconds(3))
        let before = try #require(tracker.views.first)

        let data = try JSONEncoder().encode(tracker.learned)
        var restarted = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05, maxWorkers: 32))
        #expect(restarted.restore(try JSONDecoder().decode(LearnedCapacity.self, from: data)) == ["m"])
        let after = try #require(restarted.views.first)
        // The curve, its samples, the batch limit, the target and the network time come back;
        // the rate does not (it is the traffic of the moment).
        #expect(after.curve == before.curve)
        #expect(after.curveSamples == 32)
        #expect(after.maxBatchSize == 8)
        #expect(after.target == 0.04)
        #expect(abs(after.network - 0.0007) < 1e-12)
        #expect(after.networkMeasured)
        #expect(after.shortRate == 0)
        #expect(before.plannedWorkers != nil && after.plannedWorkers != nil)
        // A model the restarted balancer already heard about keeps its own state.
        #expect(restarted.restore(try JSONDecoder().decode(LearnedCapacity.self, from: data)).isEmpty)
    }

    @Test func aRestoredFileIsCheckedNotTrusted() {
        typealias Learned = LearnedCapacity
        let samples: [Learned.Sample] = [
            .init(batchSize: 1, seconds: 0.006), .init(batchSize: 2, seconds: 0.007),
            .init(batchSize: 0, seconds: 0.001), .init(batchSize: 1 << 40, seconds: 0.001),
            .init(batchSize: 2, seconds: -1), .init(batchSize: 2, seconds: .infinity), .init(batchSize: 2, seconds: .nan),
        ]
        let hostile = Learned(models: [
            .init(name: "m", samples: samples, maxBatchSize: 4, targetSeconds: -3, networkSeconds: .nan, networkP99Seconds: 1e9),
            .init(name: "", samples: samples, maxBatchSize: 4),
        ])
        var tracker = CapacityTracker<TestInstant>(settings: .init(defaultTarget: 0.05))
        #expect(tracker.restore(hostile) == ["m"])
        let view = tracker.views.first
        #expect(view?.curveSamples == 2)
        #expect(view?.target == 0.05)
        #expect(view?.networkMeasured == false)
        var future = Learned(models: [.init(name: "m", samples: samples, maxBatchSize: 4)])
        future.version = 2
        var other = CapacityTracker<TestInstant>(settings: .init())
        #expect(other.restore(future).isEmpty && other.views.isEmpty)
    }
}

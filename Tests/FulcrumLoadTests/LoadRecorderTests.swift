import Testing

@testable import FulcrumLoad

@Suite struct LoadRecorderTests {
    @Test func latencyCountsFromTheIntendedTime() {
        // Coordinated omission: a sender stalled for 100 ms sends a backlog late. The server
        // answers each in 1 ms after it is sent, but the recorded latency is from the intended
        // time, so the stall is visible: up to ~100 ms, not 1 ms.
        var plan = ArrivalPlan(schedule: .constant(1000, seconds: 1), poisson: false, seed: 1)
        var recorder = LoadRecorder(warmup: 0)
        let stallEnds = 0.1
        while case .send(let intended) = plan.step(now: stallEnds) {
            recorder.record(intended: intended, completed: stallEnds + 0.001, outcome: .ok(nil))
        }
        #expect(recorder.ok == 100)
        #expect(recorder.latency.min <= 1_600)  // the last arrival, intended at 99.5 ms
        #expect(recorder.latency.max >= 100_000)
        #expect(recorder.latency.valueAtPercentile(50) > 40_000)
    }

    @Test func warmupIsKeptOutOfTheTotals() {
        var recorder = LoadRecorder(warmup: 1)
        recorder.record(intended: 0.5, completed: 0.6, outcome: .ok(nil))
        recorder.record(intended: 0.9, completed: 1.2, outcome: .failed(code: "unavailable"))
        recorder.recordDropped(intended: 0.95)
        recorder.record(intended: 1.5, completed: 1.51, outcome: .ok(nil))
        recorder.record(intended: 1.6, completed: 1.7, outcome: .failed(code: "unavailable"))
        recorder.recordDropped(intended: 1.8)
        #expect(recorder.ok == 1)
        #expect(recorder.errors == ["unavailable": 1])
        #expect(recorder.dropped == 1)
        #expect(recorder.warmupCompleted == 2)
        #expect(recorder.warmupDropped == 1)
        #expect(recorder.latency.totalCount == 1)
        #expect(recorder.seconds.count == 2)
        #expect(recorder.seconds[0].offered == 3)
        #expect(recorder.seconds[1].errors == 2)
    }

    @Test func mergingShardsEqualsRecordingInOne() {
        var whole = LoadRecorder(warmup: 0.5)
        var shards = [LoadRecorder(warmup: 0.5), LoadRecorder(warmup: 0.5), LoadRecorder(warmup: 0.5)]
        var generator = SeededGenerator(seed: 3)
        for index in 0..<3000 {
            let intended = Double(index) / 1000
            let latency = 0.0005 + generator.unitInterval() * 0.02
            let outcome: LoadRecorder.Outcome = index % 97 == 0
                ? .failed(code: index % 2 == 0 ? "unavailable" : "deadlineExceeded")
                : .ok(.init([.compute: UInt64(latency * 500_000), .queue: 10]))
            whole.record(intended: intended, completed: intended + latency, outcome: outcome)
            shards[index % 3].record(intended: intended, completed: intended + latency, outcome: outcome)
        }
        var merged = LoadRecorder(warmup: 0.5)
        for shard in shards { merged.merge(shard) }
        #expect(merged.latency == whole.latency)
        #expect(merged.ok == whole.ok)
        #expect(merged.errors == whole.errors)
        #expect(merged.warmupCompleted == whole.warmupCompleted)
        #expect(merged.breakdown[.compute] == whole.breakdown[.compute])
        #expect(merged.seconds.map(\.ok) == whole.seconds.map(\.ok))
        #expect(merged.seconds.map(\.latency) == whole.seconds.map(\.latency))
    }
}

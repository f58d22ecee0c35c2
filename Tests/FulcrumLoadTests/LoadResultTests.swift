import FulcrumService
import Foundation
import Testing

@testable import FulcrumLoad

@Suite struct LoadResultTests {
    func sample() -> LoadResult {
        var options = LoadOptions(target: HostPort(host: "127.0.0.1", port: 8001), model: "m", mode: .open(schedule: .constant(200, seconds: 5), poisson: false))
        options.warmup = 1
        var plan = ArrivalPlan(schedule: .constant(200, seconds: 5), poisson: false, seed: 1)
        var recorder = LoadRecorder(warmup: 1)
        var generator = SeededGenerator(seed: 9)
        var index = 0
        while case .send(let intended) = plan.step(now: 10) {
            index += 1
            if index % 50 == 0 { recorder.recordDropped(intended: intended); continue }
            let outcome: LoadRecorder.Outcome = index % 31 == 0 ? .failed(code: "unavailable") : .ok(.init([.frontend: 50, .network: 80, .queue: 100, .compute: 400]))
            recorder.record(intended: intended, completed: intended + 0.0005 + generator.unitInterval() * 0.05, outcome: outcome)
        }
        return LoadResult(recorder: recorder, options: options, command: "fulcrum loadtest m", startedAt: "now", cpu: ProcessCPU(user: 0.01, system: 0.005), pool: nil)
    }

    @Test func countsAddUpAndPercentilesAreOrdered() {
        let result = sample()
        #expect(result.requests == result.ok + result.errors)
        #expect(result.errors == result.errorsByCode.values.reduce(0, +))
        let series = result.timeSeries
        #expect(series.map { $0.ok + $0.errors }.reduce(0, +) == result.requests + result.warmup.completed)
        #expect(series.map(\.dropped).reduce(0, +) == result.dropped + result.warmup.dropped)
        #expect(series.map(\.offered).reduce(0, +) == 1000)
        let l = result.latencyUs
        #expect(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max)
        #expect(result.offeredRate == 200)
        #expect(abs(result.achievedRate - Double(result.ok) / 4) < 1e-9)
        #expect(result.breakdownUs["compute"]?.p99 == 400)
        #expect(result.generator.requestsSent == result.requests + result.warmup.completed)
    }

    @Test func writesJSONSummaryAndPlots() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-load-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = try ReportWriter.write(sample(), to: folder)
        #expect(Set(files) == ["result.json", "summary.md", "latency.svg", "throughput.svg", "latency-vs-load.svg"])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/result.json"))) as? [String: Any]
        #expect((json?["latency_us"] as? [String: Any])?["p999"] != nil)
        #expect(json?["time_series"] is [Any])
        let svg = try String(contentsOfFile: folder + "/latency.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline"))
    }
}

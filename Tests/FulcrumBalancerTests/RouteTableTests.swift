import FulcrumBalancer
import FulcrumService
import Foundation
import Testing

@Suite struct RouteTableTests {
    let split90 = TrafficRoute(model: "m", splits: [.init(version: "1", basisPoints: 9000), .init(version: "2", basisPoints: 1000)])

    @Test func setChecksVersionsAgainstThePoolAndKeepsHistory() throws {
        var table = RouteTable()
        #expect(throws: TrafficRoute.Refusal("model 'm' has no version 2 on any worker (served: 1)")) {
            try table.set(split90, served: ["1"], nowMs: 1)
        }
        #expect(throws: TrafficRoute.Refusal("no worker serves model 'm'")) { try table.set(split90, served: [], nowMs: 1) }
        let first = try table.set(split90, served: ["1", "2"], nowMs: 5)
        #expect(first.revision == 1 && first.updatedUnixMs == 5)
        let second = try table.set(TrafficRoute(model: "m", splits: [.init(version: "2", basisPoints: 10_000)]), served: ["1", "2"], nowMs: 6)
        #expect(second.revision == 2)
        let back = try table.rollback(model: "m", nowMs: 7)
        #expect(back?.splits == split90.splits && back?.revision == 3 && back?.note.contains("to revision 1") == true)
        #expect(try table.rollback(model: "m", nowMs: 8) == nil)  // before the first route: none
        #expect(throws: TrafficRoute.Refusal.self) { try table.rollback(model: "m", nowMs: 9) }
        try table.set(split90, served: ["1", "2"], nowMs: 10)
        try table.clear(model: "m")
        #expect(table.routes.isEmpty)
        #expect(try table.rollback(model: "m", nowMs: 11)?.splits == split90.splits)
    }

    @Test func aRolloutStepsToItsTargetWithoutAddingHistory() throws {
        var table = RouteTable()
        try table.set(TrafficRoute(model: "m", splits: [.init(version: "1", basisPoints: 10_000)]), served: ["1", "2"], nowMs: 0)
        let rollout = Rollout(version: "2", targetBasisPoints: 2500, stepBasisPoints: 1000, everyMs: 1000, maxP99Ms: 20)
        let started = try table.startRollout(model: "m", rollout, served: ["1", "2"], nowMs: 1000)
        #expect(started.share(of: "2") == 1000 && started.share(of: "1") == 9000 && started.rollingOut == "2")
        #expect(throws: TrafficRoute.Refusal.self) { try table.startRollout(model: "m", rollout, served: ["1", "2"], nowMs: 1000) }

        var window = Rollout.Window()
        var fast = LatencyHistogram()
        for _ in 0..<30 { fast.record(microseconds: 2_000) }
        window.add(requests: 30, errors: 0, latency: fast)
        let current = try #require(table.route(for: "m"))
        #expect(current.rollout!.judge(window, share: 1000, nowMs: 1500) == .wait)
        let decision = current.rollout!.judge(window, share: 1000, nowMs: 2000)
        #expect(decision == .advance(to: 2000))
        let steppedRoute = table.apply(decision, model: "m", nowMs: 2000)
        let stepped = try #require(steppedRoute)
        #expect(stepped.share(of: "2") == 2000 && stepped.share(of: "1") == 8000 && stepped.revision == 3)
        let lastRoute = table.apply(.advance(to: 2500), model: "m", nowMs: 3000)
        let last = try #require(lastRoute)
        #expect(last.rollout?.state == .completed && last.share(of: "2") == 2500)
        let noLonger = table.apply(.advance(to: 2500), model: "m", nowMs: 4000)
        #expect(noLonger == nil)  // no longer running
        // One rollback undoes the whole rollout.
        #expect(try table.rollback(model: "m", nowMs: 5000)?.splits == [.init(version: "1", basisPoints: 10_000)])
    }

    @Test func aRolloutHaltsOnItsBoundsAndRestoresTheBaseline() throws {
        var table = RouteTable()
        // No route before: the baseline is the newest other version served.
        let rollout = Rollout(version: "3", targetBasisPoints: 5000, stepBasisPoints: 1000, everyMs: 1000, maxP99Ms: 20, maxErrorRate: 0.01)
        try table.startRollout(model: "m", rollout, served: ["1", "2", "3"], nowMs: 0)
        let started = try #require(table.route(for: "m")?.rollout)
        #expect(started.baseline == [.init(version: "2", basisPoints: 10_000)])

        var slow = Rollout.Window()
        var latency = LatencyHistogram()
        for _ in 0..<25 { latency.record(microseconds: 35_000) }
        slow.add(requests: 25, errors: 0, latency: latency)
        guard case .halt(let reason) = started.judge(slow, share: 1000, nowMs: 100) else {
            Issue.record("a slow version must halt")
            return
        }
        #expect(reason.contains("p99") && reason.contains("over the bound of 20 ms"))
        let haltedRoute = table.apply(.halt(reason: reason), model: "m", nowMs: 100)
        let halted = try #require(haltedRoute)
        #expect(halted.splits == [.init(version: "2", basisPoints: 10_000)] && halted.rollout?.state == .halted)

        var failing = Rollout.Window()
        failing.add(requests: 50, errors: 2, latency: LatencyHistogram())
        guard case .halt(let errors) = started.judge(failing, share: 1000, nowMs: 100) else {
            Issue.record("a failing version must halt")
            return
        }
        #expect(errors.contains("error rate 4%"))
        // Too few answers: no judgement, and a due step waits for traffic.
        var few = Rollout.Window()
        few.add(requests: 3, errors: 3, latency: LatencyHistogram())
        #expect(started.judge(few, share: 1000, nowMs: 100) == .wait)
        if case .hold = started.judge(few, share: 1000, nowMs: 5000) {} else { Issue.record("a due step without traffic holds") }
    }

    @Test func rolloutSharesAddUpExactly() {
        var rollout = Rollout(version: "4", targetBasisPoints: 10_000, stepBasisPoints: 1, everyMs: 1000)
        rollout.baseline = [.init(version: "1", basisPoints: 3333), .init(version: "2", basisPoints: 3333), .init(version: "3", basisPoints: 3334)]
        for share in [1, 17, 999, 5000, 9999, 10_000] {
            let splits = rollout.splits(share: share)
            #expect(splits.reduce(0) { $0 + $1.basisPoints } == 10_000, "share \(share): \(splits)")
            #expect(splits.first == .init(version: "4", basisPoints: share))
        }
        #expect(throws: TrafficRoute.Refusal.self) { try Rollout(version: "2", targetBasisPoints: 500, stepBasisPoints: 1000, everyMs: 1000).check(model: "m") }
        #expect(throws: TrafficRoute.Refusal.self) { try Rollout(version: "2", targetBasisPoints: 500, stepBasisPoints: 100, everyMs: 10).check(model: "m") }
        #expect(throws: TrafficRoute.Refusal.self) { try Rollout(version: "2", targetBasisPoints: 500, stepBasisPoints: 100, everyMs: 1000, maxP99Ms: -1).check(model: "m") }
    }

    @Test func theStoreWritesItsFileAndReadsItBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try RouteStore(directory: directory.path)
        try store.update { table throws(TrafficRoute.Refusal) in try table.set(split90, served: ["1", "2"], nowMs: 3) }
        let reopened = try RouteStore(directory: directory.path)
        #expect(reopened.routes == store.routes && reopened.routes.count == 1)
        // A refused change leaves the file and the table as they were.
        #expect(throws: TrafficRoute.Refusal.self) {
            try store.update { table throws(TrafficRoute.Refusal) in try table.set(split90, served: ["1"], nowMs: 4) }
        }
        #expect(try RouteStore(directory: directory.path).routes == reopened.routes)
        try Data("{ not json".utf8).write(to: directory.appendingPathComponent("routes.json"))
        #expect(throws: TrafficRoute.Refusal.self) { try RouteStore(directory: directory.path) }
    }
}

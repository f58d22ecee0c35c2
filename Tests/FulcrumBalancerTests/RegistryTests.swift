import FulcrumBalancer
import Testing

@Suite struct RegistryTests {
    let start = ContinuousClock.now

    func join(_ name: String, _ address: String) -> WorkerJoin {
        WorkerJoin(address: address, name: name)
    }

    func report(_ id: String, _ state: WorkerRecord.State = .ready, queue: UInt32 = 0) -> WorkerReport {
        WorkerReport(workerID: id, state: state, load: WorkerLoad(queueDepth: queue))
    }

    @Test func usesTheNameAsIdWhenFreeAndNumbersOtherwise() {
        var registry = Registry(lease: .seconds(2))
        #expect(registry.join(join("w", "h:1"), now: start, wallClockMs: 0) == "w")
        #expect(registry.join(join("w", "h:2"), now: start, wallClockMs: 0) == "worker-1")
        #expect(registry.join(join("", "h:3"), now: start, wallClockMs: 0) == "worker-2")
        #expect(registry.members.count == 3)
    }

    @Test func aWorkerRejoiningFromTheSameAddressReplacesItsOldEntry() {
        var registry = Registry(lease: .seconds(2))
        _ = registry.join(join("a", "h:1"), now: start, wallClockMs: 0)
        _ = registry.join(join("a", "h:1"), now: start, wallClockMs: 0)
        #expect(registry.pool.workers.map(\.id) == ["a"])
    }

    @Test func reportsRenewTheLeaseAndSilentWorkersExpire() {
        var registry = Registry(lease: .seconds(2))
        let a = registry.join(join("a", "h:1"), now: start, wallClockMs: 0)
        let b = registry.join(join("b", "h:2"), now: start, wallClockMs: 0)
        let renewed = registry.report(report(a, queue: 3), now: start + .milliseconds(1500), wallClockMs: 0)
        #expect(renewed)
        let beforeLease = registry.expire(now: start + .milliseconds(1999))
        #expect(beforeLease.isEmpty)
        let afterBLease = registry.expire(now: start + .milliseconds(2000))
        #expect(afterBLease == [b])
        let beforeRenewedLease = registry.expire(now: start + .milliseconds(3400))
        #expect(beforeRenewedLease.isEmpty)
        let afterRenewedLease = registry.expire(now: start + .milliseconds(3500))
        #expect(afterRenewedLease == [a])
    }

    @Test func reportsUpdateStateAndLoadAndUnknownWorkersMustRejoin() {
        var registry = Registry(lease: .seconds(2))
        let a = registry.join(join("a", "h:1"), now: start, wallClockMs: 0)
        #expect(registry.pool.workers[0].state == .starting)
        #expect(registry.pool.workers[0].lastLoad == nil)
        let before = registry.generation
        let known = registry.report(report(a, .ready, queue: 5), now: start, wallClockMs: 42)
        #expect(known)
        #expect(registry.generation > before)
        #expect(registry.pool.workers[0].state == .ready)
        #expect(registry.pool.workers[0].lastLoad?.queueDepth == 5)
        #expect(registry.pool.workers[0].lastReportUnixMs == 42)
        let ghost = registry.report(report("ghost"), now: start, wallClockMs: 0)
        #expect(!ghost)
        let removed = registry.remove(a)
        let removedTwice = registry.remove(a)
        #expect(removed && !removedTwice)
        #expect(registry.pool.workers.isEmpty)
    }
}

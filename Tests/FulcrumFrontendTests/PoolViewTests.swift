import FulcrumProtocol
import Testing

@testable import FulcrumFrontend

/// The frontend's pool view across a balancer restart: a new stream's first snapshot does not
/// throw away ready workers it does not list yet.
@Suite struct PoolViewTests {
    private func worker(_ id: String, port: Int, state: Fulcrum_Control_V1_WorkerState = .ready) -> Fulcrum_Control_V1_WorkerInfo {
        var worker = Fulcrum_Control_V1_WorkerInfo()
        worker.workerID = id
        worker.address = "127.0.0.1:\(port)"
        worker.state = state
        var model = Fulcrum_Control_V1_HostedModel()
        model.name = "m"
        model.version = "1"
        model.state = "READY"
        worker.models = [model]
        return worker
    }

    private func snapshot(_ workers: [Fulcrum_Control_V1_WorkerInfo]) -> Fulcrum_Control_V1_PoolSnapshot {
        var snapshot = Fulcrum_Control_V1_PoolSnapshot()
        snapshot.workers = workers
        return snapshot
    }

    @Test func aRestartedBalancersEmptyPoolDoesNotEmptyTheView() {
        let view = PoolView()
        view.update(snapshot([worker("a", port: 1), worker("b", port: 2)]), startsStream: true)
        #expect(view.carriedWorkers.isEmpty, "nothing to carry before the first snapshot")

        // A restarted balancer: its first snapshot is empty, then the workers rejoin one by one.
        view.update(snapshot([]), startsStream: true)
        #expect(Set(view.readyWorkers.keys) == ["a", "b"])
        #expect(view.placement(of: "m")?.replicas.count == 2)
        #expect(view.isReady)

        view.update(snapshot([worker("a", port: 1)]))
        #expect(view.carriedWorkers == ["b"])
        // Rejoining, b is STARTING until its first report: still carried, still routed to.
        view.update(snapshot([worker("a", port: 1), worker("b", port: 2, state: .starting)]))
        #expect(view.carriedWorkers == ["b"])
        #expect(Set(view.readyWorkers.keys) == ["a", "b"])
        view.update(snapshot([worker("a", port: 1), worker("b", port: 2)]))
        #expect(view.carriedWorkers.isEmpty)
        #expect(Set(view.readyWorkers.keys) == ["a", "b"])
    }

    @Test func withinAStreamAWorkerThatLeavesIsGoneAtOnce() {
        let view = PoolView()
        view.update(snapshot([worker("a", port: 1), worker("b", port: 2)]), startsStream: true)
        view.update(snapshot([worker("a", port: 1)]))
        #expect(Set(view.readyWorkers.keys) == ["a"])
        #expect(view.carriedWorkers.isEmpty)
    }

    @Test func onlyReadyWorkersAreCarried() {
        let view = PoolView()
        view.update(snapshot([worker("a", port: 1), worker("d", port: 2, state: .draining)]), startsStream: true)
        view.update(snapshot([]), startsStream: true)
        #expect(view.carriedWorkers == ["a"])
    }
}

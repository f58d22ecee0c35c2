import FulcrumBalancer
import Testing

@Suite struct PlacementPlannerTests {
    typealias P = PlacementPlanner

    func worker(_ id: String, memory: UInt64 = 0, _ hosted: [String: HostedModel.State], bytes: UInt64 = 100) -> P.Worker {
        P.Worker(id: id, memoryBytes: memory, hosted: hosted.mapValues { P.Hosted(state: $0, bytes: bytes) })
    }

    @Test func everyWorkerHostingEverythingShrinksToOneReplicaEach() {
        let workers = ["w1", "w2", "w3"].map { worker($0, ["a": .ready, "b": .ready]) }
        let (assignment, actions) = P.plan(workers: workers, demands: [.init(model: "a", workers: 1, bytes: 100), .init(model: "b", workers: 1, bytes: 100)])
        #expect(assignment["a"]?.count == 1 && assignment["b"]?.count == 1)
        #expect(actions.filter { if case .load = $0 { true } else { false } }.isEmpty)
        #expect(actions.count == 4)  // two surplus replicas of each model
        // Both stay where they are, and spread: b keeps the replica on a worker a has left.
        #expect(assignment["a"] == ["w1"] && assignment["b"] == ["w2"])
    }

    @Test func growingDemandLoadsOnTheLeastLoadedWorkersWithRoom() {
        let workers = [
            worker("w1", memory: 1000, ["a": .ready, "b": .ready]),
            worker("w2", memory: 1000, ["b": .ready]),
            worker("w3", memory: 150, [:]),  // 150 bytes free: room for a (100)
            worker("w4", memory: 50, [:]),  // no room
        ]
        let (assignment, actions) = P.plan(workers: workers, demands: [.init(model: "a", workers: 3, bytes: 100), .init(model: "b", workers: 2, bytes: 100)])
        #expect(assignment["a"] == ["w1", "w2", "w3"])
        #expect(Set(actions) == [.load(worker: "w3", model: "a"), .load(worker: "w2", model: "a")])
        #expect(assignment["b"] == ["w1", "w2"])
    }

    @Test func demandBeyondThePoolTakesEveryWorkerThatFits() {
        let workers = [worker("w1", ["a": .ready]), worker("w2", [:])]
        let (assignment, actions) = P.plan(workers: workers, demands: [.init(model: "a", workers: Int.max, bytes: 1)])
        #expect(assignment["a"] == ["w1", "w2"])
        #expect(actions == [.load(worker: "w2", model: "a")])
    }

    @Test func aSurplusReplicaIsUnloadedOnlyWhileAChosenOneIsReady() {
        // The only READY replica is on w2, which is over demand; w1 is still LOADING.
        let workers = [worker("w1", ["a": .loading]), worker("w2", ["a": .ready])]
        let (assignment, actions) = P.plan(workers: workers, demands: [.init(model: "a", workers: 1, bytes: 1)])
        #expect(assignment["a"] == ["w2"])  // READY before LOADING
        #expect(actions == [.unload(worker: "w1", model: "a")])
        // Nothing READY at all: nothing is unloaded.
        let loading = [worker("w1", ["a": .loading]), worker("w2", ["a": .loading])]
        #expect(P.plan(workers: loading, demands: [.init(model: "a", workers: 1, bytes: 1)]).actions.isEmpty)
    }

    @Test func aModelBeingUnloadedIsNotChosenAgainOrReloadedThere() {
        let workers = [worker("w1", ["a": .unloading]), worker("w2", ["a": .ready]), worker("w3", [:])]
        let (assignment, actions) = P.plan(workers: workers, demands: [.init(model: "a", workers: 2, bytes: 1)])
        #expect(assignment["a"] == ["w2", "w3"])
        #expect(actions == [.load(worker: "w3", model: "a")])
    }

    @Test func noWorkersNoPlan() {
        #expect(P.plan(workers: [], demands: [.init(model: "a", workers: 1, bytes: 1)]).actions.isEmpty)
    }
}

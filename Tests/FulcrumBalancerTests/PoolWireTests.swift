@testable import FulcrumBalancer
import FulcrumProtocol
import FulcrumService
import Testing

/// The pool's mapping at the control service's edge: what workers send comes back out in the
/// snapshot field for field, through the registry's own types.
@Suite struct PoolWireTests {
    let start = ContinuousClock.now

    func hosted(_ name: String, _ version: String, _ state: String, reason: String = "", seed: UInt32 = 1) -> Fulcrum_Control_V1_HostedModel {
        var model = Fulcrum_Control_V1_HostedModel()
        model.name = name
        model.version = version
        model.state = state
        model.reason = reason
        model.contentHash = "sha256:\(name)\(version)"
        model.latencyTargetMs = 12.5 * Double(seed)
        model.maxBatchSize = 8 * seed
        model.memoryBytes = 1 << (20 + UInt64(seed))
        return model
    }

    /// A join with every field set.
    var join: Fulcrum_Control_V1_JoinRequest {
        var request = Fulcrum_Control_V1_JoinRequest()
        request.address = "10.0.0.7:9001"
        request.zone = "eu-west-1b"
        request.backend = "vulkan"
        request.device.name = "Radeon"
        request.device.vendor = "AMD"
        request.device.driver = "radv 24.1"
        request.device.memoryBytes = 16 << 30
        request.pid = 4242
        request.name = "gpu-1"
        request.models = [hosted("resnet", "2", "READY"), hosted("bert", "", "UNAVAILABLE", reason: "unsupported op Foo", seed: 2)]
        request.metricsAddress = "10.0.0.7:9101"
        return request
    }

    /// A report with every field set, down to the batch samples.
    func report(_ id: String) -> Fulcrum_Control_V1_WorkerReport {
        var sample = Fulcrum_Control_V1_BatchSample()
        sample.batchSize = 4
        sample.serviceUs = 6100
        var model = Fulcrum_Control_V1_ModelLoad()
        model.name = "resnet"
        model.version = "2"
        model.arrivals = 120
        model.queueDepth = 3
        model.samples = [sample, sample]
        model.dequeued = 117
        model.queueUsTotal = 90_000
        var report = Fulcrum_Control_V1_WorkerReport()
        report.workerID = id
        report.state = .draining
        report.load.queueDepth = 3
        report.load.inFlight = 5
        report.load.utilization = 0.625
        report.load.models = [model]
        report.load.sentUnixMs = 1_700_000_000_123
        report.models = [hosted("resnet", "2", "READY"), hosted("resnet", "3", "LOADING", seed: 3), hosted("custom", "1", "WARMING")]
        return report
    }

    /// A route with every field set, rollout included.
    var route: Fulcrum_Control_V1_ModelRoute {
        var rollout = Rollout(version: "3", targetBasisPoints: 5000, stepBasisPoints: 1000, everyMs: 30_000, maxP99Ms: 80, maxErrorRate: 0.01)
        rollout.reason = "version 3 at 10%"
        rollout.lastStepUnixMs = 1_700_000_000_000
        rollout.baseline = [.init(version: "2", basisPoints: 10_000)]
        rollout.baselinePins = [.init(parameter: "tier", value: "gold", version: "2")]
        return TrafficRoute(
            model: "resnet", splits: [.init(version: "2", basisPoints: 9000), .init(version: "3", basisPoints: 1000)],
            pins: [.init(parameter: "tier", value: "gold", version: "2")], shadows: [.init(version: "4", basisPoints: 500)], revision: 7,
            updatedUnixMs: 1_700_000_000_001, note: "rollout of version 3 started", rollout: rollout
        ).wire
    }

    @Test func joinAndReportComeBackOutInTheSnapshotFieldForField() {
        var registry = Registry(lease: .seconds(2))
        let id = registry.join(WorkerJoin(join), now: start, wallClockMs: 1000)
        registry.routes = [TrafficRoute(route)]

        var expected = Fulcrum_Control_V1_WorkerInfo()
        expected.workerID = "gpu-1"
        expected.address = join.address
        expected.zone = join.zone
        expected.backend = join.backend
        expected.device = join.device
        expected.pid = join.pid
        expected.name = join.name
        expected.metricsAddress = join.metricsAddress
        expected.state = .starting
        expected.models = join.models
        expected.joinedUnixMs = 1000
        expected.lastReportUnixMs = 1000
        var snapshot = registry.pool.wire
        // No load before the first report: the field stays unset, as it always has.
        #expect(!snapshot.workers[0].hasLastLoad)
        #expect(snapshot.workers == [expected])
        #expect(snapshot.routes == [route])
        #expect(snapshot.generation == registry.generation)

        let known = registry.report(WorkerReport(report(id)), now: start, wallClockMs: 2000)
        #expect(known)
        expected.state = .draining
        expected.models = report(id).models
        expected.lastLoad = report(id).load
        expected.lastReportUnixMs = 2000
        snapshot = registry.pool.wire
        #expect(snapshot.workers == [expected])
        #expect(snapshot.routes == [route])
        #expect(snapshot.generation == registry.generation)
        // The domain values carry what the logic reads.
        #expect(registry.pool.workers[0].outstanding == 8)
        #expect(registry.pool.workers[0].models.map(\.state) == [.ready, .loading, HostedModel.State(rawValue: "WARMING")])
    }

    @Test func modelsPlacementMovesAwayAreShownUnloadingOnlyWhileReady() {
        var registry = Registry(lease: .seconds(2))
        let id = registry.join(WorkerJoin(join), now: start, wallClockMs: 0)
        _ = registry.report(WorkerReport(report(id)), now: start, wallClockMs: 0)
        registry.unloading = [id: ["resnet", "custom"]]
        let states = registry.pool.wire.workers[0].models.map { "\($0.name):\($0.version):\($0.state)" }
        #expect(states == ["resnet:2:UNLOADING", "resnet:3:LOADING", "custom:1:WARMING"])
    }

    @Test func workersAreSortedByID() {
        var registry = Registry(lease: .seconds(2))
        for name in ["c", "a", "b"] { _ = registry.join(WorkerJoin(address: "h:\(name)", name: name), now: start, wallClockMs: 0) }
        #expect(registry.pool.wire.workers.map(\.workerID) == ["a", "b", "c"])
    }

    @Test func workerStatesMapBothWays() {
        for state in [Fulcrum_Control_V1_WorkerState.unspecified, .starting, .ready, .draining, .unready] {
            #expect(WorkerRecord.State(state).wire == state)
        }
        #expect(WorkerRecord.State(.UNRECOGNIZED(9)) == .unspecified)
    }

    @Test func placementMovesBecomeDirectives() {
        var load = Fulcrum_Control_V1_Directive()
        load.loadModel.name = "resnet"
        var unload = Fulcrum_Control_V1_Directive()
        unload.unloadModel.name = "bert"
        #expect(PlacementPlanner.Action.load(worker: "w1", model: "resnet").directive == load)
        #expect(PlacementPlanner.Action.unload(worker: "w1", model: "bert").directive == unload)
    }

    @Test func scalingDecisionsMapToTheStatusAnswer() {
        let capacity = CapacityState(settings: .init(headroom: 0.25))
        let first = CapacityState.Scaling.Decision(unixMs: 1000, current: 1, desired: 3, reason: "scale up 1 → 3")
        let second = CapacityState.Scaling.Decision(unixMs: 2000, current: 3, desired: 3, reason: "hold at 3")
        capacity.update {
            $0.scaler = "process"
            $0.minWorkers = 1
            $0.maxWorkers = 8
            $0.current = 3
            $0.desired = 3
            $0.changes = [first]
            $0.latest = second
        }
        func wire(_ unixMs: Int64, _ current: UInt32, _ desired: UInt32, _ reason: String) -> Fulcrum_Control_V1_ScalingDecision {
            var decision = Fulcrum_Control_V1_ScalingDecision()
            decision.unixMs = unixMs
            decision.current = current
            decision.desired = desired
            decision.reason = reason
            return decision
        }
        var expected = Fulcrum_Control_V1_Scaling()
        expected.scaler = "process"
        expected.minWorkers = 1
        expected.maxWorkers = 8
        expected.current = 3
        expected.desired = 3
        expected.changes = [wire(1000, 1, 3, "scale up 1 → 3")]
        expected.latest = wire(2000, 3, 3, "hold at 3")
        #expect(capacity.wire.scaling == expected)
        #expect(CapacityState(settings: .init()).wire.scaling.hasLatest == false)
    }
}

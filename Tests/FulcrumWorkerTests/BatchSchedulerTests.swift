import FulcrumRuntime
import FulcrumSchema
@testable import FulcrumWorker
import Testing

typealias Scheduler = BatchScheduler<ManualInstant>
typealias Request = Scheduler.Request

/// The ids of every batch an action list executes.
func batches(_ actions: [Scheduler.Action]) -> [[UInt64]] {
    actions.compactMap { if case .execute(_, let ids, _) = $0 { ids } else { nil } }
}

func rejections(_ actions: [Scheduler.Action]) -> [UInt64: Scheduler.Rejection] {
    var result: [UInt64: Scheduler.Rejection] = [:]
    for action in actions { if case .reject(let id, let why) = action { result[id] = why } }
    return result
}

func wakes(_ actions: [Scheduler.Action]) -> [ManualInstant] {
    actions.compactMap { if case .wake(let at) = $0 { at } else { nil } }
}

func instance(_ actions: [Scheduler.Action]) -> Int? {
    actions.compactMap { if case .execute(let instance, _, _) = $0 { instance } else { nil } }.first
}

@Suite struct BatchSchedulerTests {
    @Test func withoutDynamicBatchingEachRequestRunsAloneInOrder() {
        var s = Scheduler(policy: BatchPolicy(batching: false, maxBatchSize: 8), instances: 1)
        #expect(batches(s.submit(Request(id: 1, samples: 2), now: .zero)) == [[1]])
        #expect(batches(s.submit(Request(id: 2, samples: 1), now: .zero)).isEmpty)
        #expect(batches(s.submit(Request(id: 3, samples: 1), now: .zero)).isEmpty)
        #expect(s.queueDepth == 2)
        #expect(batches(s.finished(instance: 0, batchSize: 2, epoch: 0, latency: .zero, now: .ms(1))) == [[2]])
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(2))) == [[3]])
    }

    @Test func zeroDelayDispatchesWhateverIsWaitingWhenAnInstanceFrees() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 8), instances: 1)
        #expect(batches(s.submit(Request(id: 1, samples: 1), now: .zero)) == [[1]])
        for id in 2...4 { _ = s.submit(Request(id: UInt64(id), samples: 1), now: .zero) }
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(1))) == [[2, 3, 4]])
    }

    @Test func queueDelayWaitsForAFullerBatchThenExpires() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 4, maxQueueDelay: .milliseconds(5)), instances: 1)
        let first = s.submit(Request(id: 1, samples: 1), now: .zero)
        #expect(batches(first).isEmpty)
        #expect(wakes(first) == [.ms(5)])
        #expect(batches(s.submit(Request(id: 2, samples: 1), now: .ms(1))).isEmpty)
        #expect(batches(s.wake(now: .ms(4))).isEmpty)
        #expect(batches(s.wake(now: .ms(5))) == [[1, 2]])
    }

    @Test func aFullBatchGoesAtOnceWithoutWaitingForTheDelay() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 4, maxQueueDelay: .seconds(1)), instances: 1)
        _ = s.submit(Request(id: 1, samples: 2), now: .zero)
        _ = s.submit(Request(id: 2, samples: 1), now: .zero)
        let actions = s.submit(Request(id: 3, samples: 1), now: .zero)
        #expect(batches(actions) == [[1, 2, 3]])
    }

    @Test func aRequestThatWouldOverfillTheBatchWaitsForTheNextOne() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 4, maxQueueDelay: .seconds(1)), instances: 1)
        _ = s.submit(Request(id: 1, samples: 3), now: .zero)
        #expect(batches(s.submit(Request(id: 2, samples: 2), now: .zero)) == [[1]])
        #expect(s.queueDepth == 1)
    }

    @Test func preferredSizesDispatchTheLargestOneThatCanBeFormed() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 16, preferredBatchSizes: [4, 8], maxQueueDelay: .seconds(1))
        var s = Scheduler(policy: policy, instances: 1)
        for id in 1...3 { #expect(batches(s.submit(Request(id: UInt64(id), samples: 1), now: .zero)).isEmpty) }
        #expect(batches(s.submit(Request(id: 4, samples: 1), now: .zero)) == [[1, 2, 3, 4]])

        var t = Scheduler(policy: policy, instances: 1)
        // Busy instance: requests pile up, then a batch of the largest preferred size goes.
        _ = t.submit(Request(id: 100, samples: 16), now: .zero)
        for id in 1...10 { _ = t.submit(Request(id: UInt64(id), samples: 1), now: .zero) }
        #expect(batches(t.finished(instance: 0, batchSize: 16, epoch: 0, latency: .zero, now: .ms(1))) == [[1, 2, 3, 4, 5, 6, 7, 8]])
        #expect(t.queueDepth == 2)
    }

    @Test func mixedShapesAreNotBatchedTogether() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 8), instances: 1)
        _ = s.submit(Request(id: 0, samples: 1, shapeKey: [-1, 8]), now: .zero)  // occupies the instance
        _ = s.submit(Request(id: 1, samples: 1, shapeKey: [-1, 16]), now: .zero)
        _ = s.submit(Request(id: 2, samples: 1, shapeKey: [-1, 32]), now: .zero)
        _ = s.submit(Request(id: 3, samples: 1, shapeKey: [-1, 16]), now: .zero)
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(1))) == [[1, 3]])
        #expect(batches(s.finished(instance: 0, batchSize: 2, epoch: 0, latency: .zero, now: .ms(2))) == [[2]])
    }

    @Test func higherPriorityLevelsAreServedFirst() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 2, priorityLevels: 3, defaultPriorityLevel: 2, queuePolicies: Array(repeating: .init(), count: 3))
        var s = Scheduler(policy: policy, instances: 1)
        _ = s.submit(Request(id: 10, samples: 2), now: .zero)  // busy
        _ = s.submit(Request(id: 1, samples: 1, priority: 3), now: .zero)
        _ = s.submit(Request(id: 2, samples: 1), now: .zero)  // default level 2
        _ = s.submit(Request(id: 3, samples: 1, priority: 1), now: .zero)
        _ = s.submit(Request(id: 4, samples: 1, priority: 3), now: .zero)
        #expect(batches(s.finished(instance: 0, batchSize: 2, epoch: 0, latency: .zero, now: .ms(1))) == [[3, 2]])
        #expect(batches(s.finished(instance: 0, batchSize: 2, epoch: 0, latency: .zero, now: .ms(2))) == [[1, 4]])
        #expect(rejections(s.submit(Request(id: 5, samples: 1, priority: 4), now: .ms(3))) == [5: .invalidPriority(levels: 3)])
    }

    @Test func aFullQueueRejectsAtOnce() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 1, queuePolicies: [.init(maxQueueSize: 2)])
        var s = Scheduler(policy: policy, instances: 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)  // executing, not queued
        _ = s.submit(Request(id: 2, samples: 1), now: .zero)
        _ = s.submit(Request(id: 3, samples: 1), now: .zero)
        #expect(rejections(s.submit(Request(id: 4, samples: 1), now: .zero)) == [4: .queueFull(level: 1, size: 2)])
        #expect(s.queueDepth == 2)
    }

    @Test func queuedBytesAreBounded() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 1, maxQueuedBytes: 100)
        var s = Scheduler(policy: policy, instances: 1)
        _ = s.submit(Request(id: 1, samples: 1, bytes: 80), now: .zero)  // executing
        _ = s.submit(Request(id: 2, samples: 1, bytes: 80), now: .zero)
        #expect(rejections(s.submit(Request(id: 3, samples: 1, bytes: 30), now: .zero)) == [3: .memoryFull(limit: 100)])
        _ = s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(1))  // 2 leaves the queue
        #expect(rejections(s.submit(Request(id: 4, samples: 1, bytes: 30), now: .ms(1))).isEmpty)
    }

    @Test func timeoutsRejectWithTheRejectAction() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 1, queuePolicies: [.init(defaultTimeout: .milliseconds(10))])
        var s = Scheduler(policy: policy, instances: 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)
        let queued = s.submit(Request(id: 2, samples: 1), now: .ms(1))
        #expect(wakes(queued).contains(.ms(11)))
        #expect(rejections(s.wake(now: .ms(11))) == [2: .timedOut])
        #expect(s.queueDepth == 0)
    }

    @Test func requestTimeoutsOverrideOnlyWhenAllowed() {
        let strict = BatchPolicy(batching: true, maxBatchSize: 1, queuePolicies: [.init(defaultTimeout: .milliseconds(10))])
        var s = Scheduler(policy: strict, instances: 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)
        _ = s.submit(Request(id: 2, samples: 1, timeout: .milliseconds(2)), now: .zero)
        #expect(rejections(s.wake(now: .ms(3))).isEmpty)

        let lenient = BatchPolicy(batching: true, maxBatchSize: 1, queuePolicies: [.init(defaultTimeout: .milliseconds(10), allowTimeoutOverride: true)])
        var t = Scheduler(policy: lenient, instances: 1)
        _ = t.submit(Request(id: 1, samples: 1), now: .zero)
        _ = t.submit(Request(id: 2, samples: 1, timeout: .milliseconds(2)), now: .zero)
        #expect(rejections(t.wake(now: .ms(3))) == [2: .timedOut])
    }

    @Test func delayedRequestsGoBehindThoseThatHaveNotTimedOut() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 1, queuePolicies: [.init(defaultTimeout: .milliseconds(5), delayOnTimeout: true)])
        var s = Scheduler(policy: policy, instances: 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)  // executing
        _ = s.submit(Request(id: 2, samples: 1), now: .zero)
        #expect(rejections(s.wake(now: .ms(6))).isEmpty)  // 2 is delayed, not rejected
        _ = s.submit(Request(id: 3, samples: 1), now: .ms(7))
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(8))) == [[3]])
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(9))) == [[2]])
    }

    @Test func deadlinesDropRequestsBeforeTheyUseCompute() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 1), instances: 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)
        let queued = s.submit(Request(id: 2, samples: 1, deadline: .ms(4)), now: .zero)
        #expect(wakes(queued).contains(.ms(4)))
        #expect(rejections(s.wake(now: .ms(4))) == [2: .deadlineExceeded])
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .zero, now: .ms(5))).isEmpty)
        // A deadline closer than the expected service time is refused on arrival.
        #expect(rejections(s.submit(Request(id: 3, samples: 1, deadline: .ms(6)), now: .ms(5), minimumService: .milliseconds(2))) == [3: .deadlineExceeded])
    }

    @Test func aRequestThatCannotMakeItsDeadlineBehindTheQueueIsRefusedOnArrival() {
        // Two instances, batches of up to 4, 2 ms an execution: both instances busy and 16
        // samples queued are two full rounds ahead, so a request finishes 6 ms out at the soonest.
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 4), instances: 2)
        _ = s.submit(Request(id: 1, samples: 4), now: .zero)
        _ = s.submit(Request(id: 2, samples: 4), now: .zero)
        for id in 3...6 { #expect(rejections(s.submit(Request(id: UInt64(id), samples: 4), now: .zero)).isEmpty) }
        #expect(s.queueDepth == 4)
        let service = Duration.milliseconds(2)
        #expect(s.earliestCompletion(level: 1, now: .zero, minimumService: service) == .ms(6))
        #expect(rejections(s.submit(Request(id: 7, samples: 1, deadline: .ms(5)), now: .zero, minimumService: service)) == [7: .deadlineExceeded])
        #expect(s.queueDepth == 4)
        // One that can make it queues; without a deadline, or without an estimate, nothing changes.
        #expect(rejections(s.submit(Request(id: 8, samples: 1, deadline: .ms(7)), now: .zero, minimumService: service)).isEmpty)
        #expect(rejections(s.submit(Request(id: 9, samples: 1), now: .zero, minimumService: service)).isEmpty)
        #expect(rejections(s.submit(Request(id: 10, samples: 1, deadline: .ms(1)), now: .zero)).isEmpty)
        #expect(s.queueDepth == 7)
    }

    @Test func onlyTheQueuesAtOrAboveARequestsPriorityCountAgainstItsDeadline() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 1, priorityLevels: 2, defaultPriorityLevel: 2, queuePolicies: [.init(), .init()])
        var s = Scheduler(policy: policy, instances: 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)  // executing
        for id in 2...11 { _ = s.submit(Request(id: UInt64(id), samples: 1, priority: 2), now: .zero) }
        let service = Duration.milliseconds(1)
        // Ten requests ahead at level 2: 11 ms at the soonest; level 1 jumps them.
        #expect(rejections(s.submit(Request(id: 12, samples: 1, priority: 2, deadline: .ms(5)), now: .zero, minimumService: service)) == [12: .deadlineExceeded])
        #expect(rejections(s.submit(Request(id: 13, samples: 1, priority: 1, deadline: .ms(5)), now: .zero, minimumService: service)).isEmpty)
    }

    @Test func cancelledRequestsLeaveTheQueue() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 4), instances: 1)
        _ = s.submit(Request(id: 1, samples: 4), now: .zero)
        _ = s.submit(Request(id: 2, samples: 1), now: .zero)
        _ = s.submit(Request(id: 3, samples: 1), now: .zero)
        let removed = s.cancel(2)
        let removedAgain = s.cancel(2)
        let executing = s.cancel(1)  // already executing
        #expect(removed && !removedAgain && !executing)
        #expect(batches(s.finished(instance: 0, batchSize: 4, epoch: 0, latency: .zero, now: .ms(1))) == [[3]])
    }

    @Test func severalInstancesRunBatchesAtOnce() {
        var s = Scheduler(policy: BatchPolicy(batching: true, maxBatchSize: 2), instances: 2)
        let a = s.submit(Request(id: 1, samples: 2), now: .zero)
        let b = s.submit(Request(id: 2, samples: 2), now: .zero)
        #expect(batches(a) == [[1]] && batches(b) == [[2]])
        #expect(instance(a) != instance(b))
        #expect(s.idleInstances == 0)
    }

    @Test func adaptiveLimitGrowsUnderTheTargetAndHalvesOverIt() {
        var limit = AdaptiveBatchLimit(target: .milliseconds(10), maximum: 8)
        #expect(limit.limit == 1)
        for _ in 0..<5 { limit.record(batchSize: limit.limit, formedInEpoch: limit.epoch, latency: .milliseconds(2)) }
        #expect(limit.limit == 6)
        // Not limited by the limit (a smaller batch): no growth.
        limit.record(batchSize: 2, formedInEpoch: limit.epoch, latency: .milliseconds(2))
        #expect(limit.limit == 6)
        limit.record(batchSize: 6, formedInEpoch: limit.epoch, latency: .milliseconds(12))
        #expect(limit.limit == 3)
        // A batch formed before the decrease does not halve it again.
        limit.record(batchSize: 6, formedInEpoch: 0, latency: .milliseconds(12))
        #expect(limit.limit == 3)
        for _ in 0..<20 { limit.record(batchSize: limit.limit, formedInEpoch: limit.epoch, latency: .milliseconds(1)) }
        #expect(limit.limit == 8)
    }

    @Test func adaptiveSchedulingUsesTheCurrentLimit() {
        let policy = BatchPolicy(batching: true, maxBatchSize: 8, adaptive: .init(latencyTarget: .milliseconds(10)))
        var s = Scheduler(policy: policy, instances: 1)
        #expect(s.batchLimit == 1)
        _ = s.submit(Request(id: 1, samples: 1), now: .zero)
        for id in 2...5 { _ = s.submit(Request(id: UInt64(id), samples: 1), now: .zero) }
        // Under target: the limit grows to 2, so the next batch takes two requests.
        #expect(batches(s.finished(instance: 0, batchSize: 1, epoch: 0, latency: .milliseconds(1), now: .ms(1))) == [[2, 3]])
        #expect(s.batchLimit == 2)
    }

    @Test func fulcrumParametersArriveTypedAndTheAdaptiveBatcherTakesThem() throws {
        let text = """
            name: "m"
            max_batch_size: 8
            dynamic_batching { max_queue_delay_microseconds: 100 }
            parameters { key: "fulcrum.batching" value: { string_value: "adaptive" } }
            parameters { key: "fulcrum.latency_target_ms" value: { string_value: "2.5" } }
            parameters { key: "fulcrum.max_queue_bytes" value: { string_value: "4096" } }
            """
        let configuration = try ModelConfiguration.parse(text: text, file: "m/config.pbtxt")
        #expect(configuration.fulcrum == FulcrumSettings(batching: .adaptive, latencyTarget: .microseconds(2500), maxQueueBytes: 4096))
        let policy = try BatchPolicy(configuration: configuration)
        #expect(policy.adaptive?.latencyTarget == .microseconds(2500))
        #expect(policy.maxQueuedBytes == 4096)
        // Built by hand (not parsed), a conflicting setting is still refused, with the same words.
        let handMade = ModelConfiguration(name: "m", maxBatchSize: 8, fulcrum: FulcrumSettings(batching: .adaptive))
        #expect(throws: RuntimeError.self) { try BatchPolicy(configuration: handMade) }
    }
}

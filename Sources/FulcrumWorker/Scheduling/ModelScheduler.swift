import Dispatch
import Foundation
import FulcrumRuntime
import FulcrumSchema
import FulcrumService
import GRPCCore
import Metrics
import Synchronization

/// Carries out a model's `BatchScheduler` decisions: keeps the waiting callers, gathers a batch's
/// inputs into one tensor per input, executes it on the chosen instance's own serial dispatch
/// queue (compute never runs on Swift's cooperative pool), scatters the outputs back, and answers
/// rejected requests at once. Timers for queue delays and timeouts run on a dispatch queue.
final class ModelScheduler: Sendable {
    /// What one request got.
    struct Execution: Sendable {
        var outputs: [String: Tensor]
        var queueNs: UInt64
        var computeNs: UInt64
        /// Samples in the batch the request rode in.
        var batchSize: Int
    }

    /// A request to schedule (see `BatchScheduler.Request`).
    struct Submission: Sendable {
        var inputs: [String: Tensor]
        var samples: Int
        var shapeKey: [Int]
        var priority: Int
        var timeout: Duration?
        var deadline: ContinuousClock.Instant?
        var bytes: Int
    }

    private struct Waiter {
        var continuation: CheckedContinuation<Execution, any Error>
        var inputs: [String: Tensor]
        var samples: Int
        var arrival: ContinuousClock.Instant
    }

    private struct Core {
        var machine: BatchScheduler<ContinuousClock.Instant>
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 0
        /// Smoothed execution time of one batch, for rejecting requests that cannot meet their deadline.
        var serviceEstimate: Duration = .zero
        var pendingWake: ContinuousClock.Instant? = nil
    }

    private let core: Mutex<Core>
    private let instances: [any BatchExecutor]
    private let queues: [DispatchQueue]
    private let timer: DispatchQueue
    private let statistics: ModelStatistics
    private let batchSizes: Recorder
    /// The batcher's own wait (`max_queue_delay_microseconds`), part of a batch's latency.
    private let maxQueueDelay: Duration
    private let batching: Bool
    /// Executions measured shorter than this run inline (see `runsInline`); zero never.
    private let inlineLimit: Duration
    private let clock = ContinuousClock()

    /// The longest measured execution that still runs on the caller's thread for a model that
    /// does not batch.
    static let defaultInlineLimit: Duration = .microseconds(500)

    init(model: Model, statistics: ModelStatistics, emulation: EmulationProfile? = nil) throws(FulcrumSchema.RuntimeError) {
        let policy = try BatchPolicy(configuration: model.configuration)
        let count = max(1, model.configuration.instanceGroups.reduce(0) { $0 + max($1.count, 1) })
        var instances: [any BatchExecutor] = []
        for _ in 0..<count {
            if let emulation {
                instances.append(EmulatedExecutor(profile: emulation, configuration: model.configuration))
            } else {
                instances.append(try model.makeInstance())
            }
        }
        self.instances = instances
        self.queues = (0..<count).map { DispatchQueue(label: "fulcrum.model.\(model.name).\(model.version).\($0)") }
        self.timer = DispatchQueue(label: "fulcrum.model.\(model.name).\(model.version).timer")
        self.statistics = statistics
        self.maxQueueDelay = policy.maxQueueDelay
        self.batchSizes = Recorder(label: "fulcrum_worker_batch_size", dimensions: [("model", model.name)], aggregate: true)
        self.batching = model.configuration.maxBatchSize > 0
        // An emulated device sleeps: never on the caller's thread.
        self.inlineLimit = policy.batching || emulation != nil ? .zero : Self.defaultInlineLimit
        self.core = Mutex(Core(machine: BatchScheduler(policy: policy, instances: count)))
    }

    /// Number of instances that may execute at once.
    var instanceCount: Int { instances.count }

    /// Requests waiting now.
    var queueDepth: Int { core.withLock { $0.machine.queueDepth } }

    /// The batch limit in force (it moves with adaptive batching).
    var batchLimit: Int { core.withLock { $0.machine.batchLimit } }

    /// Queues a request and waits for its outputs. Throws RPCError for rejections (UNAVAILABLE
    /// for a full queue or an expired queue timeout, DEADLINE_EXCEEDED, INVALID_ARGUMENT for a
    /// bad priority) and CancellationError if the caller is cancelled while it waits.
    func submit(_ submission: Submission) async throws -> Execution {
        let id = core.withLock { c -> UInt64 in
            c.nextID += 1
            return c.nextID
        }
        statistics.arrived()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Execution, any Error>) in
                if Task.isCancelled {
                    statistics.leftQueue()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let now = clock.now
                let (actions, estimate) = core.withLock { c -> ([BatchScheduler<ContinuousClock.Instant>.Action], Duration) in
                    c.waiters[id] = Waiter(continuation: continuation, inputs: submission.inputs, samples: submission.samples, arrival: now)
                    let request = BatchScheduler<ContinuousClock.Instant>.Request(
                        id: id, samples: submission.samples, shapeKey: submission.shapeKey, priority: submission.priority,
                        timeout: submission.timeout, deadline: submission.deadline, bytes: submission.bytes
                    )
                    return (c.machine.submit(request, now: now, minimumService: c.serviceEstimate), c.serviceEstimate)
                }
                perform(actions, inline: runsInline(estimate: estimate) ? id : nil)
            }
        } onCancel: {
            let waiter = core.withLock { c -> Waiter? in
                c.machine.cancel(id) ? c.waiters.removeValue(forKey: id) : nil
            }
            if let waiter {
                statistics.leftQueue()
                waiter.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Whether a lone request that finds an instance idle runs on the caller's thread instead of
    /// being handed to the instance's dispatch queue. Only for models that never batch (each
    /// request executes alone anyway, so nothing waits to join it) whose executions have been
    /// measured short: the caller's thread is the event loop that received the request, and
    /// the handoff there and back (two thread wake-ups) costs more than such a model's kernel.
    private func runsInline(estimate: Duration) -> Bool {
        inlineLimit > .zero && estimate > .zero && estimate < inlineLimit
    }

    /// Carries out the scheduler's actions. `inline` names the submitting request: an execution
    /// of that request alone runs here, on the caller's thread (see `runsInline`).
    private func perform(_ actions: [BatchScheduler<ContinuousClock.Instant>.Action], inline: UInt64? = nil) {
        for action in actions {
            switch action {
            case .reject(let id, let reason):
                if let waiter = core.withLock({ $0.waiters.removeValue(forKey: id) }) {
                    statistics.leftQueue()
                    waiter.continuation.resume(throwing: Self.error(for: reason))
                }
            case .execute(let instance, let ids, let epoch):
                let waiters = core.withLock { c in ids.compactMap { c.waiters.removeValue(forKey: $0) } }
                for _ in waiters { statistics.leftQueue() }
                let dispatched = clock.now
                if let inline, ids == [inline] {
                    execute(waiters, on: instance, epoch: epoch, dispatched: dispatched)
                    continue
                }
                queues[instance].async {
                    self.execute(waiters, on: instance, epoch: epoch, dispatched: dispatched)
                }
            case .wake(let at):
                let schedule = core.withLock { c -> Bool in
                    if let pending = c.pendingWake, pending <= at, pending > clock.now { return false }
                    c.pendingWake = at
                    return true
                }
                if schedule {
                    let delay = max(.zero, at - clock.now)
                    let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
                    timer.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) {
                        let now = self.clock.now
                        let actions = self.core.withLock { c -> [BatchScheduler<ContinuousClock.Instant>.Action] in
                            if c.pendingWake == at { c.pendingWake = nil }
                            return c.machine.wake(now: now)
                        }
                        self.perform(actions)
                    }
                }
            }
        }
    }

    /// Runs on the instance's queue: gather, execute, scatter, answer, then tell the scheduler.
    private func execute(_ waiters: [Waiter], on instance: Int, epoch: Int, dispatched: ContinuousClock.Instant) {
        let total = waiters.reduce(0) { $0 + $1.samples }
        let started = DispatchTime.now().uptimeNanoseconds
        var result: Result<[String: Tensor], any Error>
        var inferNs: UInt64 = 0
        var inputNs: UInt64 = 0
        do {
            let inputs = try gather(waiters, total: total)
            let gathered = DispatchTime.now().uptimeNanoseconds
            inputNs = gathered - started
            result = .success(try instances[instance].execute(inputs))
            inferNs = DispatchTime.now().uptimeNanoseconds - gathered
        } catch {
            result = .failure(error)
        }
        let scatterStart = DispatchTime.now().uptimeNanoseconds
        switch result {
        case .success(let outputs):
            let parts = scatter(outputs, samples: waiters.map(\.samples), total: total)
            let outputNs = DispatchTime.now().uptimeNanoseconds - scatterStart
            statistics.executed(batchSize: total, inputNs: inputNs, inferNs: inferNs, outputNs: outputNs)
            batchSizes.record(total)
            for (waiter, part) in zip(waiters, parts) {
                let queued = dispatched - waiter.arrival
                waiter.continuation.resume(
                    returning: Execution(outputs: part, queueNs: Self.nanoseconds(queued), computeNs: inferNs + inputNs + outputNs, batchSize: total)
                )
            }
        case .failure(let error):
            for waiter in waiters { waiter.continuation.resume(throwing: error) }
        }
        let now = clock.now
        let service = Duration.nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        let actions = core.withLock { c -> [BatchScheduler<ContinuousClock.Instant>.Action] in
            c.serviceEstimate = c.serviceEstimate == .zero ? service : (c.serviceEstimate * 7 + service) / 8
            return c.machine.finished(instance: instance, batchSize: total, epoch: epoch, latency: service + maxQueueDelay, now: now)
        }
        perform(actions)
    }

    /// One tensor per input: the requests' tensors concatenated along the batch dimension.
    private func gather(_ waiters: [Waiter], total: Int) throws -> [String: Tensor] {
        guard waiters.count > 1 else { return waiters.first?.inputs ?? [:] }
        var inputs: [String: Tensor] = [:]
        for (name, first) in waiters[0].inputs {
            var data: [UInt8] = []
            data.reserveCapacity(first.data.count / max(first.shape.first ?? 1, 1) * total)
            for waiter in waiters {
                guard let tensor = waiter.inputs[name] else {
                    throw FulcrumSchema.RuntimeError(code: .invalidInput, message: "batched requests disagree on input '\(name)'")
                }
                data.append(contentsOf: tensor.data)
            }
            var shape = first.shape
            shape[0] = total
            inputs[name] = Tensor(dataType: first.dataType, shape: shape, data: data)
        }
        return inputs
    }

    /// Splits each output along the batch dimension back into the requests' shares.
    private func scatter(_ outputs: [String: Tensor], samples: [Int], total: Int) -> [[String: Tensor]] {
        guard samples.count > 1 else { return [outputs] }
        var parts = Array(repeating: [String: Tensor](), count: samples.count)
        for (name, tensor) in outputs {
            let perSample = total > 0 ? tensor.data.count / total : 0
            var offset = 0
            for (index, count) in samples.enumerated() {
                var shape = tensor.shape
                shape[0] = count
                let bytes = Array(tensor.data[offset..<(offset + perSample * count)])
                parts[index][name] = Tensor(dataType: tensor.dataType, shape: shape, data: bytes)
                offset += perSample * count
            }
        }
        return parts
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let c = duration.components
        return UInt64(max(0, c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000))
    }

    /// The status a rejection is answered with.
    static func error(for rejection: BatchScheduler<ContinuousClock.Instant>.Rejection) -> RPCError {
        switch rejection {
        case .queueFull(let level, let size):
            RPCError(
                code: .unavailable, message: "exceeds maximum queue size (\(size) requests at priority level \(level))",
                metadata: [RejectionMetadata.key: "queue-full"]
            )
        case .memoryFull(let limit):
            RPCError(
                code: .unavailable, message: "exceeds maximum queue size (\(limit) bytes of queued tensors)",
                metadata: [RejectionMetadata.key: "queue-full"]
            )
        case .timedOut:
            RPCError(code: .unavailable, message: "request timeout expired while queued", metadata: [RejectionMetadata.key: "timeout"])
        case .deadlineExceeded:
            RPCError(
                code: .deadlineExceeded, message: "the request's deadline cannot be met: dropped before execution",
                metadata: [RejectionMetadata.key: "deadline"]
            )
        case .invalidPriority(let levels):
            RPCError(code: .invalidArgument, message: "parameter 'priority' must be 0 (the default) or a level in 1...\(levels)")
        }
    }
}

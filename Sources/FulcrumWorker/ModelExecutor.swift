import Dispatch
import FulcrumRuntime
import Foundation

/// Runs one model version's executions. Each of the model's instances (`instance_group.count`)
/// has its own serial dispatch queue, so compute never blocks Swift's cooperative thread pool;
/// requests beyond the free instances wait in line (that wait is the queue time).
final class ModelExecutor: Sendable {
    /// The outcome of one execution with its timing.
    struct Execution: Sendable {
        var outputs: [String: Tensor]
        var queueNs: UInt64
        var computeNs: UInt64
    }

    private let instances: [ModelInstance]
    private let queues: [DispatchQueue]
    private let pool: InstancePool

    init(model: Model) throws(FulcrumRuntime.RuntimeError) {
        let count = max(1, model.configuration.instanceGroups.reduce(0) { $0 + max($1.count, 1) })
        var instances: [ModelInstance] = []
        for _ in 0..<count { instances.append(try model.makeInstance()) }
        self.instances = instances
        self.queues = (0..<count).map { DispatchQueue(label: "fulcrum.model.\(model.name).\(model.version).\($0)") }
        self.pool = InstancePool(count: count)
    }

    /// Number of instances that may run at once.
    var instanceCount: Int { instances.count }

    /// Waits for an instance and runs `inputs` on it.
    /// `onStart` runs when the request leaves the queue, whether it then executes or not.
    func execute(_ inputs: [String: Tensor], onStart: @Sendable () -> Void) async throws -> Execution {
        let enqueued = DispatchTime.now().uptimeNanoseconds
        let index: Int
        do {
            index = try await pool.acquire()
            onStart()
        } catch {
            onStart()
            throw error
        }
        defer { pool.release(index) }
        let started = DispatchTime.now().uptimeNanoseconds
        let instance = instances[index]
        let outputs: [String: Tensor] = try await withCheckedThrowingContinuation { continuation in
            queues[index].async {
                do {
                    continuation.resume(returning: try instance.execute(inputs))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
        let finished = DispatchTime.now().uptimeNanoseconds
        return Execution(outputs: outputs, queueNs: started - enqueued, computeNs: finished - started)
    }
}

import Synchronization

/// Hands out a model's execution instances one caller at a time, first come first served.
/// Waiters that are cancelled leave the line at once and never take an instance.
final class InstancePool: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Int, any Error>
    }

    private struct State {
        var free: [Int]
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    /// A pool of `count` instances numbered 0..<count.
    init(count: Int) {
        state = Mutex(State(free: Array((0..<count).reversed())))
    }

    /// Waits for a free instance; throws CancellationError if the caller is cancelled first.
    func acquire() async throws -> Int {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let immediate: Int?? = state.withLock { s in
                    if Task.isCancelled { return .some(nil) }
                    if let index = s.free.popLast() { return .some(index) }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                switch immediate {
                case .some(.some(let index)): continuation.resume(returning: index)
                case .some(.none): continuation.resume(throwing: CancellationError())
                case .none: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                guard let position = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: position)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Returns an instance, handing it straight to the longest waiter if there is one.
    func release(_ index: Int) {
        let waiter = state.withLock { s -> Waiter? in
            if s.waiters.isEmpty {
                s.free.append(index)
                return nil
            }
            return s.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: index)
    }
}

import FulcrumProtocol
import Foundation
import Synchronization

/// Fans pool snapshots out to every `WatchPool` stream: the service edge where the registry's
/// `Pool` becomes the wire's snapshot, once per change whatever the number of watchers. A slow
/// watcher only ever holds the newest snapshot (older ones are dropped), so it cannot make the
/// balancer buffer without bound.
final class SnapshotHub: Sendable {
    private let watchers = Mutex<[UUID: AsyncStream<Fulcrum_Control_V1_PoolSnapshot>.Continuation]>([:])

    /// Registers a watcher; the stream ends when `remove` is called with the returned id.
    func subscribe() -> (UUID, AsyncStream<Fulcrum_Control_V1_PoolSnapshot>) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Fulcrum_Control_V1_PoolSnapshot.self,
            bufferingPolicy: .bufferingNewest(1)
        )
        let id = UUID()
        watchers.withLock { $0[id] = continuation }
        return (id, stream)
    }

    func remove(_ id: UUID) {
        let continuation = watchers.withLock { $0.removeValue(forKey: id) }
        continuation?.finish()
    }

    /// Sends `pool` to every watcher.
    func publish(_ pool: Pool) {
        let snapshot = pool.wire
        for continuation in watchers.withLock({ Array($0.values) }) {
            continuation.yield(snapshot)
        }
    }

    /// Ends every stream.
    func closeAll() {
        for continuation in watchers.withLock({ w -> [AsyncStream<Fulcrum_Control_V1_PoolSnapshot>.Continuation] in
            defer { w.removeAll() }
            return Array(w.values)
        }) {
            continuation.finish()
        }
    }

    var count: Int { watchers.withLock { $0.count } }
}

import NIOCore

/// One flush per event-loop tick for a channel handler that writes outside its reads (answers
/// resumed by another connection's read, calls started by tasks): `schedule()` runs the
/// handler's flush once the loop has run what is already queued on it, so what a burst writes
/// leaves in one system call. Used by the edge (`EdgeConnection`) and the frontend's worker
/// connections (`WorkerStreams`). Confined to its loop.
package final class DeferredFlush {
    private let loop: any EventLoop
    private let flush: () -> Void
    private var scheduled = false

    /// `flush` writes what the handler has pending; hold the handler weakly in it (the handler
    /// owns this object).
    package init(loop: any EventLoop, flush: @escaping () -> Void) {
        self.loop = loop
        self.flush = flush
    }

    /// Schedules the flush unless one is scheduled already.
    package func schedule() {
        guard !scheduled else { return }
        scheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            bound.value.scheduled = false
            bound.value.flush()
        }
    }
}

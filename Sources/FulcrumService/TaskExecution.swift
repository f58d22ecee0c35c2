import NIOCore
import NIOPosix

/// Where a service's Swift tasks run. Fulcrum's services spend their time handing requests
/// between threads, not computing (docs/performance.md): with Swift's default executor a gRPC
/// call moves from the NIO event loop that read it to a cooperative-pool thread for its handler
/// and back to the event loop for its response, and each move is a futex or eventfd wake-up and a
/// context switch. `eventLoop` makes NIO's singleton event loops (the ones every gRPC transport
/// and the HTTP edge use) Swift's global executor, so a request's task runs on the loop that
/// received it and its response is written without another thread.
///
/// Measured side by side (docs/performance.md, loadtests/results/2026-12-05-hotpath, 2-core AMD
/// EPYC, ranking_mlp through `fulcrum up --workers 2`): `eventLoop` spends 10–26 % less CPU per
/// request than `pool` (C=1: 1,183 against 1,316 µs; C=32: 536 against 702 µs) and serves up to
/// 31 % more requests a second. With it a task that blocks blocks that loop's I/O: model
/// execution stays on each instance's dispatch queue (except a short lone request of a model
/// that does not batch, see `ModelScheduler`).
public enum TaskExecution: String, Sendable, CaseIterable {
    /// NIO's event loops run every task (the default for the frontend and the worker).
    case eventLoop = "event-loop"
    /// Swift's own cooperative pool runs tasks; NIO's loops only do I/O.
    case pool

    /// Makes this choice the process's: for `eventLoop`, installs NIO's singleton event loop
    /// group as Swift concurrency's global executor. Call once, at start, before serving; later
    /// tasks run there, tasks already queued finish where they are. Returns false when the hook
    /// could not be installed (another library took it); tasks then stay on the pool.
    @discardableResult
    public func adopt() -> Bool {
        switch self {
        case .pool: return true
        case .eventLoop: return NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
    }

    /// Text for the `--executor` option's help.
    public static let help =
        "Where Swift tasks run: event-loop (NIO's event loops run each request's task on the loop that received it: no thread hand-offs) or pool (Swift's cooperative pool, a hand-off to it and back per request)."
}

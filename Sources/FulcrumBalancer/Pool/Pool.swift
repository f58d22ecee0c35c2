import FulcrumService

/// The pool as the registry publishes it, to frontends (WatchPool), the CLI (Status), placement,
/// the autoscaler and the scaler: workers sorted by id, with the models placement is moving away
/// shown UNLOADING, and the traffic routes in force. Mapped to the wire's `PoolSnapshot` only
/// where it leaves the balancer (`Pool+Wire.swift`).
public struct Pool: Sendable, Equatable {
    /// Increases with every change.
    public var generation: UInt64
    public var workers: [WorkerRecord]
    /// By model.
    public var routes: [TrafficRoute]

    public init(generation: UInt64 = 0, workers: [WorkerRecord] = [], routes: [TrafficRoute] = []) {
        self.generation = generation
        self.workers = workers
        self.routes = routes
    }
}

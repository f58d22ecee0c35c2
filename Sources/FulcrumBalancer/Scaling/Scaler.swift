/// Carries out the autoscaler's decisions on some substrate: processes on this host, a
/// Kubernetes Deployment, or nothing at all (report only).
public protocol Scaler: Sendable {
    /// `static`, `process` or `kubernetes`, for status and metrics.
    var kind: String { get }
    /// Workers the scaler has now (started or starting, not those stopping); nil when unknown,
    /// so the autoscaler uses the pool it sees.
    func current(pool: Pool) async -> Int?
    /// Makes the pool `desired` workers. Scale-downs drain: the workers chosen leave the routing
    /// snapshot first and finish their in-flight and queued work before they stop.
    func scale(to desired: Int, pool: Pool) async throws
    /// Periodic housekeeping (restart crashed workers); called on every autoscaler tick.
    func maintain() async
    /// Stops what the scaler started (balancer shutdown).
    func shutdown() async
}

/// Report only: the balancer computes and exports the desired size (`fulcrum status`,
/// `fulcrum_desired_workers`) and something else acts on it — an operator, an HPA or KEDA.
public struct StaticScaler: Scaler {
    public init() {}
    public var kind: String { "static" }
    public func current(pool: Pool) async -> Int? { nil }
    public func scale(to desired: Int, pool: Pool) async throws {}
    public func maintain() async {}
    public func shutdown() async {}
}

/// The compute pool's size at one moment, sampled from a Fulcrum balancer's `Status`.
public struct PoolSample: Sendable, Codable, Equatable {
    /// Seconds since the start of the test.
    public var t: Double
    /// Workers in the pool (any state).
    public var workers: Int
    /// Workers READY.
    public var ready: Int

    /// A sample.
    public init(t: Double, workers: Int, ready: Int) {
        self.t = t
        self.workers = workers
        self.ready = ready
    }
}

/// Picks the worker for a request: power-of-two-choices over the candidates, by load = this
/// frontend's outstanding calls to the worker + the queue depth the worker last reported. A pure
/// value: the caller passes the candidates and the random source, so it is tested
/// deterministically.
public struct Router: Sendable {
    /// One worker that can serve the request.
    public struct Candidate: Sendable, Equatable {
        public var workerID: String
        public var outstanding: Int
        public var reportedQueueDepth: Int

        public init(workerID: String, outstanding: Int, reportedQueueDepth: Int) {
            self.workerID = workerID
            self.outstanding = outstanding
            self.reportedQueueDepth = reportedQueueDepth
        }

        /// The load the choice compares.
        public var load: Int { outstanding + reportedQueueDepth }
    }

    public init() {}

    /// Chooses among `candidates`, skipping the ids in `excluding` unless nothing else is left.
    /// Returns nil only when `candidates` is empty.
    public func choose<R: RandomNumberGenerator>(
        from candidates: [Candidate],
        excluding: Set<String> = [],
        using random: inout R
    ) -> Candidate? {
        let preferred = candidates.filter { !excluding.contains($0.workerID) }
        let pool = preferred.isEmpty ? candidates : preferred
        switch pool.count {
        case 0: return nil
        case 1: return pool[0]
        default:
            let first = Int.random(in: 0..<pool.count, using: &random)
            var second = Int.random(in: 0..<(pool.count - 1), using: &random)
            if second >= first { second += 1 }
            let a = pool[first]
            let b = pool[second]
            return b.load < a.load ? b : a
        }
    }
}

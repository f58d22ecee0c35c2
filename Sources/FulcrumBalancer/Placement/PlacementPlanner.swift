/// Which workers should host which models under `--placement demand`: a pure function of the
/// pool (what each worker hosts and its memory) and each model's demand (the workers its plan
/// needs), so it is tested without a cluster.
///
/// Rules, in order: every model keeps at least one replica and at most one per worker; models
/// with the largest demand choose first; a model stays where it already is (READY replicas
/// before LOADING ones, then workers hosting fewer models) so placement changes only when demand
/// does; a new replica goes to the worker hosting the fewest models, among those with room for
/// its weights (free memory = the worker's memory − the weights it holds; 0 memory means
/// unknown and always has room); a surplus replica is unloaded only while another chosen
/// replica is READY, so the model is never left without a server.
public enum PlacementPlanner {
    /// A model on a worker.
    public struct Hosted: Sendable, Equatable {
        /// READY, LOADING or UNLOADING.
        public var state: HostedModel.State
        public var bytes: UInt64
        public init(state: HostedModel.State, bytes: UInt64) {
            self.state = state
            self.bytes = bytes
        }
    }

    /// A worker as placement sees it.
    public struct Worker: Sendable, Equatable {
        public var id: String
        /// Memory for model weights (device memory for an accelerator); 0 when unknown.
        public var memoryBytes: UInt64
        public var hosted: [String: Hosted]
        public init(id: String, memoryBytes: UInt64, hosted: [String: Hosted]) {
            self.id = id
            self.memoryBytes = memoryBytes
            self.hosted = hosted
        }
    }

    /// How many workers a model needs, and the memory one replica takes.
    public struct Demand: Sendable, Equatable {
        public var model: String
        public var workers: Int
        public var bytes: UInt64
        public init(model: String, workers: Int, bytes: UInt64) {
            self.model = model
            self.workers = workers
            self.bytes = bytes
        }
    }

    /// A move toward the assignment.
    public enum Action: Sendable, Hashable, CustomStringConvertible {
        case load(worker: String, model: String)
        case unload(worker: String, model: String)

        public var worker: String {
            switch self {
            case .load(let worker, _), .unload(let worker, _): worker
            }
        }

        public var description: String {
            switch self {
            case .load(let worker, let model): "load \(model) on \(worker)"
            case .unload(let worker, let model): "unload \(model) from \(worker)"
            }
        }
    }

    /// The workers chosen for each model and the loads and unloads that get there.
    public static func plan(workers: [Worker], demands: [Demand]) -> (assignment: [String: [String]], actions: [Action]) {
        guard !workers.isEmpty else { return ([:], []) }
        var free: [String: Int64] = [:]
        var modelCount: [String: Int] = [:]
        for worker in workers {
            let used = worker.hosted.values.filter { $0.state != .unloading }.reduce(UInt64(0)) { $0 + $1.bytes }
            free[worker.id] = worker.memoryBytes == 0 ? Int64.max : Int64(worker.memoryBytes) - Int64(used)
            modelCount[worker.id] = worker.hosted.values.filter { $0.state != .unloading }.count
        }
        var assignment: [String: [String]] = [:]
        var actions: [Action] = []
        let ordered = demands.sorted { ($0.workers, $1.model) > ($1.workers, $0.model) }
        for demand in ordered {
            let wanted = min(max(demand.workers, 1), workers.count)
            let holders = workers.filter { ($0.hosted[demand.model]?.state).map { $0 == .ready || $0 == .loading } ?? false }
                .sorted { a, b in
                    let ra = a.hosted[demand.model]?.state == .ready, rb = b.hosted[demand.model]?.state == .ready
                    if ra != rb { return ra }
                    if modelCount[a.id]! != modelCount[b.id]! { return modelCount[a.id]! < modelCount[b.id]! }
                    return a.id < b.id
                }
            var chosen = Array(holders.prefix(wanted)).map(\.id)
            if chosen.count < wanted {
                let candidates = workers.filter { !chosen.contains($0.id) && $0.hosted[demand.model]?.state != .unloading }
                    .filter { free[$0.id]! >= Int64(demand.bytes) }
                    .sorted { a, b in
                        if modelCount[a.id]! != modelCount[b.id]! { return modelCount[a.id]! < modelCount[b.id]! }
                        if free[a.id]! != free[b.id]! { return free[a.id]! > free[b.id]! }
                        return a.id < b.id
                    }
                for worker in candidates.prefix(wanted - chosen.count) {
                    chosen.append(worker.id)
                    actions.append(.load(worker: worker.id, model: demand.model))
                    free[worker.id]! -= Int64(demand.bytes)
                    modelCount[worker.id]! += 1
                }
            }
            assignment[demand.model] = chosen.sorted()
            let served = holders.contains { chosen.contains($0.id) && $0.hosted[demand.model]?.state == .ready }
            if served {
                for surplus in holders where !chosen.contains(surplus.id) {
                    actions.append(.unload(worker: surplus.id, model: demand.model))
                    modelCount[surplus.id]! -= 1
                }
            }
        }
        return (assignment, actions)
    }
}

/// What a joining worker says about itself, in the registry's terms (mapped from the wire's
/// `JoinRequest` at the control service, `Pool+Wire.swift`).
public struct WorkerJoin: Sendable, Equatable {
    /// host:port where frontends reach its inference service.
    public var address: String
    public var zone: String
    public var backend: String
    public var device: WorkerRecord.Device
    public var pid: Int32
    /// A name chosen by the operator or the scaler (stable across restarts), may be empty.
    public var name: String
    public var models: [HostedModel]
    /// host:port of its Prometheus endpoint; empty when it serves none.
    public var metricsAddress: String

    public init(
        address: String, zone: String = "", backend: String = "", device: WorkerRecord.Device = .init(), pid: Int32 = 0, name: String = "",
        models: [HostedModel] = [], metricsAddress: String = ""
    ) {
        self.address = address
        self.zone = zone
        self.backend = backend
        self.device = device
        self.pid = pid
        self.name = name
        self.models = models
        self.metricsAddress = metricsAddress
    }
}

/// One report on a worker's Report stream, in the registry's terms (mapped from the wire's
/// `WorkerReport` at the control service, `Pool+Wire.swift`): its state, load and models, sent in
/// full every time.
public struct WorkerReport: Sendable, Equatable {
    public var workerID: String
    public var state: WorkerRecord.State
    public var load: WorkerLoad
    public var models: [HostedModel]

    public init(workerID: String, state: WorkerRecord.State, load: WorkerLoad = .init(), models: [HostedModel] = []) {
        self.workerID = workerID
        self.state = state
        self.load = load
        self.models = models
    }
}

import FulcrumProtocol
import FulcrumService

// The control plane's membership messages in the registry's terms, and the pool back as the
// wire's snapshot: the one place the balancer's pool meets the wire (used by the control service
// and the snapshot hub).

extension WorkerJoin {
    /// A join from the control plane's message (its address is checked by the control service).
    public init(_ request: Fulcrum_Control_V1_JoinRequest) {
        self.init(
            address: request.address, zone: request.zone, backend: request.backend, device: WorkerRecord.Device(request.device),
            pid: request.pid, name: request.name, models: request.models.map(HostedModel.init), metricsAddress: request.metricsAddress)
    }
}

extension WorkerReport {
    /// A report from the control plane's message.
    public init(_ report: Fulcrum_Control_V1_WorkerReport) {
        self.init(
            workerID: report.workerID, state: WorkerRecord.State(report.state), load: WorkerLoad(report.load),
            models: report.models.map(HostedModel.init))
    }
}

extension Pool {
    /// The snapshot frontends and the CLI receive.
    public var wire: Fulcrum_Control_V1_PoolSnapshot {
        var snapshot = Fulcrum_Control_V1_PoolSnapshot()
        snapshot.generation = generation
        snapshot.workers = workers.map(\.wire)
        snapshot.routes = routes.map(\.wire)
        return snapshot
    }
}

extension WorkerRecord {
    /// The worker as a snapshot lists it (`last_load` stays unset before its first report).
    public var wire: Fulcrum_Control_V1_WorkerInfo {
        var info = Fulcrum_Control_V1_WorkerInfo()
        info.workerID = id
        info.address = address
        info.zone = zone
        info.backend = backend
        info.device = device.wire
        info.pid = pid
        info.metricsAddress = metricsAddress
        info.name = name
        info.state = state.wire
        info.models = models.map(\.wire)
        if let lastLoad { info.lastLoad = lastLoad.wire }
        info.joinedUnixMs = joinedUnixMs
        info.lastReportUnixMs = lastReportUnixMs
        return info
    }
}

extension WorkerRecord.State {
    /// A state this balancer does not know reads as unspecified.
    public init(_ wire: Fulcrum_Control_V1_WorkerState) {
        switch wire {
        case .starting: self = .starting
        case .ready: self = .ready
        case .draining: self = .draining
        case .unready: self = .unready
        default: self = .unspecified
        }
    }

    public var wire: Fulcrum_Control_V1_WorkerState {
        switch self {
        case .unspecified: .unspecified
        case .starting: .starting
        case .ready: .ready
        case .draining: .draining
        case .unready: .unready
        }
    }
}

extension WorkerRecord.Device {
    public init(_ wire: Fulcrum_Control_V1_DeviceInfo) {
        self.init(name: wire.name, vendor: wire.vendor, driver: wire.driver, memoryBytes: wire.memoryBytes)
    }

    public var wire: Fulcrum_Control_V1_DeviceInfo {
        var device = Fulcrum_Control_V1_DeviceInfo()
        device.name = name
        device.vendor = vendor
        device.driver = driver
        device.memoryBytes = memoryBytes
        return device
    }
}

extension HostedModel {
    public init(_ wire: Fulcrum_Control_V1_HostedModel) {
        self.init(
            name: wire.name, version: wire.version, state: State(rawValue: wire.state), reason: wire.reason, contentHash: wire.contentHash,
            latencyTargetMs: wire.latencyTargetMs, maxBatchSize: wire.maxBatchSize, memoryBytes: wire.memoryBytes)
    }

    public var wire: Fulcrum_Control_V1_HostedModel {
        var model = Fulcrum_Control_V1_HostedModel()
        model.name = name
        model.version = version
        model.state = state.rawValue
        model.reason = reason
        model.contentHash = contentHash
        model.latencyTargetMs = latencyTargetMs
        model.maxBatchSize = maxBatchSize
        model.memoryBytes = memoryBytes
        return model
    }
}

extension WorkerLoad {
    public init(_ wire: Fulcrum_Control_V1_LoadReport) {
        self.init(
            queueDepth: wire.queueDepth, inFlight: wire.inFlight, utilization: wire.utilization,
            models: wire.models.map { model in
                Model(
                    name: model.name, version: model.version, arrivals: model.arrivals, queueDepth: model.queueDepth,
                    batches: model.samples.map { Batch(size: $0.batchSize, serviceMicroseconds: $0.serviceUs) }, dequeued: model.dequeued,
                    queueMicroseconds: model.queueUsTotal)
            },
            sentUnixMs: wire.sentUnixMs)
    }

    public var wire: Fulcrum_Control_V1_LoadReport {
        var load = Fulcrum_Control_V1_LoadReport()
        load.queueDepth = queueDepth
        load.inFlight = inFlight
        load.utilization = utilization
        load.models = models.map { model in
            var m = Fulcrum_Control_V1_ModelLoad()
            m.name = model.name
            m.version = model.version
            m.arrivals = model.arrivals
            m.queueDepth = model.queueDepth
            m.samples = model.batches.map { batch in
                var sample = Fulcrum_Control_V1_BatchSample()
                sample.batchSize = batch.size
                sample.serviceUs = batch.serviceMicroseconds
                return sample
            }
            m.dequeued = model.dequeued
            m.queueUsTotal = model.queueMicroseconds
            return m
        }
        load.sentUnixMs = sentUnixMs
        return load
    }
}

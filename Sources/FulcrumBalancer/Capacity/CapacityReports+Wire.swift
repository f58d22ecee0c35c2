import FulcrumProtocol

// The control plane's messages in the capacity model's terms: the one place the balancer's
// capacity logic meets the wire.

extension WorkerCapacityReport {
    public init(_ report: Fulcrum_Control_V1_WorkerReport) {
        self.init(
            hosted: report.models.filter { $0.state == "READY" }.map {
                Hosted(name: $0.name, maxBatchSize: max(1, Int($0.maxBatchSize)), target: $0.latencyTargetMs > 0 ? $0.latencyTargetMs / 1000 : nil)
            },
            load: report.load.models.map { load in
                Load(
                    name: load.name, arrivals: load.arrivals, dequeued: load.dequeued, queueMicroseconds: load.queueUsTotal,
                    batches: load.samples.map { Load.Batch(size: Int($0.batchSize), seconds: Double($0.serviceUs) / 1_000_000) })
            })
    }
}

extension NetworkReport {
    public init(_ report: Fulcrum_Control_V1_FrontendReport) {
        self.init(samples: report.models.map {
            Sample(model: $0.model, requests: $0.requests, totalMicroseconds: $0.networkUsTotal, p99Microseconds: $0.networkUsP99)
        })
    }
}

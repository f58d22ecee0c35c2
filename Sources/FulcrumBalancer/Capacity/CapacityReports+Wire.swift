import FulcrumProtocol

// The control plane's messages in the capacity model's terms: the one place the balancer's
// capacity logic meets the wire (worker reports reach it through the registry's `WorkerReport`,
// mapped in `Pool+Wire.swift`).

extension NetworkReport {
    public init(_ report: Fulcrum_Control_V1_FrontendReport) {
        self.init(samples: report.models.map {
            Sample(model: $0.model, requests: $0.requests, totalMicroseconds: $0.networkUsTotal, p99Microseconds: $0.networkUsP99)
        })
    }
}

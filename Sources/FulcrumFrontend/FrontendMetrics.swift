import FulcrumService
import Metrics
import Synchronization

/// The frontend's Prometheus handles for answered predictions, made once per model rather than
/// once per request: each `Counter(label:dimensions:)` or `Timer(label:dimensions:)` is a
/// registry lookup under a lock with its label strings built anew, and a prediction records
/// eleven of them. Only models a request was routed to get handles (a name a client made up
/// never does), so the table is bounded by the models in the pool.
final class FrontendMetrics: Sendable {
    /// One model's handles.
    struct Model: Sendable {
        let answered: Counter
        let seconds: Metrics.Timer
        /// `fulcrum_hop_seconds` for the frontend, network, queue and compute hops, in that order.
        let hops: [Metrics.Timer]
    }

    /// The response parameters that carry each hop's microseconds, in `Model.hops`' order.
    static let hopParameters = [
        ResponseParameters.frontend, ResponseParameters.network, ResponseParameters.queue, ResponseParameters.compute,
    ]

    private let models = Mutex<[String: Model]>([:])
    /// `fulcrum_tensor_bytes_total` by hop (client, worker) and direction.
    let clientRequestBytes = Counter(label: "fulcrum_tensor_bytes_total", dimensions: [("hop", "client"), ("direction", "request")])
    let clientResponseBytes = Counter(label: "fulcrum_tensor_bytes_total", dimensions: [("hop", "client"), ("direction", "response")])
    let workerRequestBytes = Counter(label: "fulcrum_tensor_bytes_total", dimensions: [("hop", "worker"), ("direction", "request")])
    let workerResponseBytes = Counter(label: "fulcrum_tensor_bytes_total", dimensions: [("hop", "worker"), ("direction", "response")])

    /// The handles for `name`, made on first use.
    func model(_ name: String) -> Model {
        if let existing = models.withLock({ $0[name] }) { return existing }
        let dimensions = [("model", name)]
        let made = Model(
            answered: Counter(label: "fulcrum_frontend_requests_total", dimensions: dimensions + [("code", "OK")]),
            seconds: Metrics.Timer(label: "fulcrum_frontend_request_seconds", dimensions: dimensions),
            hops: ["frontend", "network", "queue", "compute"].map {
                Metrics.Timer(label: "fulcrum_hop_seconds", dimensions: dimensions + [("hop", $0)])
            }
        )
        return models.withLock { table in
            if let raced = table[name] { return raced }
            table[name] = made
            return made
        }
    }
}

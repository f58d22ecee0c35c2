import Foundation
import FulcrumRuntime
import FulcrumSchema
import FulcrumService
import Metrics

/// One model version this worker serves: the loaded model, its signature, its scheduler (queue,
/// dynamic batcher, instances) and its statistics.
final class ServedModel: Sendable {
    let model: Model
    let signature: ModelSignature
    let statistics: ModelStatistics
    let scheduler: ModelScheduler
    /// Class labels per output, from the outputs' `label_filename` (one label a line).
    let labels: [String: [String]]
    /// Its Prometheus handles for answered requests, made once (a registry lookup each) rather
    /// than per request.
    let metrics: Metrics

    /// The handles `WorkerInferenceService` records an answered request with.
    struct Metrics: Sendable {
        let answered: Counter
        let seconds: Timer
        let queue: Timer
        let compute: Timer

        init(model: String) {
            let dimensions = [("model", model)]
            answered = Counter(label: "fulcrum_worker_requests_total", dimensions: dimensions + [("code", "OK")])
            seconds = Timer(label: "fulcrum_worker_request_seconds", dimensions: dimensions)
            queue = Timer(label: "fulcrum_worker_queue_seconds", dimensions: dimensions)
            compute = Timer(label: "fulcrum_worker_compute_seconds", dimensions: dimensions)
        }
    }

    init(model: Model, folder: String, emulation: EmulationProfile? = nil) throws(FulcrumSchema.RuntimeError) {
        self.model = model
        var labels: [String: [String]] = [:]
        for output in model.configuration.outputs {
            guard let file = output.labelFilename, !file.isEmpty else { continue }
            let path = (folder as NSString).appendingPathComponent(file)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw RuntimeError(code: .invalidConfiguration, message: "output '\(output.name)': cannot read its label file \(path)")
            }
            labels[output.name] = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        }
        self.labels = labels
        self.signature = ModelSignature(configuration: model.configuration, version: String(model.version))
        let statistics = ModelStatistics()
        self.statistics = statistics
        self.scheduler = try ModelScheduler(model: model, statistics: statistics, emulation: emulation)
        self.metrics = Metrics(model: model.name)
    }

    var name: String { model.name }
    var version: String { String(model.version) }
}

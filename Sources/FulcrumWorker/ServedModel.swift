import FulcrumRuntime
import FulcrumService

/// One model version this worker serves: the loaded model, its signature, its scheduler (queue,
/// dynamic batcher, instances) and its statistics.
final class ServedModel: Sendable {
    let model: Model
    let signature: ModelSignature
    let statistics: ModelStatistics
    let scheduler: ModelScheduler

    init(model: Model) throws(FulcrumRuntime.RuntimeError) {
        self.model = model
        self.signature = ModelSignature(configuration: model.configuration, version: String(model.version))
        let statistics = ModelStatistics()
        self.statistics = statistics
        self.scheduler = try ModelScheduler(model: model, statistics: statistics)
    }

    var name: String { model.name }
    var version: String { String(model.version) }
}

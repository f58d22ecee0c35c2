import FulcrumRuntime
import FulcrumService

/// One model version this worker serves: the loaded model, its signature, its executor and its
/// statistics.
final class ServedModel: Sendable {
    let model: Model
    let signature: ModelSignature
    let executor: ModelExecutor
    let statistics = ModelStatistics()

    init(model: Model) throws(FulcrumRuntime.RuntimeError) {
        self.model = model
        self.signature = ModelSignature(configuration: model.configuration, version: String(model.version))
        self.executor = try ModelExecutor(model: model)
    }

    var name: String { model.name }
    var version: String { String(model.version) }
}

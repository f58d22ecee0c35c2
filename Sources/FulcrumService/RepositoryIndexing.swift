import FulcrumProtocol

/// Builds RepositoryIndex entries from hosted-model records (a worker's own, or the union the
/// balancer's snapshot gives a frontend).
public enum RepositoryIndexing {
    /// One entry per model and version, READY winning over UNAVAILABLE when copies disagree
    /// (some worker can serve it), sorted by name then version.
    public static func entries(
        _ hosted: [Fulcrum_Control_V1_HostedModel],
        readyOnly: Bool
    ) -> [Inference_RepositoryIndexResponse.ModelIndex] {
        var byKey: [String: Inference_RepositoryIndexResponse.ModelIndex] = [:]
        for model in hosted {
            let key = model.name + "\u{0}" + model.version
            if let existing = byKey[key], existing.state == "READY" { continue }
            var entry = Inference_RepositoryIndexResponse.ModelIndex()
            entry.name = model.name
            entry.version = model.version
            entry.state = model.state
            entry.reason = model.reason
            byKey[key] = entry
        }
        return byKey.values
            .filter { !readyOnly || $0.state == "READY" }
            .sorted { ($0.name, Int($0.version) ?? -1) < ($1.name, Int($1.version) ?? -1) }
    }
}

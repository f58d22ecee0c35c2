import FulcrumProtocol
import FulcrumSchema
import FulcrumService
import GRPCCore
import Synchronization

/// Model configurations fetched from workers, keyed by model, version and content hash, so the
/// frontend validates requests and answers metadata without asking a worker each time.
final class SignatureCache: Sendable {
    /// A model version's configuration as a worker reported it, and its signature.
    struct Entry: Sendable {
        var config: Inference_ModelConfig
        var signature: ModelSignature
    }

    private let entries = Mutex<[String: Entry]>([:])

    private static func key(_ name: String, _ version: String, _ hash: String) -> String {
        "\(name)\u{0}\(version)\u{0}\(hash)"
    }

    /// The cached entry, or the one `fetch` returns (then cached).
    func entry(
        name: String, version: String, hash: String,
        fetch: () async throws -> Inference_ModelConfig
    ) async throws -> Entry {
        let key = Self.key(name, version, hash)
        if let cached = entries.withLock({ $0[key] }) { return cached }
        let config = try await fetch()
        let configuration = try ModelConfiguration(wire: config)
        let entry = Entry(config: config, signature: ModelSignature(configuration: configuration, version: version))
        entries.withLock { $0[key] = entry }
        return entry
    }
}

import FulcrumBalancer
import Logging

/// The `kubernetes` scaler: the autoscaler's desired size becomes the worker Deployment's
/// replica count (the scale subresource). Kubernetes picks the pods to remove; each gets
/// SIGTERM and drains (reports DRAINING, finishes its work) within its termination grace period.
public struct KubernetesScaler: Scaler {
    let client: KubernetesScaleClient
    let logger: Logger

    public init(client: KubernetesScaleClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public var kind: String { "kubernetes" }

    /// The Deployment's desired replicas (nil when the API server cannot be read: the
    /// autoscaler then counts the pool it sees).
    public func current(pool: Pool) async -> Int? {
        do {
            return try await client.replicas().spec
        } catch {
            logger.warning("cannot read the worker Deployment's scale: \(error)")
            return nil
        }
    }

    public func scale(to desired: Int, pool: Pool) async throws {
        try await client.setReplicas(desired)
    }

    public func maintain() async {}

    public func shutdown() async {
        try? await client.shutdown()
    }
}

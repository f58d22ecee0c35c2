import FulcrumProtocol
import FulcrumService
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOSSL
import ServiceLifecycle
import Synchronization

/// One gRPC client (one HTTP/2 connection, multiplexed) per worker address for the control
/// calls, and one `WorkerLink` (a connection per event loop) for ModelInfer, created on first use
/// and closed when the worker leaves the pool. Runs as a service: the clients' connection loops
/// live in its task group, so none outlives the frontend.
final class WorkerClients: Service, Sendable {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    private struct State {
        var clients: [HostPort: Client] = [:]
        var links: [HostPort: WorkerLink] = [:]
        var outstanding: [String: Int] = [:]
    }

    private let state = Mutex(State())
    private let maxMessageBytes: Int
    private let tls: ClusterTLS?
    /// The TLS client context every `WorkerLink` shares (nil: plaintext).
    private let linkTLS: NIOSSLContext?
    private let logger: Logger
    private let (newClients, newClientsContinuation) = AsyncStream.makeStream(of: Client.self)

    init(maxMessageBytes: Int, tls: ClusterTLS?, logger: Logger) throws(ClusterTLSError) {
        self.maxMessageBytes = maxMessageBytes
        self.tls = tls
        self.linkTLS = try tls?.clientContext()
        self.logger = logger
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await client in newClients {
                    group.addTask {
                        do {
                            try await client.runConnections()
                        } catch {
                            self.logger.debug("worker connection ended: \(error)")
                        }
                    }
                }
            } onGracefulShutdown: {
                self.newClientsContinuation.finish()
                self.closeAll()
            }
        }
    }

    /// The inference client for a worker.
    func inference(_ address: HostPort) throws -> Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix> {
        Inference_GRPCInferenceService.Client(wrapping: try client(address))
    }

    /// The ModelInfer path to a worker (raw HTTP/2 frames, see `WorkerLink`).
    func link(_ address: HostPort) -> WorkerLink {
        if let existing = state.withLock({ $0.links[address] }) { return existing }
        let created = WorkerLink(address: address, maxMessageBytes: maxMessageBytes, tls: linkTLS, revocations: tls)
        return state.withLock { s in
            if let raced = s.links[address] { return raced }
            s.links[address] = created
            return created
        }
    }

    private func client(_ address: HostPort) throws -> Client {
        if let existing = state.withLock({ $0.clients[address] }) { return existing }
        let created = try GRPCTransport.client(address, maxMessageBytes: maxMessageBytes, tls: tls)
        let (client, isNew) = state.withLock { s -> (Client, Bool) in
            if let raced = s.clients[address] { return (raced, false) }
            s.clients[address] = created
            return (created, true)
        }
        if isNew { newClientsContinuation.yield(client) }
        return client
    }

    /// Closes clients for addresses no longer in the pool.
    func retain(only addresses: Set<HostPort>) {
        let (stale, staleLinks) = state.withLock { s -> ([Client], [WorkerLink]) in
            let gone = s.clients.keys.filter { !addresses.contains($0) }
            let goneLinks = s.links.keys.filter { !addresses.contains($0) }
            return (gone.compactMap { s.clients.removeValue(forKey: $0) }, goneLinks.compactMap { s.links.removeValue(forKey: $0) })
        }
        for client in stale { client.beginGracefulShutdown() }
        for link in staleLinks { link.close() }
    }

    private func closeAll() {
        let (all, links) = state.withLock { s -> ([Client], [WorkerLink]) in
            defer {
                s.clients.removeAll()
                s.links.removeAll()
            }
            return (Array(s.clients.values), Array(s.links.values))
        }
        for client in all { client.beginGracefulShutdown() }
        for link in links { link.close() }
    }

    /// Calls this frontend has in flight to `workerID`.
    func outstanding(_ workerID: String) -> Int {
        state.withLock { $0.outstanding[workerID] ?? 0 }
    }

    /// Counts a call to `workerID` for the duration of `body`.
    func tracking<T>(_ workerID: String, _ body: () async throws -> T) async throws -> T {
        state.withLock { $0.outstanding[workerID, default: 0] += 1 }
        defer { state.withLock { $0.outstanding[workerID, default: 1] -= 1 } }
        return try await body()
    }
}

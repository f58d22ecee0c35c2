import FulcrumProtocol
import FulcrumService
import GRPCCore
import Logging
import ServiceLifecycle

/// Keeps the frontend's `PoolView` current: holds a WatchPool stream to the balancer and
/// reconnects when it breaks. While the balancer is away the last snapshot stays in use. Once a
/// second it also sends the balancer the network time it measured (`NetworkStatistics`); a
/// report that cannot be sent is dropped.
struct PoolWatcher: Service {
    let balancer: HostPort
    let tls: ClusterTLS?
    let frontendID: String
    let view: PoolView
    let clients: WorkerClients
    let network: NetworkStatistics
    let logger: Logger

    static let networkReportInterval: Duration = .seconds(1)

    func run() async throws {
        let client = try GRPCTransport.client(balancer, tls: tls)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await client.runConnections() }
            let control = Fulcrum_Control_V1_Balancer.Client(wrapping: client)
            group.addTask {
                await cancelWhenGracefulShutdown {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.networkReportInterval)
                        let samples = network.take()
                        let versions = network.takeVersions()
                        let shadows = network.shadows.take()
                        guard !samples.isEmpty || !versions.isEmpty || !shadows.isEmpty else { continue }
                        var report = Fulcrum_Control_V1_FrontendReport()
                        report.frontendID = frontendID
                        report.models = samples
                        report.versions = versions
                        report.shadows = shadows
                        var options = CallOptions.defaults
                        options.timeout = .seconds(1)
                        _ = try? await control.reportFrontend(report, options: options)
                    }
                }
            }
            await cancelWhenGracefulShutdown {
                var warned = false
                while !Task.isCancelled {
                    do {
                        var request = Fulcrum_Control_V1_WatchPoolRequest()
                        request.frontendID = frontendID
                        let wasWarned = warned
                        let connected = ContinuousClock.now
                        defer {
                            // A stream that lasted a while was a real connection: warn again on the next loss.
                            if ContinuousClock.now - connected > .seconds(1) { warned = false }
                        }
                        try await control.watchPool(request) { response in
                            var first = true
                            for try await snapshot in response.messages {
                                view.update(snapshot, startsStream: first)
                                clients.retain(only: Set(view.readyWorkers.values))
                                if first {
                                    let carried = view.carriedWorkers
                                    let note = carried.isEmpty ? "" : "; keeping \(carried.count) more from the last pool until they rejoin (\(carried.joined(separator: ", ")))"
                                    logger.info("\(wasWarned ? "back in touch with" : "watching the pool of") balancer \(balancer): \(snapshot.workers.count) workers\(note)")
                                    first = false
                                }
                            }
                        }
                    } catch {
                        if !warned && !Task.isCancelled {
                            logger.warning("lost the pool stream from balancer \(balancer) (\(error)); routing on the last snapshot")
                            warned = true
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(300))
                }
            }
            client.beginGracefulShutdown()
        }
    }
}

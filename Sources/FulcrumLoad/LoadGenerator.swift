import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOPosix
import Synchronization

/// Runs one load test: reads the model's metadata (a grpc-swift client), makes and pre-encodes
/// the inputs, opens `connections` HTTP/2 connections, paces requests on them (open loop from an
/// `ArrivalPlan`, or closed loop) from one event-loop thread (`WireEngine`), records every
/// outcome into per-connection `LoadRecorder`s, and merges them into a `LoadResult`.
///
/// The pool sampler and the progress reporter are child tasks that end with `run`. In open loop
/// the sender never waits for a response; when `maxInFlight` requests are outstanding, due
/// arrivals are dropped and counted.
public struct LoadGenerator: Sendable {
    /// A live view for a progress line, once a second.
    public struct Progress: Sendable {
        /// Seconds since the start.
        public var elapsed: Double
        /// Successes completed in the last full second.
        public var rate: Int
        /// Latency of those, µs.
        public var p50Us: UInt64
        public var p99Us: UInt64
        /// Failures so far (all seconds).
        public var errors: Int
        /// Drops so far.
        public var dropped: Int
    }

    /// The test's options (validated by `run`).
    public let options: LoadOptions

    /// A generator for `options`.
    public init(options: LoadOptions) {
        self.options = options
    }

    private final class PoolLog: Sendable {
        let samples = Mutex<[PoolSample]>([])
    }

    /// Runs the test and returns its result. `progress` (if any) is called about once a second.
    public func run(command: String, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> LoadResult {
        try options.validate()
        let options = self.options
        let shards = (0..<options.connections).map { _ in WireEngine.Shard(warmup: options.warmup) }
        let poolSamples = PoolLog()
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let requests = try await prepare()
        // The load runs on one event-loop thread of its own (`WireEngine`); the metadata call above
        // and the pool sampler use grpc-swift, off the measured path.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let cpuStart = ProcessCPU.now()
        let start = ContinuousClock.now
        do {
            let engine = try WireEngine(loop: group.next(), requests: requests, shards: shards, start: start, options: options)
            try await engine.connect(to: options.target)
            try await withThrowingTaskGroup(of: Void.self) { auxiliary in
                if let balancer = options.balancer {
                    auxiliary.addTask { try await Self.samplePool(balancer, tls: options.balancerTLS, start: start, into: poolSamples) }
                }
                if let progress {
                    auxiliary.addTask { await Self.report(shards, start: start, to: progress) }
                }
                defer { auxiliary.cancelAll() }
                try await engine.run(options.mode)
            }
            await engine.close()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        let cpu = ProcessCPU.now().since(cpuStart)
        var merged = LoadRecorder(warmup: options.warmup)
        for shard in shards {
            merged.merge(shard.recorder.withLock { $0 })
        }
        let pool = options.balancer == nil ? nil : poolSamples.samples.withLock { $0 }
        return LoadResult(recorder: merged, options: options, command: command, startedAt: startedAt, cpu: cpu, pool: pool)
    }

    /// Reads the model's metadata and makes the requests; fails with a message saying what to check.
    private func prepare() async throws -> [Inference_ModelInferRequest] {
        let client = try GRPCTransport.client(options.target, maxMessageBytes: options.maxMessageBytes)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            return try await prepare(client: client)
        }
    }

    private func prepare(client: GRPCClient<HTTP2ClientTransport.Posix>) async throws -> [Inference_ModelInferRequest] {
        var callOptions = CallOptions.defaults
        callOptions.timeout = .seconds(10)
        var request = Inference_ModelMetadataRequest()
        request.name = options.model
        request.version = options.version
        let metadata: Inference_ModelMetadataResponse
        do {
            metadata = try await Inference_GRPCInferenceService.Client(wrapping: client).modelMetadata(request, options: callOptions)
        } catch let error as RPCError {
            throw LoadError("cannot read the metadata of model '\(options.model)' from \(options.target): \(error.code): \(error.message) — is the server running and does it serve this model?")
        }
        if let path = options.inputData {
            guard let json = FileManager.default.contents(atPath: path) else {
                throw LoadError("--input-data: cannot read '\(path)'")
            }
            return try RequestFactory.requests(inputData: json, metadata: metadata, version: options.version, batch: options.batch)
        }
        return try RequestFactory.requests(
            metadata: metadata, version: options.version, batch: options.batch, dimensionValue: options.dimensionValue,
            count: 16, seed: options.seed
        )
    }

    /// Seconds from `start` to now, as the recorder counts time.
    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Samples the balancer's pool once a second until cancelled. A failed sample is skipped.
    private static func samplePool(_ balancer: HostPort, tls: ClusterTLS?, start: ContinuousClock.Instant, into log: PoolLog) async throws {
        let client = try GRPCTransport.client(balancer, tls: tls)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            let control = Fulcrum_Control_V1_Balancer.Client(wrapping: client)
            var options = CallOptions.defaults
            options.timeout = .milliseconds(900)
            var tick = 0
            while !Task.isCancelled {
                if let status = try? await control.status(Fulcrum_Control_V1_StatusRequest(), options: options) {
                    let sample = PoolSample(
                        t: (seconds(since: start) * 1000).rounded() / 1000, workers: status.pool.workers.count,
                        ready: status.pool.workers.filter { $0.state == .ready }.count
                    )
                    log.samples.withLock { $0.append(sample) }
                }
                tick += 1
                do { try await Task.sleep(until: start + .seconds(tick), clock: .continuous) } catch { break }
            }
        }
    }

    /// Calls `progress` once a second with the last full second, until cancelled.
    private static func report(_ shards: [WireEngine.Shard], start: ContinuousClock.Instant, to progress: @Sendable (Progress) -> Void) async {
        var tick = 1
        while true {
            do { try await Task.sleep(until: start + .seconds(tick), clock: .continuous) } catch { return }
            var second = LoadRecorder.Second()
            var errors = 0, dropped = 0
            for shard in shards {
                shard.recorder.withLock { recorder in
                    if let s = recorder.second(tick - 1) { second.merge(s) }
                    errors += recorder.errorCount
                    dropped += recorder.dropped + recorder.warmupDropped
                }
            }
            let empty = second.latency.totalCount == 0
            progress(Progress(
                elapsed: Double(tick), rate: second.ok, p50Us: empty ? 0 : second.latency.valueAtPercentile(50),
                p99Us: empty ? 0 : second.latency.valueAtPercentile(99), errors: errors, dropped: dropped
            ))
            tick += 1
        }
    }
}

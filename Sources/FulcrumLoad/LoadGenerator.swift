import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// Runs one load test: connects `connections` gRPC clients, reads the model's metadata, makes
/// the inputs, paces requests (open loop from an `ArrivalPlan`, or closed loop), records every
/// outcome into per-connection `LoadRecorder`s, and merges them into a `LoadResult`.
///
/// Concurrency is structured: clients, requests, the pool sampler and the progress reporter are
/// child tasks of task groups that end with `run`. In open loop the sender never waits for a
/// response; when `maxInFlight` requests are outstanding, due arrivals are dropped and counted.
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

    private final class Shard: Sendable {
        let recorder: Mutex<LoadRecorder>
        init(warmup: Double) { recorder = Mutex(LoadRecorder(warmup: warmup)) }
    }

    private final class PoolLog: Sendable {
        let samples = Mutex<[PoolSample]>([])
    }

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Runs the test and returns its result. `progress` (if any) is called about once a second.
    public func run(command: String, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> LoadResult {
        try options.validate()
        let options = self.options
        let clients = try (0..<options.connections).map { _ in try GRPCTransport.client(options.target, maxMessageBytes: options.maxMessageBytes) }
        let shards = (0..<options.connections).map { _ in Shard(warmup: options.warmup) }
        let poolSamples = PoolLog()
        let startedAt = ISO8601DateFormatter().string(from: Date())

        let cpu: ProcessCPU = try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask { try await client.runConnections() }
            }
            defer { clients.forEach { $0.beginGracefulShutdown() } }
            let requests = try await prepare(client: clients[0])
            let cpuStart = ProcessCPU.now()
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { auxiliary in
                if let balancer = options.balancer {
                    auxiliary.addTask { try await Self.samplePool(balancer, start: start, into: poolSamples) }
                }
                if let progress {
                    auxiliary.addTask { await Self.report(shards, start: start, to: progress) }
                }
                switch options.mode {
                case .open(let schedule, let poisson):
                    try await openLoop(ArrivalPlan(schedule: schedule, poisson: poisson, seed: options.seed), clients: clients, shards: shards, requests: requests, start: start)
                case .closed(let concurrency, let seconds):
                    try await closedLoop(concurrency: concurrency, seconds: seconds, clients: clients, shards: shards, requests: requests, start: start)
                }
                auxiliary.cancelAll()
            }
            return ProcessCPU.now().since(cpuStart)
        }
        var merged = LoadRecorder(warmup: options.warmup)
        for shard in shards {
            merged.merge(shard.recorder.withLock { $0 })
        }
        let pool = options.balancer == nil ? nil : poolSamples.samples.withLock { $0 }
        return LoadResult(recorder: merged, options: options, command: command, startedAt: startedAt, cpu: cpu, pool: pool)
    }

    /// Reads the model's metadata and makes the requests; fails with a message saying what to check.
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
        return try RequestFactory.requests(
            metadata: metadata, version: options.version, batch: options.batch, dimensionValue: options.dimensionValue,
            count: 16, seed: options.seed
        )
    }

    /// Sends one request and classifies the outcome.
    private static func call(
        _ service: Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>, _ request: Inference_ModelInferRequest,
        options: CallOptions
    ) async -> LoadRecorder.Outcome {
        do {
            let response = try await service.modelInfer(request, options: options)
            guard response.parameters[ResponseParameters.compute] != nil else { return .ok(nil) }
            var micros: [BreakdownPart: UInt64] = [:]
            for part in BreakdownPart.allCases {
                if let value = response.parameters[part.parameterKey]?.integerValue, value >= 0 { micros[part] = UInt64(value) }
            }
            return .ok(LoadRecorder.Breakdown(micros))
        } catch let error as RPCError {
            return .failed(code: "\(error.code)")
        } catch {
            return .failed(code: "client(\(type(of: error)))")
        }
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    private func callOptions() -> CallOptions {
        var callOptions = CallOptions.defaults
        callOptions.timeout = options.timeout
        return callOptions
    }

    private func openLoop(
        _ initialPlan: ArrivalPlan, clients: [GRPCClient<HTTP2ClientTransport.Posix>], shards: [Shard],
        requests: [Inference_ModelInferRequest], start: ContinuousClock.Instant
    ) async throws {
        var plan = initialPlan
        let services = clients.map { Inference_GRPCInferenceService.Client(wrapping: $0) }
        let inFlight = Counter()
        let cap = options.maxInFlight
        let callOptions = callOptions()
        var sent = 0
        await withDiscardingTaskGroup { group in
            loop: while true {
                switch plan.step(now: Self.seconds(since: start)) {
                case .finished:
                    break loop
                case .wait(let until):
                    do {
                        try await Task.sleep(until: start + .nanoseconds(Int64(until * 1e9)), tolerance: .microseconds(50), clock: .continuous)
                    } catch {
                        break loop  // cancelled
                    }
                case .send(let intended):
                    let index = sent % shards.count
                    let request = requests[sent % requests.count]
                    sent += 1
                    // Draining a backlog never suspends otherwise: let the responses run too.
                    if sent % 64 == 0 { await Task.yield() }
                    guard ArrivalPlan.admits(inFlight: inFlight.value.load(ordering: .relaxed), cap: cap) else {
                        shards[index].recorder.withLock { $0.recordDropped(intended: intended) }
                        continue
                    }
                    inFlight.value.add(1, ordering: .relaxed)
                    let service = services[index]
                    let shard = shards[index]
                    group.addTask {
                        let outcome = await Self.call(service, request, options: callOptions)
                        let completed = Self.seconds(since: start)
                        shard.recorder.withLock { $0.record(intended: intended, completed: completed, outcome: outcome) }
                        inFlight.value.subtract(1, ordering: .relaxed)
                    }
                }
            }
        }
    }

    private func closedLoop(
        concurrency: Int, seconds: Double, clients: [GRPCClient<HTTP2ClientTransport.Posix>], shards: [Shard],
        requests: [Inference_ModelInferRequest], start: ContinuousClock.Instant
    ) async throws {
        let services = clients.map { Inference_GRPCInferenceService.Client(wrapping: $0) }
        let callOptions = callOptions()
        await withDiscardingTaskGroup { group in
            for slot in 0..<concurrency {
                let index = slot % shards.count
                let service = services[index]
                let shard = shards[index]
                group.addTask {
                    var sent = slot
                    while !Task.isCancelled {
                        let intended = Self.seconds(since: start)
                        guard intended < seconds else { break }
                        let outcome = await Self.call(service, requests[sent % requests.count], options: callOptions)
                        sent += concurrency
                        let completed = Self.seconds(since: start)
                        shard.recorder.withLock { $0.record(intended: intended, completed: completed, outcome: outcome) }
                    }
                }
            }
        }
    }

    /// Samples the balancer's pool once a second until cancelled. A failed sample is skipped.
    private static func samplePool(_ balancer: HostPort, start: ContinuousClock.Instant, into log: PoolLog) async throws {
        let client = try GRPCTransport.client(balancer)
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
    private static func report(_ shards: [Shard], start: ContinuousClock.Instant, to progress: @Sendable (Progress) -> Void) async {
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

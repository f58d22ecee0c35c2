import FulcrumProtocol
import FulcrumService
import NIOCore
import NIOHTTP2
import NIOPosix
import Synchronization

/// Sends the test's requests over `WireConnection`s from one event-loop thread: the arrival
/// plan's timer (open loop) or the closed loop's refills, the sends and the recording of every
/// outcome all run there, so a request costs a few frames, one protobuf decode and one
/// histogram update — no Swift task, continuation or channel of its own.
///
/// Confined to `loop` (hence `@unchecked Sendable`); `run` is the only entry from outside.
final class WireEngine: @unchecked Sendable {
    /// A recorder per connection, read by the progress reporter from other threads.
    final class Shard: Sendable {
        let recorder: Mutex<LoadRecorder>
        init(warmup: Double) { recorder = Mutex(LoadRecorder(warmup: warmup)) }
    }

    private let loop: any EventLoop
    private let requests: [WireConnection.Encoded]
    private let shards: [Shard]
    private let start: ContinuousClock.Instant
    private let options: LoadOptions
    private var connections: [WireConnection] = []
    private var inFlight = 0
    private var sent = 0
    private var stopped = false
    private var finishedSending = false
    private var closedSlotsLeft = 0
    private var closedUntil = 0.0
    private var done: EventLoopPromise<Void>?
    /// Where the connections go, and the slots whose connection is being replaced.
    private var target: HostPort?
    private var reconnecting = Set<Int>()
    /// New connections for those slots, until their HTTP/2 preface has gone out.
    private var pending: [Int: WireConnection] = [:]

    init(loop: any EventLoop, requests: [Inference_ModelInferRequest], shards: [Shard], start: ContinuousClock.Instant, options: LoadOptions) throws {
        self.loop = loop
        self.requests = try requests.map { request in
            let bytes: [UInt8] = try request.serializedBytes()
            var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + 5)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(bytes.count))
            buffer.writeBytes(bytes)
            return WireConnection.Encoded(message: buffer)
        }
        self.shards = shards
        self.start = start
        self.options = options
    }

    /// Opens one connection per shard to `target` (plain-text HTTP/2, as gRPC without TLS).
    func connect(to target: HostPort) async throws {
        self.target = target
        for slot in shards.indices {
            do {
                _ = try await bootstrap(slot: slot, target: target).connect(host: target.host, port: target.port).get()
            } catch {
                throw LoadError("cannot open connection \(slot + 1) to \(target): \(error)")
            }
        }
    }

    /// A bootstrap whose channel becomes connection `slot` (appended, or replacing a closed one).
    private func bootstrap(slot: Int, target: HostPort) -> ClientBootstrap {
        let authority = target.description
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = WireConnection(authority: authority, timeout: self.options.timeout) { intended, slot, outcome in
                        self.completed(intended: intended, slot: slot, outcome: outcome)
                    }
                    // The server's header blocks are not re-validated: the generator reads only
                    // `:status` and `grpc-status`, and validation is a visible share of its CPU.
                    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                    configuration.initialSettings = WireConnection.settings
                    configuration.headerBlockValidation = .disabled
                    configuration.contentLengthValidation = .disabled
                    // Requests it gives up on are reset while their answers may be on the way.
                    configuration.maximumRecentlyResetStreams = GRPCWire.rememberedResets
                    // Nor does it close a connection because the server resets many streams (an
                    // overloaded server refusing): the generator measures, it does not defend.
                    var stream = NIOHTTP2Handler.StreamConfiguration()
                    // (swift-nio-http2 reserves a timestamp per allowed reset: 800 KB here.)
                    stream.streamResetFrameRateLimit.maximumCount = 100_000
                    stream.streamResetFrameRateLimit.windowLength = .seconds(1)
                    try channel.pipeline.syncOperations.addHandler(
                        NIOHTTP2Handler(mode: .client, connectionConfiguration: configuration, streamConfiguration: stream))
                    try channel.pipeline.syncOperations.addHandler(connection)
                    if slot < self.connections.count {
                        self.pending[slot] = connection
                    } else {
                        self.connections.append(connection)
                    }
                }
            }
    }

    /// The connection for `slot`; when the server has closed it (GOAWAY, idle timeout, a
    /// restart), a new one is opened in the background and takes the slot once connected —
    /// requests sent meanwhile fail at once as `unavailable`, as they would for a client.
    private func connection(_ slot: Int) -> WireConnection {
        if let next = pending[slot], next.isActive || next.closedReason != nil {
            pending[slot] = nil
            reconnecting.remove(slot)
            if next.isActive { connections[slot] = next }
        }
        let connection = connections[slot]
        if connection.closedReason != nil, !stopped, let target, !reconnecting.contains(slot) {
            reconnecting.insert(slot)
            bootstrap(slot: slot, target: target).connect(host: target.host, port: target.port).whenFailure { _ in
                // Not listening (yet): the next request tries again.
                self.pending[slot] = nil
                self.reconnecting.remove(slot)
            }
        }
        return connection
    }

    /// Runs the plan (open loop) or `concurrency` senders for `seconds` (closed loop) and returns
    /// when every request has an outcome.
    func run(_ mode: LoadOptions.Mode) async throws {
        let finished: EventLoopFuture<Void> = try await loop.submit {
            let promise = self.loop.makePromise(of: Void.self)
            self.done = promise
            self.scheduleExpiry()
            switch mode {
            case .open(let schedule, let poisson):
                self.tick(ArrivalPlan(schedule: schedule, poisson: poisson, seed: self.options.seed))
            case .closed(let concurrency, let seconds):
                self.closedUntil = seconds
                self.closedSlotsLeft = concurrency
                for slot in 0..<concurrency { self.sendClosed(slot: slot, intended: self.now()) }
                self.connections.forEach { $0.flush() }
            }
            return promise.futureResult
        }.get()
        try await withTaskCancellationHandler {
            try await finished.get()
        } onCancel: {
            self.loop.execute { self.stop() }
        }
    }

    /// Closes every connection.
    func close() async {
        let channels: [any Channel] = (try? await loop.submit { self.connections.compactMap { $0.channel } }.get()) ?? []
        for channel in channels {
            try? await channel.close()
        }
    }

    private func now() -> Double {
        LoadGenerator.seconds(since: start)
    }

    /// Sends every due arrival, then sleeps until the next one.
    private func tick(_ plan: ArrivalPlan) {
        var plan = plan
        loop: while !stopped {
            switch plan.step(now: now()) {
            case .finished:
                finishedSending = true
                break loop
            case .wait(let until):
                let delay = Int64(max(0, until - now()) * 1e9)
                let next = plan
                loop.scheduleTask(in: .nanoseconds(delay)) { self.tick(next) }
                break loop
            case .send(let intended):
                let slot = sent % connections.count
                let request = requests[sent % requests.count]
                sent += 1
                guard ArrivalPlan.admits(inFlight: inFlight, cap: options.maxInFlight) else {
                    shards[slot].recorder.withLock { $0.recordDropped(intended: intended) }
                    continue
                }
                inFlight += 1
                connection(slot).send(request, intended: intended, slot: slot)
            }
        }
        if stopped { finishedSending = true }
        connections.forEach { $0.flush() }
        checkDone()
    }

    private func sendClosed(slot: Int, intended: Double) {
        guard !stopped, intended < closedUntil else {
            closedSlotsLeft -= 1
            if closedSlotsLeft == 0 { finishedSending = true }
            return
        }
        inFlight += 1
        let request = requests[sent % requests.count]
        sent += 1
        connection(slot % connections.count).send(request, intended: intended, slot: slot)
    }

    private func completed(intended: Double, slot: Int, outcome: LoadRecorder.Outcome) {
        let completedAt = now()
        inFlight -= 1
        shards[slot % shards.count].recorder.withLock { $0.record(intended: intended, completed: completedAt, outcome: outcome) }
        if case .closed = options.mode {
            sendClosed(slot: slot, intended: now())
        }
        checkDone()
    }

    private func stop() {
        stopped = true
        if case .closed = options.mode { finishedSending = true }
        checkDone()
    }

    private func checkDone() {
        guard finishedSending, inFlight == 0, let done else { return }
        self.done = nil
        done.succeed(())
    }

    /// Every 100 ms, fails requests the server has not answered a second past their timeout.
    private func scheduleExpiry() {
        loop.scheduleTask(in: .milliseconds(100)) {
            guard self.done != nil else { return }
            for connection in self.connections {
                connection.expire(olderThan: self.options.timeout + .seconds(1))
            }
            self.scheduleExpiry()
        }
    }
}

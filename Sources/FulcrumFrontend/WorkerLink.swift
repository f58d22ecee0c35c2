import FulcrumProtocol
import FulcrumService
import GRPCCore
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import Logging
import Synchronization

/// The frontend's ModelInfer path to one worker: one HTTP/2 connection per event loop of NIO's
/// singleton group, each carrying calls as raw frames (`WorkerStreams`). A call goes out on the
/// connection of the loop its task runs on — with `--executor event-loop`, the loop that read
/// the client's request — so the request, the forwarded call and both answers stay on one
/// thread. Every other call to a worker (metadata, configuration, statistics, repository
/// control) keeps grpc-swift's client (`WorkerClients`).
///
/// Failures map to the statuses the frontend's retry logic reads: a connection that cannot be
/// opened, closes or goes away fails its calls UNAVAILABLE (retried on another worker); the
/// worker's own statuses pass through with its rejection metadata.
final class WorkerLink: Sendable {
    let address: HostPort
    private let connections: [LoopConnection]
    private let next = Atomic<Int>(0)

    /// `tls`: the cluster's mutual TLS client context (nil: plaintext).
    /// `revocations`: with `tls`, the cluster TLS whose `--tls-revoked` list the worker's
    /// certificate is checked against once the handshake completes (a listed one: closed).
    init(
        address: HostPort, maxMessageBytes: Int, tls: NIOSSLContext? = nil, revocations: ClusterTLS? = nil,
        group: MultiThreadedEventLoopGroup = .singleton
    ) {
        self.address = address
        var connections: [LoopConnection] = []
        for loop in group.makeIterator() {
            connections.append(
                LoopConnection(loop: loop, address: address, maxMessageBytes: maxMessageBytes, tls: tls, revocations: revocations))
        }
        self.connections = connections
    }

    /// Sends `request` and waits for the worker's answer. `metadata` goes out as headers (trace
    /// context); `timeout` bounds the call (and travels as `grpc-timeout`). Throws RPCError.
    func modelInfer(
        _ request: Inference_ModelInferRequest, metadata: [(String, String)], timeout: Duration?
    ) async throws -> Inference_ModelInferResponse {
        let message = try GRPCWire.frame(request)
        let connection = self.connection()
        let handle = CallHandle()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Inference_ModelInferResponse, any Error>) in
                connection.run {
                    connection.start(message: message, metadata: metadata, timeout: timeout, handle: handle) { result in
                        continuation.resume(with: result.mapError { $0 as any Error })
                    }
                }
            }
        } onCancel: {
            connection.run { connection.cancel(handle) }
        }
    }

    /// Closes every connection; calls in flight fail UNAVAILABLE.
    func close() {
        for connection in connections {
            connection.run { connection.close() }
        }
    }

    /// The connection of the loop this thread runs, or the next one in turn from elsewhere.
    private func connection() -> LoopConnection {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop {
            for connection in connections where connection.loop === current { return connection }
        }
        let index = next.add(1, ordering: .relaxed).newValue
        return connections[index % connections.count]
    }
}

/// Names one call to `LoopConnection.cancel`; confined to the connection's loop.
final class CallHandle: @unchecked Sendable {
    var streamID: Int32? = nil
    var cancelled = false
}

/// One worker connection on one event loop: opened on first use, opened again after it closes
/// (at most once per `retryDelay` after a failed attempt; calls in between fail at once, so the
/// frontend tries another worker). Confined to `loop` (hence `@unchecked Sendable`).
final class LoopConnection: @unchecked Sendable {
    let loop: any EventLoop
    private let address: HostPort
    private let maxMessageBytes: Int
    private let tls: NIOSSLContext?
    private let revocations: ClusterTLS?
    private var streams: WorkerStreams?
    private var channel: (any Channel)?
    private var connecting = false
    private var pending: [Pending] = []
    private var lastFailure: (at: NIODeadline, reason: String)?
    private var closed = false

    /// How long after a failed connection attempt calls fail without another attempt.
    static let retryDelay = TimeAmount.milliseconds(50)

    private struct Pending {
        var message: ByteBuffer
        var metadata: [(String, String)]
        var timeout: Duration?
        var handle: CallHandle
        var completion: WorkerStreams.Completion
    }

    init(loop: any EventLoop, address: HostPort, maxMessageBytes: Int, tls: NIOSSLContext?, revocations: ClusterTLS? = nil) {
        self.tls = tls
        self.revocations = revocations
        self.loop = loop
        self.address = address
        self.maxMessageBytes = maxMessageBytes
    }

    /// Runs `body` on the loop: at once when already there.
    func run(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    func start(
        message: ByteBuffer, metadata: [(String, String)], timeout: Duration?, handle: CallHandle,
        completion: @escaping WorkerStreams.Completion
    ) {
        if handle.cancelled {
            completion(.failure(RPCError(code: .cancelled, message: "the call was cancelled")))
            return
        }
        if closed {
            completion(.failure(RPCError(code: .unavailable, message: "worker \(address) left the pool")))
            return
        }
        if let streams, streams.accepting {
            handle.streamID = streams.upcomingStreamID
            streams.start(message: message, metadata: metadata, timeout: timeout, completion: completion)
            streams.flushSoon()
            return
        }
        if let failure = lastFailure, NIODeadline.now() - failure.at < Self.retryDelay, !connecting {
            completion(.failure(RPCError(code: .unavailable, message: "cannot connect to worker \(address): \(failure.reason)")))
            return
        }
        pending.append(Pending(message: message, metadata: metadata, timeout: timeout, handle: handle, completion: completion))
        if !connecting { connect() }
    }

    func cancel(_ handle: CallHandle) {
        handle.cancelled = true
        if let id = handle.streamID {
            streams?.cancel(id)
            return
        }
        if let index = pending.firstIndex(where: { $0.handle === handle }) {
            let call = pending.remove(at: index)
            call.completion(.failure(RPCError(code: .cancelled, message: "the call was cancelled")))
        }
    }

    func close() {
        closed = true
        channel?.close(promise: nil)
        failPending(RPCError(code: .unavailable, message: "worker \(address) left the pool"))
    }

    private func connect() {
        connecting = true
        // The old connection (retired after GOAWAY or closed) finishes its calls on its own.
        let streams = WorkerStreams(authority: address.description, maxMessageBytes: maxMessageBytes)
        let tls = self.tls
        let revocations = self.revocations
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // Host names are not checked (ClusterTLS): the CA alone vouches for a worker.
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil))
                        if let gate = revocations?.revocationGate(logger: Logger(label: "fulcrum.frontend")) {
                            try channel.pipeline.syncOperations.addHandler(gate)
                        }
                    }
                    var connection = NIOHTTP2Handler.ConnectionConfiguration()
                    connection.initialSettings = WorkerStreams.settings
                    connection.maximumRecentlyResetStreams = GRPCWire.rememberedResets
                    // A worker that refuses calls in a burst may reset thousands of streams.
                    try channel.pipeline.syncOperations.addHandler(
                        NIOHTTP2Handler(mode: .client, connectionConfiguration: connection, streamConfiguration: EdgeLimits().http2Streams))
                    try channel.pipeline.syncOperations.addHandler(streams)
                }
            }
        bootstrap.connect(host: address.host, port: address.port).hop(to: loop).whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let channel):
                if self.closed {
                    channel.close(promise: nil)
                    return
                }
                self.channel = channel
                self.streams = streams
                self.lastFailure = nil
                // The connect promise completes just before the pipeline hears channelActive,
                // when the HTTP/2 handler sends its preface: start the waiting calls after that.
                self.loop.execute {
                    let waiting = self.pending
                    self.pending = []
                    for call in waiting {
                        self.start(message: call.message, metadata: call.metadata, timeout: call.timeout, handle: call.handle, completion: call.completion)
                    }
                }
            case .failure(let error):
                self.lastFailure = (NIODeadline.now(), "\(error)")
                self.failPending(RPCError(code: .unavailable, message: "cannot connect to worker \(self.address): \(error)"))
            }
        }
    }

    private func failPending(_ error: RPCError) {
        let waiting = pending
        pending = []
        for call in waiting { call.completion(.failure(error)) }
    }
}

import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// The HTTP edge's read deadline: once a connection starts a request (it opens, or bytes arrive
/// after the previous request ended), the whole request — head and body — must arrive within
/// `timeout`, or the connection is closed. A client trickling its headers or its body a byte at
/// a time (slowloris) therefore holds a connection for at most `timeout`, while a keep-alive
/// connection that sits between requests is left to the idle timeout, and a slow prediction is
/// not cut short (the clock stops when the request's last byte is in).
///
/// Two handlers share one `HTTPReadDeadline`: `Arm` sees the connection's bytes ahead of the
/// HTTP/1 codec (after TLS), `Disarm` sees the decoded request parts behind it.
final class HTTPReadDeadline {
    let timeout: TimeAmount
    /// When the request now arriving started; nil between requests.
    private(set) var startedAt: NIODeadline?
    private var timer: RepeatedTask?

    init(timeout: TimeAmount) { self.timeout = timeout }

    fileprivate func arm(_ now: NIODeadline) {
        if startedAt == nil { startedAt = now }
    }

    fileprivate func disarm() { startedAt = nil }

    fileprivate func start(_ context: ChannelHandlerContext) {
        arm(context.eventLoop.now)
        let period = TimeAmount.nanoseconds(max(TimeAmount.milliseconds(100).nanoseconds, min(TimeAmount.seconds(1).nanoseconds, timeout.nanoseconds / 4)))
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            let deadline = bound.value
            guard let started = deadline.startedAt, channel.eventLoop.now - started > deadline.timeout else { return }
            deadline.stop()
            channel.close(promise: nil)
        }
    }

    fileprivate func stop() {
        timer?.cancel()
        timer = nil
    }

    /// Ahead of the codec: the first bytes of a request start its clock.
    final class Arm: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        private let deadline: HTTPReadDeadline

        init(_ deadline: HTTPReadDeadline) { self.deadline = deadline }

        func channelActive(context: ChannelHandlerContext) {
            deadline.start(context)
            context.fireChannelActive()
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { deadline.start(context) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            deadline.stop()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) { deadline.stop() }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            deadline.arm(context.eventLoop.now)
            context.fireChannelRead(data)
        }
    }

    /// Behind the codec: a request's end stops its clock.
    final class Disarm: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        private let deadline: HTTPReadDeadline

        init(_ deadline: HTTPReadDeadline) { self.deadline = deadline }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .end = unwrapInboundIn(data) { deadline.disarm() }
            context.fireChannelRead(data)
        }
    }
}

/// Hummingbird's HTTP/1.1 child channel with `HTTPReadDeadline` around its codec.
struct HTTP1ChannelWithReadDeadline: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel
    let timeout: TimeAmount

    init(responder: @escaping HTTPChannelHandler.Responder, idleTimeout: TimeAmount, readTimeout: TimeAmount) {
        self.timeout = readTimeout
        self.base = HTTP1Channel(responder: responder, configuration: .init(idleTimeout: idleTimeout))
    }

    var responder: HTTPChannelHandler.Responder { base.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // One deadline per connection, shared by the handler ahead of the codec and the one
        // behind it (Hummingbird's configuration makes the latter per connection too).
        let deadline = HTTPReadDeadline(timeout: timeout)
        var configuration = base.configuration
        let bound = NIOLoopBound(deadline, eventLoop: channel.eventLoop)
        configuration.additionalChannelHandlers = { [HTTPReadDeadline.Disarm(bound.value)] }
        let http1 = HTTP1Channel(responder: base.responder, configuration: configuration)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(HTTPReadDeadline.Arm(deadline))
        }.flatMap {
            http1.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

import NIOCore
import NIOHTTP2
import NIOPosix

/// An `EdgeConnection`'s HTTP/2 connection to the inner grpc-swift server (a private Unix
/// socket), carrying every stream that is not served on the fast path: each client stream gets
/// an inner stream id, and frames cross in both directions unchanged but for the id. Opened on
/// the edge connection's event loop when its first such stream arrives; frames written before it
/// is open wait in order.
///
/// Flow control on the inner connection: response bytes are credited back once the edge
/// connection has written them to the client, so a client that does not read holds back the
/// inner server instead of growing buffers here.
///
/// Confined to the edge connection's loop (hence `@unchecked Sendable`).
final class RelayLink: @unchecked Sendable {
    private weak var edge: EdgeConnection?
    private let loop: any EventLoop
    private var channel: (any Channel)?
    private var back: RelayBack?
    private var open = false
    private var lost = false
    private var pending: [(HTTP2Frame, EventLoopPromise<Void>?)] = []
    private var nextStreamID: Int32 = 1
    /// Inner stream id → the client's stream id.
    private var outer: [Int32: Int32] = [:]
    private var connectionCredit = 0
    private var needsFlush = false

    /// Whether this link has used up its stream ids (a new one takes the next streams).
    var exhausted: Bool { nextStreamID > Int32.max - 2 || lost }

    init(edge: EdgeConnection, loop: any EventLoop, socket: String) {
        self.edge = edge
        self.loop = loop
        let back = RelayBack()
        self.back = back
        back.link = self
        ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOHTTP2Handler(mode: .client, initialSettings: [
                            HTTP2Setting(parameter: .initialWindowSize, value: EdgeConnection.window),
                            HTTP2Setting(parameter: .enablePush, value: 0),
                        ]))
                    try channel.pipeline.syncOperations.addHandler(back)
                }
            }
            .connect(unixDomainSocketPath: socket)
            .hop(to: loop)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    self.channel = channel
                    if self.lost { channel.close(promise: nil) }
                case .failure:
                    self.failed(neverOpened: true)
                }
            }
    }

    /// A fresh inner stream for the client's stream `externalID`.
    func open(externalID: Int32) -> Int32 {
        let id = nextStreamID
        nextStreamID += 2
        outer[id] = externalID
        return id
    }

    /// Sends a frame to the inner server (after the ones still waiting for the connection).
    func forward(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        guard !lost else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard open, let channel else {
            pending.append((frame, promise))
            return
        }
        channel.write(frame, promise: promise)
        needsFlush = true
    }

    /// The client reset (or closed) its stream: reset the inner one.
    func reset(_ innerID: Int32, code: HTTP2ErrorCode) {
        guard outer.removeValue(forKey: innerID) != nil else { return }
        forward(HTTP2Frame(streamID: HTTP2StreamID(innerID), payload: .rstStream(code)), promise: nil)
        flush()
    }

    func flush() {
        guard needsFlush, let channel else { return }
        needsFlush = false
        channel.flush()
    }

    func close() {
        lost = true
        outer = [:]
        channel?.close(promise: nil)
        for (_, promise) in pending { promise?.fail(ChannelError.ioOnClosedChannel) }
        pending = []
    }

    // MARK: From the inner connection (RelayBack)

    fileprivate func active(_ channel: any Channel) {
        self.channel = channel
        open = true
        channel.write(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: EdgeConnection.window - 65_535)), promise: nil)
        let waiting = pending
        pending = []
        for (frame, promise) in waiting { channel.write(frame, promise: promise) }
        channel.flush()
    }

    fileprivate func received(_ frame: HTTP2Frame) {
        guard !lost else { return }
        let innerID = Int32(frame.streamID)
        guard innerID != 0 else { return }
        guard let externalID = outer[innerID] else {
            if case .data(let data) = frame.payload { credit(innerID: nil, bytes: data.data.readableBytes) }
            return
        }
        switch frame.payload {
        case .headers, .rstStream:
            if case .rstStream = frame.payload { outer[innerID] = nil }
            edge?.relayed(externalID, frame.payload, credit: nil)
        case .data(let data):
            let bytes = data.data.readableBytes
            let bound = NIOLoopBound(self, eventLoop: loop)
            edge?.relayed(externalID, frame.payload) { bound.value.credit(innerID: innerID, bytes: bytes) }
        default:
            break
        }
    }

    fileprivate func readComplete() {
        edge?.relayWrote()
        flush()
    }

    fileprivate func streamClosed(_ innerID: Int32) {
        outer[innerID] = nil
    }

    fileprivate func failed(neverOpened: Bool) {
        guard !lost else { return }
        lost = true
        let ids = Array(outer.values)
        outer = [:]
        for (_, promise) in pending { promise?.fail(ChannelError.ioOnClosedChannel) }
        pending = []
        edge?.relayLost(self, streams: ids, neverOpened: neverOpened)
    }

    /// Returns `bytes` of the inner server's window once the client has been sent them.
    private func credit(innerID: Int32?, bytes: Int) {
        guard bytes > 0, let channel, !lost else { return }
        if let innerID, outer[innerID] != nil {
            channel.write(HTTP2Frame(streamID: HTTP2StreamID(innerID), payload: .windowUpdate(windowSizeIncrement: bytes)), promise: nil)
            needsFlush = true
        }
        connectionCredit += bytes
        if connectionCredit >= EdgeConnection.window / 4 {
            channel.write(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: connectionCredit)), promise: nil)
            connectionCredit = 0
            needsFlush = true
        }
        flush()
    }
}

/// The inner connection's last handler: hands frames and events to its `RelayLink`.
private final class RelayBack: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    weak var link: RelayLink?

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        // The HTTP/2 handler has written its preface by now; start the waiting streams after the
        // connect promise's own callbacks have run.
        let channel = context.channel
        context.eventLoop.execute { self.link?.active(channel) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        link?.received(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        link?.readComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent {
            link?.streamClosed(Int32(closed.streamID))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        link?.failed(neverOpened: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamError { return }
        context.close(promise: nil)
    }
}

import NIOCore
import NIOHTTP2
import VitrineCore

/// An HTTP/2 connection's streams, served in the connection's own state as nginx serves them: no
/// child channel, pipeline or handler per stream. `NIOHTTP2Handler` (without a multiplexer) frames,
/// checks and flow-controls the connection and hands each frame here with its stream's id; each
/// stream is an `HTTP2Stream`, made at its first HEADERS and forgotten when it closes, that writes
/// its answer's frames back through here. What is written in one read batch is flushed once.
///
/// It also keeps the connection's life (`HTTP2LifecycleStateMachine`): closed after `keepalive`
/// with no stream open, and gone away gracefully on a drain (GOAWAY, PING, GOAWAY naming the last
/// stream, close when the open streams end), with one idle timer that is not re-armed per stream.
final class HTTP2Connection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The unsent body bytes a stream may hold before its fetch pauses (a stream's share of the
    /// connection's buffering, as the stream channel's watermark was).
    static let streamBufferBytes = 64 << 10
    /// The connection's receive window: the client may have this much request body in flight
    /// over all its streams (a stream's is the SETTINGS' 65,535 bytes).
    static let connectionWindow = 1 << 20

    let proxy: ProxyContext
    let listingsSource: Reloadable<Listings>
    private var listingsCopy: Reloadable<Listings>.Copy
    private var routesCopy: Reloadable<Router>.Copy
    /// The open streams, in the order they opened: found by a scan (at most
    /// `max_concurrent_streams`, a few in practice), cheaper than hashing each frame's id.
    private var streams: [HTTP2Stream] = []
    private var context: ChannelHandlerContext!
    /// Whom the connection is from.
    private(set) var peer = ClientPeer(scheme: "https")
    private let proxyHeader: ProxyProtocolHeader?
    /// The connection's number among the node's (its requests' ids carry it).
    private(set) var number: UInt64 = 0
    private var needsFlush = false
    private var flushQueued = false
    /// Handling a frame read: the end of the read batch flushes what it wrote.
    private var reading = false
    /// DATA bytes received since the connection's window was last opened again. With no
    /// multiplexer, WINDOW_UPDATE is ours to send: half a window consumed opens it again.
    private var connectionConsumed = 0
    /// Idle time and graceful shutdown.
    private var lifecycle: HTTP2LifecycleStateMachine
    private var idleTimer: Scheduled<Void>?
    /// Armed when the connection starts going away: it closes then, however long its streams take.
    private var graceTimer: Scheduled<Void>?
    /// The longest a going-away connection waits for its streams (and for its PING's ACK).
    static let maxGraceTime = TimeAmount.seconds(30)

    init(proxy: ProxyContext, listings: Reloadable<Listings>, proxyHeader: ProxyProtocolHeader?) {
        self.proxy = proxy
        self.listingsSource = listings
        self.listingsCopy = listings.copy()
        self.routesCopy = proxy.routes.copy()
        self.proxyHeader = proxyHeader
        self.lifecycle = HTTP2LifecycleStateMachine(
            idleTimeout: UInt64(proxy.timeouts.keepalive.nanosecondsClamped), pingData: UInt64.random(in: .min ... .max),
            now: NIODeadline.now().uptimeNanoseconds)
    }

    var allocator: ByteBufferAllocator { context.channel.allocator }
    var eventLoop: any EventLoop { context.eventLoop }
    var isWritable: Bool { context.channel.isWritable }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        number = proxy.connectionsAccepted.wrappingAdd(1, ordering: .relaxed).newValue
        if let source = proxyHeader?.source {
            peer.set(source.description)
        } else if let address = context.channel.remoteAddress?.ipAddress {
            peer.set(address)
        }
        // From the 65,535 bytes every connection starts with to `connectionWindow`.
        write(.windowUpdate(windowSizeIncrement: Self.connectionWindow - 65535), on: .rootStream)
        armIdleTimer(in: lifecycle.idleTimerDelay)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closeAll()
        cancelTimers()
        needsFlush = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let id = frame.streamID
        reading = true
        defer { reading = false }
        // The root stream's frames (SETTINGS, PING, GOAWAY, WINDOW_UPDATE) are swift-nio-http2's,
        // but for the ACK of the PING a graceful shutdown sent.
        guard id != .rootStream else {
            if case .ping(let ping, ack: true) = frame.payload { pingAcknowledged(ping.integer) }
            return
        }
        if case .data(let data) = frame.payload {
            // Every DATA frame counts against the connection's window, whatever its stream.
            connectionConsumed &+= Self.flowControlled(data)
            if connectionConsumed >= Self.connectionWindow / 2 {
                write(.windowUpdate(windowSizeIncrement: connectionConsumed), on: .rootStream)
                connectionConsumed = 0
            }
        }
        if let index = streams.firstIndex(where: { $0.id == id }) {
            let stream = streams[index]
            stream.receive(frame.payload)
            if stream.isClosed, let index = streams.firstIndex(where: { $0 === stream }) { removeStream(at: index) }
            return
        }
        // A new stream opens with HEADERS (swift-nio-http2 has checked that it may, and counted
        // it against `max_concurrent_streams`); anything else for an unknown stream is for one
        // already gone.
        guard case .headers = frame.payload else { return }
        let stream = HTTP2Stream(
            id: id, connection: self, proxy: proxy, listings: listingsSource.copy(through: &listingsCopy),
            routes: proxy.routes.copy(through: &routesCopy))
        // In the list before its first frame: answering it (a hit) closes it at once, and that
        // close is reported while the answer is written.
        streams.append(stream)
        lifecycle.streamOpened(id: Int(id))
        stream.receive(frame.payload)
        if stream.isClosed, let index = streams.lastIndex(where: { $0 === stream }) { removeStream(at: index) }
    }

    /// A stream is gone: forgotten, and the connection closes if it was the last one of a
    /// connection going away.
    private func removeStream(at index: Int) {
        streams.remove(at: index)
        if lifecycle.streamClosed(now: NIODeadline.now().uptimeNanoseconds) { closeAfterWrites() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Window updates are the most frequent events, and are not ours: one cast for them.
        if event is NIOHTTP2WindowUpdatedEvent { return }
        if let closed = event as? StreamClosedEvent {
            if let index = streams.firstIndex(where: { $0.id == closed.streamID }) {
                let stream = streams[index]
                removeStream(at: index)
                stream.closed()
            }
            return
        }
        if event is ChannelShouldQuiesceEvent {
            // The node drains: the open streams finish, new ones go to another connection.
            goAway()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        for stream in streams { stream.updateWritability() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        lifecycle.closed()
        cancelTimers()
        closeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream's error: swift-nio-http2 has reset that stream (its close comes as an event).
        // A connection's: it has sent GOAWAY, and `HTTP2ConnectionErrorCloser` closes.
    }

    /// What a DATA frame counts against flow control: its data, and its padding with the byte
    /// that says its length (RFC 9113 §6.1).
    static func flowControlled(_ data: HTTP2Frame.FramePayload.Data) -> Int {
        data.data.readableBytes &+ (data.paddingBytes.map { $0 &+ 1 } ?? 0)
    }

    private func closeAll() {
        let open = streams
        streams = []
        for stream in open { stream.closed() }
    }

    // MARK: Idle time and going away

    private func armIdleTimer(in nanoseconds: UInt64) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(clamping: nanoseconds))) { [self] in
            idleTimer = nil
            switch lifecycle.idleTimerFired(now: NIODeadline.now().uptimeNanoseconds) {
            case .rearm(let nanoseconds): armIdleTimer(in: nanoseconds)
            case .goAway: goAway()
            case .nothing: break
            }
        }
    }

    /// Starts a graceful shutdown: GOAWAY naming the largest stream id, and a PING whose ACK
    /// tells that the client has seen it; closed after `maxGraceTime` whatever happens.
    private func goAway() {
        guard case .sendGoAwayAndPing(let pingData) = lifecycle.goAway() else { return }
        idleTimer?.cancel()
        idleTimer = nil
        write(.goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil), on: .rootStream)
        write(.ping(HTTP2PingData(withInteger: pingData), ack: false), on: .rootStream)
        flushSoon()
        graceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.maxGraceTime) { [self] in
            graceTimer = nil
            context.close(promise: nil)
        }
    }

    private func pingAcknowledged(_ data: UInt64) {
        guard case .sendGoAway(let last, let close) = lifecycle.pingAcknowledged(data: data) else { return }
        write(.goAway(lastStreamID: HTTP2StreamID(last), errorCode: .noError, opaqueData: nil), on: .rootStream)
        if close { closeAfterWrites() }
    }

    /// Closes once what was written is flushed (not from inside the frame being handled).
    private func closeAfterWrites() {
        flush()
        let context = self.context!
        context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
    }

    private func cancelTimers() {
        idleTimer?.cancel()
        idleTimer = nil
        graceTimer?.cancel()
        graceTimer = nil
    }

    // MARK: Writing, for the streams

    /// Queues a frame of stream `id`'s; flushed at the end of the read batch, or by `flush`.
    func write(_ payload: HTTP2Frame.FramePayload, on id: HTTP2StreamID, promise: EventLoopPromise<Void>? = nil) {
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload)), promise: promise)
        needsFlush = true
    }

    func flush() {
        needsFlush = false
        context.flush()
        // What is flushed and still open is held by flow control (or a client that has not ended
        // its side): bounded by `timeouts.send`.
        for stream in streams where stream.isHeldAfterAnswer { stream.armSendTimer() }
    }

    private func flushIfNeeded() {
        if needsFlush { flush() }
    }

    /// Flushes once the event loop has handled every channel that was ready: for what is written
    /// from another channel's event (an origin's answer, an L2 reply).
    func flushSoon() {
        guard needsFlush, !flushQueued, !reading else { return }
        flushQueued = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushQueued = false
            flushIfNeeded()
        }
    }
}

import Logging
import NIOCore
import NIOHTTP1
import VitrineCore

/// One storefront connection. It frames requests from the bytes read (`RequestDecoder`), keeps
/// pipelined requests in order (one is answered at a time; later ones wait, and reading pauses
/// while an origin fetch is under way), streams request bodies to the exchange that forwards
/// them, and writes responses as raw bytes.
///
/// Every connection is bounded: no request is taken from it while its socket holds more than
/// `limits.max_pending_output` unsent bytes (hits as misses), and a client that stops making
/// progress is closed: `timeouts.client_header` for a head, `client_body` between body bytes,
/// `keepalive` while idle, `send` while the socket takes nothing. An error that closes the
/// connection is followed by a lingering close, so the answer reaches a client still sending.
///
/// What happens to each request is in `RequestPipeline.swift`; how a forwarded one is fetched
/// and delivered is in `ForwardExchange.swift`.
final class ClientConnectionHandler: ChannelDuplexHandler, RequestTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let proxy: ProxyContext
    /// Precomputed listing pages, answered before the cache (a reload may replace them).
    private let listingsSource: Reloadable<Listings>
    private var listingsCopy: Reloadable<Listings>.Copy
    private var routesCopy: Reloadable<Router>.Copy
    private(set) var context: ChannelHandlerContext!
    /// Where the request being answered is, and whether its body is arriving: every decision
    /// about the connection's requests is the machine's; this handler carries them out.
    var machine: RequestStateMachine<ForwardExchange, CollapseWait>
    /// The connection's own concerns beside its requests: which client timer runs and what its
    /// firing means, keep-alive after an answer (a drain, a close-delimited body), lingering.
    var connection: HTTP1ConnectionStateMachine
    private var needsFlush = false
    /// A flush is queued on the event loop (`flushSoon`).
    private var flushQueued = false
    /// `decodeBuffered` is taking requests from the decoder.
    private var decoding = false
    /// Closes a lingering connection once the client has been quiet for `timeouts.linger`.
    private var lingerTimer: Scheduled<Void>?
    /// The most a lingering close waits, however long the client goes on sending (nginx's
    /// `lingering_time`).
    static let maxLinger: Duration = .seconds(30)

    /// The client wait timer (`connection` says when to arm it, and what its firing means).
    private var waitTimer: Scheduled<Void>?
    /// Request heads taken from the decoder so far.
    private var headsDecoded = 0
    /// Armed while the socket takes none of what is queued for it.
    private var sendTimer: Scheduled<Void>?
    /// Whom the connection is from: the socket's peer, or the one a PROXY protocol header names;
    /// `https` on a TLS listener (what `X-Forwarded-Proto` says, unless a trusted proxy in front
    /// says otherwise).
    private var peer: ClientPeer
    /// The connection's number among the node's (its requests' ids carry it).
    private var connectionNumber: UInt64 = 0
    /// The request being answered, for the access log and the request metrics.
    var record: RequestRecord?
    /// Bytes queued for the socket so far.
    private var bytesWritten = 0

    private var decoder: RequestDecoder
    /// The buffer the last hit's head went out in. Once the socket has taken it (the flush at the
    /// end of a read batch), nothing else references it and the next hit writes its head into
    /// the same memory: a hit allocates nothing for its head.
    private var spareHeadBuffer: ByteBuffer?
    /// The streamed answer being written is re-framed as chunks (no length, an HTTP/1.1 client).
    var chunkedBody = false

    init(proxy: ProxyContext, listings: Reloadable<Listings>, scheme: String = "http") {
        self.proxy = proxy
        self.peer = ClientPeer(scheme: scheme)
        self.listingsSource = listings
        self.listingsCopy = listings.copy()
        self.routesCopy = proxy.routes.copy()
        self.decoder = RequestDecoder(limits: proxy.limits)
        self.machine = RequestStateMachine(maxBody: proxy.limits.maxBody.bytes)
        let timeouts = proxy.timeouts
        self.connection = HTTP1ConnectionStateMachine(
            timeouts: .init(
                keepalive: UInt64(timeouts.keepalive.nanosecondsClamped), header: UInt64(timeouts.clientHeader.nanosecondsClamped),
                body: UInt64(timeouts.clientBody.nanosecondsClamped), linger: UInt64(timeouts.linger.nanosecondsClamped)),
            now: NIODeadline.now().uptimeNanoseconds)
    }

    var allocator: ByteBufferAllocator { context.channel.allocator }
    /// The listings now; a request reads them once.
    var listings: Listings { listingsSource.current(through: &listingsCopy) }
    /// The routes now; a request reads them once, at receive.
    var router: Router { proxy.routes.current(through: &routesCopy) }
    var canAcceptMore: Bool { context.channel.isWritable }
    var eventLoop: any EventLoop { context.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connectionNumber = proxy.connectionsAccepted.wrappingAdd(1, ordering: .relaxed).newValue
        if let address = context.channel.remoteAddress?.ipAddress { peer.set(address) }
        updateWaiting()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        // A queued flush has nothing left to flush.
        needsFlush = false
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let header as ProxyProtocolHeader:
            // The load balancer's word on whom the connection is from (before any request).
            if let source = header.source { peer.set(source.description) }
        case is ChannelShouldQuiesceEvent:
            // Idle: closed now. Answering: closed once that answer is written.
            let idle = if case .idle = machine.step { !decoder.hasBufferedBytes } else { false }
            if connection.quiesce(idle: idle) { closeAfterWrites() }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .lingering = machine.step {
            // Dropped, and the client is still sending.
            armLingerTimer()
            return
        }
        guard !machine.isClosing else { return }
        decoder.append(unwrapInboundIn(data))
        decodeBuffered()
    }

    /// Takes requests from the bytes read while the machine may take them: the open request's
    /// body always, a new head only when no request is being answered, and nothing while the
    /// socket holds more than `max_pending_output` (a client that pipelines and never reads
    /// gets nothing more queued). What is not taken stays in the decoder, in order.
    private func decodeBuffered() {
        // Re-entered through an answer given while decoding: the outer loop goes on in order.
        guard !decoding else { return }
        decoding = true
        defer { decoding = false }
        let bodyBefore = machine.body
        let headsBefore = headsDecoded
        do {
            while machine.mayTakePart, let part = try decoder.next() {
                receive(part)
            }
        } catch {
            malformed(error)
        }
        let newHead = headsDecoded != headsBefore
        // One clock read per read batch that brought requests, not one timer per request: the
        // keep-alive timer checks this when it fires.
        if newHead { connection.requestsArrived(now: NIODeadline.now().uptimeNanoseconds) }
        if machine.resumeReading() { context.read() }
        updateWaiting(bodyProgress: machine.body != bodyBefore, newHead: newHead)
    }

    private func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(var head):
            headsDecoded &+= 1
            machine.headReceived()
            if connection.quiescing || proxy.draining.load(ordering: .relaxed) {
                // Draining: this answer says `Connection: close`, and the client goes elsewhere.
                head.headers.add(name: "Connection", value: "close")
            }
            startRecord(head)
            serve(head)
        case .body(let buffer):
            switch machine.bodyReceived(buffer.readableBytes) {
            case .forward: machine.fetch?.requestBody(buffer)
            case .drop: break
            case .tooLarge:
                cancel(machine.abandon())
                respond(.bodyTooLarge, keepAlive: false)
                flushIfNeeded()
            }
        case .end:
            if machine.bodyEnded() { machine.fetch?.requestEnd() }
        }
    }

    /// The bytes read are not an acceptable request. When they belong to the request being
    /// answered (its body), that request is abandoned and answered at once: waiting for an
    /// origin that waits for the rest of the body would hold both for nothing.
    private func malformed(_ error: ProxyError) {
        if machine.body != .complete {
            brokenRequest(error, closeQuietlyLinger: true)
        } else {
            respond(error, keepAlive: false)
            flushIfNeeded()
        }
    }

    /// The open request cannot be completed: abandoned, and answered with `error` unless its
    /// answer has begun.
    private func brokenRequest(_ error: ProxyError, closeQuietlyLinger: Bool) {
        switch machine.requestBroken(responseStarted: machine.fetch?.responseStarted == true) {
        case .closeQuietly(let abandoned):
            // Answered already, or answering: nothing more can be said on this connection.
            cancel(abandoned)
            closeAfterWrites(linger: closeQuietlyLinger)
        case .answer(let abandoned):
            cancel(abandoned)
            respond(error, keepAlive: false)
        }
        flushIfNeeded()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // I/O errors (reset by peer and the like): nothing to answer.
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishRecord()
        cancelTimers()
        cancel(machine.closed())
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        let fetch = machine.writabilityChanged(writable)
        if writable {
            sendTimer?.cancel()
            sendTimer = nil
            fetch?.clientBecameWritable()
            if !machine.isClosing {
                // Requests read before the socket filled up are taken now.
                decodeBuffered()
                flushIfNeeded()
            }
        } else if sendTimer == nil {
            let timeout = proxy.timeouts.send
            sendTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout.nanosecondsClamped))) { [self] in
                // The client has taken nothing for that long: it is gone, or holding us.
                sendTimer = nil
                proxy.stats.increment(.clientTimeouts)
                cancel(machine.close())
                self.context.close(promise: nil)
            }
        }
        updateWaiting()
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // While a forwarded request waits on its origin, later pipelined requests stay in the
        // socket: reading them would only grow the decoder's buffer. The same while the client
        // does not read what it was sent. (A wait on the shared tier with nothing buffered keeps
        // reading: see `readRequested`.)
        if machine.readRequested(decoderHasBytes: decoder.hasBufferedBytes) { context.read() }
    }

    // MARK: Timeouts

    /// Re-arms the client timer for what the connection now waits for, as `connection` says.
    private func updateWaiting(bodyProgress: Bool = false, newHead: Bool = false) {
        if let violation = machine.violation, !machine.isClosing {
            proxy.logger.error("request state machine: an impossible event; closing the connection", metadata: ["event": .string(violation)])
            cancel(machine.close())
            context.close(promise: nil)
            return
        }
        let wait = machine.clientWait(decoderHasBytes: decoder.hasBufferedBytes)
        run(connection.wait(for: wait, bodyProgress: bodyProgress, newHead: newHead, now: NIODeadline.now().uptimeNanoseconds))
    }

    private func run(_ action: HTTP1ConnectionStateMachine.TimerAction) {
        switch action {
        case .keep:
            break
        case .cancel:
            waitTimer?.cancel()
            waitTimer = nil
        case .arm(let wait, let nanoseconds):
            waitTimer?.cancel()
            waitTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(clamping: nanoseconds))) { [self] in
                waitTimer = nil
                timedOut(wait)
            }
        }
    }

    private func timedOut(_ wait: ClientWait) {
        switch connection.timerFired(wait, closing: machine.isClosing, now: NIODeadline.now().uptimeNanoseconds) {
        case .ignore:
            return
        case .rearm(let wait, let nanoseconds):
            // Requests came since the timer was armed: idle only since the last of them.
            run(.arm(wait, nanoseconds: nanoseconds))
            return
        case .closeIdle:
            _ = machine.close()
            context.close(promise: nil)
        case .answerHeadTimeout:
            proxy.stats.increment(.clientTimeouts)
            respond(.requestTimeout, keepAlive: false)
        case .breakBody:
            proxy.stats.increment(.clientTimeouts)
            // The origin connection waiting for the rest of the body is released now.
            brokenRequest(.requestTimeout, closeQuietlyLinger: false)
        }
        flushIfNeeded()
    }

    private func cancelTimers() {
        waitTimer?.cancel()
        waitTimer = nil
        sendTimer?.cancel()
        sendTimer = nil
        connection.timersCancelled()
        lingerTimer?.cancel()
        lingerTimer = nil
    }

    // MARK: Request flow


    /// The request being answered has its whole answer written (`keepAlive`: and the connection
    /// stays open): the next request is taken, or the connection closes.
    func answered(keepAlive: Bool) {
        finishRecord()
        switch machine.answered(keepAlive: connection.answered(keepAlive: keepAlive)) {
        case .next:
            // Inside `decodeBuffered` (an answer given at once) its loop takes the next request.
            guard !decoding else { return }
            decodeBuffered()
            flushSoon()
        case .close:
            closeAfterWrites()
        case .nothing:
            break
        }
    }

    /// Called once a fetch's response is completely written (or could not be).
    func exchangeFinished(keepAlive: Bool) {
        answered(keepAlive: keepAlive)
    }

    // MARK: Observing

    /// Starts the record of a request: who it is from, its id.
    private func startRecord(_ head: HTTPRequestHead) {
        record = peer.record(for: head, proxy: proxy, connection: connectionNumber, request: headsDecoded, bytesBefore: bytesWritten)
    }

    /// The request's answer is written (or will not be): counted and logged, once.
    private func finishRecord() {
        guard let finished = record.take() else { return }
        proxy.observe(finished, bytes: bytesWritten &- finished.bytesBefore, on: context.eventLoop)
    }

    func originResponded(after nanoseconds: Int64) {
        record?.originNanoseconds = nanoseconds
    }

    // MARK: Writing

    /// A buffer of at least `capacity` bytes for a response head: the spare one when it is free.
    func headBuffer(capacity: Int) -> ByteBuffer {
        guard var buffer = spareHeadBuffer.take() else { return allocator.buffer(capacity: capacity) }
        buffer.clear(minimumCapacity: capacity)  // allocates only if the socket still holds it
        return buffer
    }

    /// Writes a head from `headBuffer(capacity:)` and keeps its memory for the next one.
    func writeHead(_ head: ByteBuffer) {
        write(head)
        spareHeadBuffer = head
    }

    /// Queues bytes for the socket; flushed at the end of the read batch or by `flush()`.
    func write(_ buffer: ByteBuffer) {
        bytesWritten &+= buffer.readableBytes
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    func flush() {
        needsFlush = false
        context.flush()
    }

    private func flushIfNeeded() {
        if needsFlush { flush() }
    }

    /// Flushes once the event loop has handled every channel that was ready, for an answer
    /// given from another channel's event (an L2 reply, a fetch others waited on). One Redis
    /// read completes many lookups: their answers then reach their sockets back to back, as the
    /// hits of one read batch do at its end, rather than a `writev` between each one's work (on
    /// loopback each also runs the client's receive path and wakes it). Netty's
    /// `FlushConsolidationHandler` does the same. Within the connection's own read, the flush
    /// at the end of the batch already does it.
    func flushSoon() {
        guard needsFlush, !flushQueued else { return }
        flushQueued = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushQueued = false
            flushIfNeeded()
        }
    }

    /// Answers with the proxy's own JSON error body, closing unless `keepAlive` (and the error
    /// allows it). An answer that closes the connection lingers when the error is the client's:
    /// it may still be sending what the error was about.
    func respond(_ error: ProxyError, keepAlive: Bool) {
        let keepAlive = keepAlive && !error.closesConnection
        deliverError(error, keepAlive: keepAlive)
        if !keepAlive { closeAfterWrites(linger: connection.lingers(afterErrorStatus: Int(error.status.code))) }
    }

    /// Closes the connection once everything written so far has reached the socket. With
    /// `linger`, the output side is shut first and whatever the client still sends is read and
    /// dropped until it has been quiet for `timeouts.linger` (30 s at most, as nginx's lingering
    /// close): closing with unread input makes the kernel send a reset, which can destroy the
    /// answer before the client reads it.
    func closeAfterWrites(linger: Bool = false) {
        finishRecord()
        guard let abandoned = machine.close() else { return }
        cancel(abandoned)
        cancelTimers()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        needsFlush = false
        let context = self.context!
        guard linger, connection.mayLinger else {
            promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            guard case .success = result, context.channel.isActive else {
                context.close(promise: nil)
                return
            }
            machine.lingerStarted()  // what arrives now is dropped unread
            context.close(mode: .output, promise: nil)
            armLingerTimer()
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(Self.maxLinger.nanosecondsClamped))) {
                context.close(promise: nil)
            }
            context.read()
        }
    }

    private func armLingerTimer() {
        lingerTimer?.cancel()
        let context = self.context!
        lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(proxy.timeouts.linger.nanosecondsClamped))) {
            context.close(promise: nil)
        }
    }
}

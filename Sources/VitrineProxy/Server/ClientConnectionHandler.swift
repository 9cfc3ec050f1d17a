import Logging
import NIOCore
import NIOHTTP1

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
final class ClientConnectionHandler: ChannelDuplexHandler, ExchangeClient {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Queued {
        case part(HTTPServerRequestPart)
        case failure(ProxyError)
    }

    let proxy: ProxyContext
    private(set) var context: ChannelHandlerContext!
    /// The forwarded request being answered, if any.
    var exchange: ForwardExchange?
    /// The request waiting for a collapsed fetch of the same key, if any.
    var collapseWait: CollapseWait?
    /// The shared tier is being asked for the request being answered.
    var sharedLookupPending = false
    /// A request is being answered asynchronously: later pipelined requests wait.
    var busy: Bool { exchange != nil || collapseWait != nil || sharedLookupPending }
    /// Parts of requests that arrived while an earlier one was being answered.
    private var queue = CircularBuffer<Queued>()
    /// A request head arrived and its end has not yet.
    private(set) var requestOpen = false
    /// The open request was answered without its body: drop the rest of the body.
    private var discardingBody = false
    private var requestBodyBytes = 0
    private var readDeferred = false
    private var needsFlush = false
    private(set) var closing = false
    /// `decodeBuffered` is taking requests from the decoder.
    private var decoding = false
    /// Output is shut and input is read and dropped until the client closes or `linger` passes.
    private var lingering = false
    /// Closes a lingering connection once the client has been quiet for `timeouts.linger`.
    private var lingerTimer: Scheduled<Void>?
    /// The most a lingering close waits, however long the client goes on sending (nginx's
    /// `lingering_time`).
    static let maxLinger: Duration = .seconds(30)

    /// What the connection is waiting for from the client, with its timer.
    private enum Waiting: Equatable {
        case nothing
        /// Between requests.
        case idle
        /// The rest of a request head whose first bytes have arrived.
        case head
        /// More of a request body.
        case body
    }
    private var waiting = Waiting.nothing
    private var waitTimer: Scheduled<Void>?
    /// Request heads taken from the decoder so far, and when the last batch of them arrived.
    private var headsDecoded = 0
    private var lastRequestAt = NIODeadline.now()
    /// Armed while the socket takes none of what is queued for it.
    private var sendTimer: Scheduled<Void>?
    /// The peer's IP address, for `X-Forwarded-For`.
    private(set) var clientAddress = "unknown"

    private var decoder: RequestDecoder
    /// The buffer the last hit's head went out in. Once the socket has taken it (the flush at the
    /// end of a read batch), nothing else references it and the next hit writes its head into
    /// the same memory: a hit allocates nothing for its head.
    private var spareHeadBuffer: ByteBuffer?

    init(proxy: ProxyContext) {
        self.proxy = proxy
        self.decoder = RequestDecoder(limits: proxy.limits)
    }

    var allocator: ByteBufferAllocator { context.channel.allocator }
    var canAcceptMore: Bool { context.channel.isWritable }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress?.ipAddress { clientAddress = address }
        updateWaiting()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else {
            // Lingering: dropped, and the client is still sending.
            if lingering { armLingerTimer() }
            return
        }
        decoder.append(unwrapInboundIn(data))
        decodeBuffered()
    }

    /// Takes requests from the bytes read, as long as the socket takes what is written: a client
    /// that pipelines and never reads gets nothing more queued than `max_pending_output`.
    private func decodeBuffered() {
        // Re-entered through receive → drainQueue: the outer loop goes on in order.
        guard !decoding else { return }
        decoding = true
        defer { decoding = false }
        let bodyBefore = requestBodyBytes
        let headsBefore = headsDecoded
        do {
            while !closing, context.channel.isWritable, let part = try decoder.next() {
                if case .head = part { headsDecoded &+= 1 }
                receive(part)
            }
        } catch {
            malformed(error)
        }
        let newHead = headsDecoded != headsBefore
        // One clock read per read batch that brought requests, not one timer per request: the
        // keep-alive timer checks this when it fires.
        if newHead { lastRequestAt = .now() }
        updateWaiting(bodyProgress: requestBodyBytes != bodyBefore, newHead: newHead)
    }

    /// The bytes read are not an acceptable request. When they belong to the request being
    /// answered (its body), that request is abandoned and answered at once: waiting for an
    /// origin that waits for the rest of the body would hold both for nothing.
    private func malformed(_ error: ProxyError) {
        if requestOpen {
            requestOpen = false
            if discardingBody || exchange?.responseStarted == true {
                // Answered already, or answering: nothing more can be said on this connection.
                abandonExchange()
                closeAfterWrites(linger: true)
            } else {
                abandonExchange()
                respond(error, keepAlive: false)
            }
            flushIfNeeded()
        } else if busy {
            queue.append(.failure(error))
        } else {
            respond(error, keepAlive: false)
            flushIfNeeded()
        }
    }

    private func receive(_ part: HTTPServerRequestPart) {
        if requestOpen {
            receiveBodyPart(part)
            if !busy && !requestOpen { drainQueue() }
        } else if busy || !queue.isEmpty {
            queue.append(.part(part))
        } else {
            process(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // I/O errors (reset by peer and the like): nothing to answer.
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        cancelTimers()
        exchange?.clientClosed()
        exchange = nil
        if let waiting = collapseWait {
            waiting.timer.cancel()
            _ = proxy.collapser.leave(waiting.key, id: waiting.id)
            collapseWait = nil
        }
        queue.removeAll()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            sendTimer?.cancel()
            sendTimer = nil
            exchange?.clientBecameWritable()
            if !closing {
                // Requests read before the socket filled up are taken now.
                decodeBuffered()
                flushIfNeeded()
                if readDeferred && !busy && queue.isEmpty {
                    readDeferred = false
                    context.read()
                }
            }
        } else if sendTimer == nil {
            let timeout = proxy.timeouts.send
            sendTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout.nanosecondsClamped))) { [self] in
                // The client has taken nothing for that long: it is gone, or holding us.
                sendTimer = nil
                proxy.stats.increment(.clientTimeouts)
                abandonExchange()
                closing = true
                self.context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if lingering {
            context.read()
        } else if (busy && !requestOpen) || !queue.isEmpty || closing || !context.channel.isWritable {
            // While a forwarded request waits on its origin, later pipelined requests stay in the
            // socket: reading them would only grow the queue. The same while the client does
            // not read what it was sent.
            readDeferred = true
        } else {
            context.read()
        }
    }

    // MARK: Timeouts

    /// Re-arms the timer for what the connection now waits for. A head's timer runs from its
    /// first byte (a client sending a byte at a time gains nothing); a body's from its last; the
    /// keep-alive timer from the last request (it is not re-armed per request: it looks at
    /// `lastRequestAt` when it fires).
    private func updateWaiting(bodyProgress: Bool = false, newHead: Bool = false) {
        let now: Waiting
        if closing {
            now = .nothing
        } else if requestOpen {
            now = .body
        } else if busy || !queue.isEmpty || !context.channel.isWritable {
            now = .nothing  // the origin's timeouts apply, or the send timeout
        } else if decoder.hasBufferedBytes {
            now = .head
        } else {
            now = .idle
        }
        guard now != waiting || (now == .body && bodyProgress) || (now == .head && newHead) else { return }
        let timeout: Duration
        switch now {
        case .nothing: timeout = .zero
        case .idle: timeout = proxy.timeouts.keepalive
        case .head: timeout = proxy.timeouts.clientHeader
        case .body: timeout = proxy.timeouts.clientBody
        }
        arm(now, in: .nanoseconds(Int64(timeout.nanosecondsClamped)))
    }

    private func arm(_ kind: Waiting, in delay: TimeAmount) {
        waitTimer?.cancel()
        waitTimer = nil
        waiting = kind
        guard kind != .nothing else { return }
        waitTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            waitTimer = nil
            timedOut(kind)
        }
    }

    private func timedOut(_ waited: Waiting) {
        guard !closing, waited == waiting else { return }
        waiting = .nothing
        switch waited {
        case .nothing:
            return
        case .idle:
            let keepalive = TimeAmount.nanoseconds(Int64(proxy.timeouts.keepalive.nanosecondsClamped))
            let idleFor = NIODeadline.now() - lastRequestAt
            if idleFor < keepalive {
                // Requests came since the timer was armed: idle only since the last of them.
                arm(.idle, in: keepalive - idleFor)
                return
            }
            closing = true
            context.close(promise: nil)
        case .head:
            proxy.stats.increment(.clientTimeouts)
            respond(.requestTimeout, keepAlive: false)
        case .body:
            proxy.stats.increment(.clientTimeouts)
            requestOpen = false
            let answered = discardingBody || exchange?.responseStarted == true
            // The origin connection waiting for the rest of the body is released now.
            abandonExchange()
            if answered { closeAfterWrites(linger: false) } else { respond(.requestTimeout, keepAlive: false) }
        }
        flushIfNeeded()
    }

    private func cancelTimers() {
        waitTimer?.cancel()
        waitTimer = nil
        sendTimer?.cancel()
        sendTimer = nil
        waiting = .nothing
        lingerTimer?.cancel()
        lingerTimer = nil
    }

    // MARK: Request flow

    private func process(_ part: HTTPServerRequestPart) {
        guard case .head(let head) = part, !closing else { return }
        requestOpen = true
        discardingBody = false
        requestBodyBytes = 0
        serve(head)
        if !busy && requestOpen {
            // Answered already (a hit, an error): whatever body follows is not needed.
            discardingBody = true
        }
    }

    private func receiveBodyPart(_ part: HTTPServerRequestPart) {
        switch part {
        case .head:
            return
        case .body(let buffer):
            requestBodyBytes += buffer.readableBytes
            if requestBodyBytes > proxy.limits.maxBody.bytes {
                abandonExchange()
                respond(.bodyTooLarge, keepAlive: false)
                flushIfNeeded()
                return
            }
            if !discardingBody { exchange?.requestBody(buffer) }
        case .end:
            requestOpen = false
            if discardingBody {
                discardingBody = false
            } else {
                exchange?.requestEnd()
            }
        }
    }

    /// Called once an asynchronously answered request's response is completely written.
    func exchangeFinished(keepAlive: Bool) {
        exchange = nil
        guard collapseWait == nil, !sharedLookupPending else { return }
        if !keepAlive || closing {
            closeAfterWrites()
            return
        }
        if requestOpen { discardingBody = true }
        drainQueue()
        flushIfNeeded()
        updateWaiting()
    }

    /// Works through queued parts in order: every part while no exchange is under way, and the
    /// body of a request whose exchange has just begun (so that its end reaches the origin).
    private func drainQueue() {
        while !busy || requestOpen, !closing, let item = queue.popFirst() {
            switch item {
            case .part(let part):
                if requestOpen { receiveBodyPart(part) } else { process(part) }
            case .failure(let error):
                respond(error, keepAlive: false)
            }
        }
        if !busy && queue.isEmpty && !closing {
            // Requests left in the decoder while the socket was full.
            decodeBuffered()
            if readDeferred && !busy && queue.isEmpty && context.channel.isWritable {
                readDeferred = false
                context.read()
            }
        }
    }

    private func abandonExchange() {
        exchange?.clientClosed()
        exchange = nil
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

    /// Answers with the proxy's own JSON error body. An answer that closes the connection
    /// lingers: the client may still be sending what the error was about.
    func respond(_ error: ProxyError, keepAlive: Bool) {
        let keepAlive = keepAlive && !error.closesConnection
        proxy.stats.increment(.clientErrors)
        proxy.metrics.errors.increment()
        let body = error.jsonBody
        var buffer = allocator.buffer(capacity: 192 + body.utf8.count)
        buffer.writeStatusLine(error.status)
        buffer.writeStaticString("Content-Type: application/json\r\nCache-Control: no-store\r\n")
        buffer.writeHeader("Content-Length", decimal: body.utf8.count)
        if !keepAlive { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        buffer.writeString(body)
        write(buffer)
        if !keepAlive { closeAfterWrites(linger: error.status.code >= 400 && error.status.code < 500) }
    }

    /// Closes the connection once everything written so far has reached the socket. With
    /// `linger`, the output side is shut first and whatever the client still sends is read and
    /// dropped until it has been quiet for `timeouts.linger` (30 s at most, as nginx's lingering
    /// close): closing with unread input makes the kernel send a reset, which can destroy the
    /// answer before the client reads it.
    func closeAfterWrites(linger: Bool = false) {
        guard !closing else { return }
        closing = true
        cancelTimers()
        queue.removeAll()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        needsFlush = false
        let context = self.context!
        let lingerFor = proxy.timeouts.linger
        guard linger, lingerFor > .zero else {
            promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            guard case .success = result, context.channel.isActive else {
                context.close(promise: nil)
                return
            }
            lingering = true  // what arrives now is dropped unread (`closing` is set)
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

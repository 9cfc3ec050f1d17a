import Logging
import NIOCore
import NIOHTTP1

/// One storefront connection. It frames requests from the bytes read (`RequestDecoder`), keeps
/// pipelined requests in order (one is answered at a time; later ones wait, and reading pauses
/// while an origin fetch is under way), streams request bodies to the exchange that forwards
/// them, and writes responses as raw bytes.
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
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        decoder.append(unwrapInboundIn(data))
        do {
            while !closing, let part = try decoder.next() { receive(part) }
        } catch {
            if busy || requestOpen {
                queue.append(.failure(error))
            } else {
                respond(error, keepAlive: false)
                flushIfNeeded()
            }
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
        if context.channel.isWritable { exchange?.clientBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // While a forwarded request waits on its origin, later pipelined requests stay in the
        // socket: reading them would only grow the queue.
        if (busy && !requestOpen) || !queue.isEmpty || closing {
            readDeferred = true
        } else {
            context.read()
        }
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
        if !busy && queue.isEmpty && readDeferred && !closing {
            readDeferred = false
            context.read()
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

    /// Answers with the proxy's own JSON error body.
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
        if !keepAlive { closeAfterWrites() }
    }

    /// Closes the connection once everything written so far has reached the socket.
    func closeAfterWrites() {
        guard !closing else { return }
        closing = true
        queue.removeAll()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        needsFlush = false
        let context = self.context!
        promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

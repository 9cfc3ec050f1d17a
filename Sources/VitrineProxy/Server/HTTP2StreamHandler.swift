import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import VitrineCore

/// One HTTP/2 stream: one request through the request path, with no HTTP/1.1 in between. Its
/// HEADERS become the request head (`HTTP2RequestFields`), its DATA the body, and the answer is
/// written as HEADERS and DATA frames: a stored response's fields were made at store time, its
/// body goes out as a slice of the stored bytes, END_STREAM on its last DATA frame.
///
/// A stream has no decoder and, on a hit, no timer: the connection's idle time and drain are
/// `NIOHTTP2ServerConnectionManagementHandler`'s. A timer is armed only while a request body is
/// awaited (`timeouts.client_body`) or the stream can take nothing more (`timeouts.send`: a
/// client that holds a stream open with a zero window is reset).
final class HTTP2StreamHandler: ChannelInboundHandler, RequestTransport {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let proxy: ProxyContext
    private let listingsSource: Reloadable<Listings>
    private var listingsCopy: Reloadable<Listings>.Copy
    private var routesCopy: Reloadable<Router>.Copy
    private var context: ChannelHandlerContext!
    var machine: RequestStateMachine<ForwardExchange, CollapseWait>
    var record: RequestRecord?
    private var peer = ClientPeer(scheme: "https")
    private let proxyHeader: ProxyProtocolHeader?
    private var streamNumber: UInt64 = 0

    /// Where the answer is.
    private enum Answer {
        /// Nothing written yet.
        case none
        /// A whole answer, held until it is complete so that END_STREAM goes on its last frame.
        case held(HPACKHeaders, body: ByteBuffer?)
        /// The head went out; body parts follow as they come (`complete`: all of them have).
        case streaming(complete: Bool)
        /// END_STREAM was sent, or the stream was reset.
        case ended
    }

    private var answer = Answer.none
    private var needsFlush = false
    private var flushQueued = false
    /// Handling a frame read: what is written is flushed at the end of the read batch.
    private var reading = false
    /// Armed while a request body is awaited, or while the stream takes nothing.
    private var bodyTimer: Scheduled<Void>?
    private var sendTimer: Scheduled<Void>?
    /// Bytes written on the stream (DATA), for the access log.
    private var bytesWritten = 0

    init(proxy: ProxyContext, listings: Reloadable<Listings>, proxyHeader: ProxyProtocolHeader?) {
        self.proxy = proxy
        self.listingsSource = listings
        self.listingsCopy = listings.copy()
        self.routesCopy = proxy.routes.copy()
        self.proxyHeader = proxyHeader
        self.machine = RequestStateMachine(maxBody: proxy.limits.maxBody.bytes)
    }

    var allocator: ByteBufferAllocator { context.channel.allocator }
    var canAcceptMore: Bool { context.channel.isWritable }
    var eventLoop: any EventLoop { context.eventLoop }
    var listings: Listings { listingsSource.current(through: &listingsCopy) }
    var router: Router { proxy.routes.current(through: &routesCopy) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        streamNumber = proxy.connectionsAccepted.wrappingAdd(1, ordering: .relaxed).newValue
        if let source = proxyHeader?.source {
            peer.set(source.description)
        } else if let address = context.channel.remoteAddress?.ipAddress {
            peer.set(address)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        needsFlush = false
    }

    // MARK: The request

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        defer { reading = false }
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            guard record == nil, case .idle = machine.step, machine.body == .complete, case .none = answer else {
                // Trailers: not forwarded (the origin gets the body, which is what is keyed and
                // framed); they end the request.
                if headers.endStream { requestEnded() }
                return
            }
            guard let head = HTTP2RequestFields.requestHead(headers.headers, endStream: headers.endStream, limits: proxy.limits) else {
                return reset(.protocolError)
            }
            machine.headReceived()
            if headers.endStream { _ = machine.bodyEnded() }
            record = peer.record(for: head, proxy: proxy, connection: streamNumber, request: 1, bytesBefore: 0)
            serve(head)
            armBodyTimer()
        case .data(let frame):
            guard case .byteBuffer(let bytes) = frame.data else { return }
            if bytes.readableBytes > 0, machine.body != .complete {
                switch machine.bodyReceived(bytes.readableBytes) {
                case .forward: machine.fetch?.requestBody(bytes)
                case .drop: break
                case .tooLarge: return broken(.bodyTooLarge)
                }
            }
            if frame.endStream { requestEnded() }
            armBodyTimer()
        case .rstStream:
            context.close(promise: nil)
        default:
            break
        }
        checkViolation()
    }

    private func requestEnded() {
        guard machine.body != .complete else { return }
        if machine.bodyEnded() { machine.fetch?.requestEnd() }
        bodyTimer?.cancel()
        bodyTimer = nil
    }

    /// The client broke its request (a body too large, a body timeout): answered with `error`
    /// when nothing was answered yet, else the stream is reset.
    private func broken(_ error: ProxyError) {
        let started = machine.fetch?.responseStarted == true
        switch machine.requestBroken(responseStarted: started) {
        case .answer(let abandoned):
            cancel(abandoned)
            deliverError(error, keepAlive: false)
            answered(keepAlive: false)
        case .closeQuietly(let abandoned):
            cancel(abandoned)
            reset(.cancel)
        }
    }

    private func armBodyTimer() {
        bodyTimer?.cancel()
        bodyTimer = nil
        guard machine.body != .complete, !machine.isClosing else { return }
        let timeout = TimeAmount.nanoseconds(Int64(proxy.timeouts.clientBody.nanosecondsClamped))
        bodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            bodyTimer = nil
            proxy.stats.increment(.clientTimeouts)
            broken(.requestTimeout)
            flushIfNeeded()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishRecord()
        cancelTimers()
        cancel(machine.closed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error (swift-nio-http2 has reset the stream): nothing more to answer.
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        let fetch = machine.writabilityChanged(writable)
        if writable {
            sendTimer?.cancel()
            sendTimer = nil
            fetch?.clientBecameWritable()
        } else if sendTimer == nil {
            let timeout = TimeAmount.nanoseconds(Int64(proxy.timeouts.send.nanosecondsClamped))
            sendTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                // The client has taken nothing for that long (a zero window): it is gone, or
                // holding us.
                sendTimer = nil
                proxy.stats.increment(.clientTimeouts)
                cancel(machine.close())
                reset(.cancel)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func cancelTimers() {
        bodyTimer?.cancel()
        bodyTimer = nil
        sendTimer?.cancel()
        sendTimer = nil
    }


    private func checkViolation() {
        guard let violation = machine.violation, !machine.isClosing else { return }
        proxy.logger.error("request state machine: an impossible event; resetting the stream", metadata: ["event": .string(violation)])
        cancel(machine.close())
        reset(.internalError)
    }

    // MARK: The answer

    func answered(keepAlive: Bool) {
        finishRecord()
        // The stream ends here, not when the last body byte is written: the fetch that wrote it
        // may still be storing what it fetched, and an ended stream closes.
        switch answer {
        case .held(let fields, let body):
            answer = .ended
            if let body, body.readableBytes > 0 {
                context.write(wrapOutboundOut(.headers(.init(headers: fields))), promise: nil)
                context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: true))), promise: nil)
            } else {
                context.write(wrapOutboundOut(.headers(.init(headers: fields, endStream: true))), promise: nil)
            }
            needsFlush = true
        case .streaming(complete: true):
            answer = .ended
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
            needsFlush = true
        case .streaming(complete: false):
            // Cut short (the origin failed, the fetch was abandoned): a reset, so that the client
            // does not take a truncated body for the whole of it.
            reset(.internalError)
        case .none, .ended:
            break
        }
        _ = machine.answered(keepAlive: true)
        checkViolation()
        // Answered from another event (the origin's, L2's): flushed once the loop has handled
        // what is ready. Within this stream's read, the end of the read batch flushes.
        if !reading { flushSoon() }
    }

    func exchangeFinished(keepAlive: Bool) {
        answered(keepAlive: keepAlive)
    }

    func originResponded(after nanoseconds: Int64) {
        record?.originNanoseconds = nanoseconds
    }

    private func finishRecord() {
        guard let finished = record.take() else { return }
        proxy.observe(finished, bytes: bytesWritten &- finished.bytesBefore, on: context.eventLoop)
    }

    func sendStored(_ stored: StoredAnswer, age: Int, verdict: CacheVerdict, for request: HTTPRequestHead, keepAlive: Bool) {
        var fields: HPACKHeaders
        switch stored {
        case .full(let response, let gzip, _):
            fields = gzip ? response.http2GzipFields ?? response.http2Fields : response.http2Fields
        case .notModified(let response):
            fields = HPACKHeaders()
            fields.add(name: ":status", value: "304")
            for (name, value) in response.headers where CachedResponse.notModifiedFields.contains(where: name.caseInsensitiveEquals) {
                fields.add(name: name.lowercased(), value: value)
            }
            if response.gzip != nil { fields.add(name: "vary", value: "Accept-Encoding") }
        case .partial(let response, let first, let last):
            fields = HPACKHeaders()
            fields.add(name: ":status", value: "206")
            for (name, value) in response.headers where !name.caseInsensitiveEquals("content-length") {
                fields.add(name: name.lowercased(), value: value)
            }
            fields.add(name: "content-range", value: "bytes \(first)-\(last)/\(response.body.readableBytes)")
            fields.add(name: "content-length", value: String(last - first + 1))
        case .unsatisfiable(let response):
            fields = HPACKHeaders([(":status", "416"), ("content-range", "bytes */\(response.body.readableBytes)"), ("content-length", "0")])
        }
        addCacheFields(&fields, verdict: verdict, age: age)
        let body = stored.body
        bytesWritten &+= body?.readableBytes ?? 0
        answer = .held(fields, body: body)
    }

    func sendHead(
        _ status: HTTPResponseStatus, fields origin: HTTPHeaders, body: StreamedBody, purge: String?, verdict: CacheVerdict,
        for request: HTTPRequestHead, keepAlive: Bool
    ) {
        var fields = HPACKHeaders()
        fields.reserveCapacity(origin.count + 4)
        fields.add(name: ":status", value: String(status.code))
        for (name, value) in origin { fields.add(name: name.lowercased(), value: value) }
        addCacheFields(&fields, verdict: verdict, age: nil)
        if let purge { fields.add(name: "vitrine-purge", value: purge) }
        if body == .none {
            answer = .held(fields, body: nil)
        } else {
            answer = .streaming(complete: false)
            context.write(wrapOutboundOut(.headers(.init(headers: fields))), promise: nil)
            needsFlush = true
        }
    }

    func sendInterim(_ status: HTTPResponseStatus, fields origin: HTTPHeaders, for request: HTTPRequestHead) {
        guard case .none = answer else { return }
        var fields = HPACKHeaders()
        fields.add(name: ":status", value: String(status.code))
        for (name, value) in origin { fields.add(name: name.lowercased(), value: value) }
        context.write(wrapOutboundOut(.headers(.init(headers: fields))), promise: nil)
        needsFlush = true
    }

    func sendBodyPart(_ buffer: ByteBuffer) {
        guard case .streaming(complete: false) = answer, buffer.readableBytes > 0 else { return }
        bytesWritten &+= buffer.readableBytes
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(buffer)))), promise: nil)
        needsFlush = true
    }

    func sendBodyEnd() {
        // END_STREAM goes with `answered`.
        if case .streaming = answer { answer = .streaming(complete: true) }
    }

    func sendError(_ error: ProxyError, keepAlive: Bool) {
        guard case .none = answer else { return reset(.internalError) }
        let body = error.jsonBody
        let fields = HPACKHeaders([
            (":status", String(error.status.code)), ("content-type", "application/json"), ("cache-control", "no-store"),
            ("content-length", String(body.utf8.count)),
        ])
        bytesWritten &+= body.utf8.count
        answer = .held(fields, body: ByteBuffer(string: body))
    }

    func respond(_ error: ProxyError, keepAlive: Bool) {
        deliverError(error, keepAlive: keepAlive)
    }

    /// `age` (for a stored answer), `cache-status`, `x-cache`: never indexed, as they change.
    private func addCacheFields(_ fields: inout HPACKHeaders, verdict: CacheVerdict, age: Int?) {
        if let age { fields.add(name: "age", value: String(age), indexing: .nonIndexable) }
        fields.add(name: "cache-status", value: verdict.cacheStatus, indexing: .nonIndexable)
        fields.add(name: "x-cache", value: verdict.result.rawValue)
    }

    private func reset(_ code: HTTP2ErrorCode) {
        answer = .ended
        context.writeAndFlush(wrapOutboundOut(.rstStream(code)), promise: nil)
        context.close(promise: nil)
    }

    func flush() {
        needsFlush = false
        context.flush()
    }

    private func flushIfNeeded() {
        if needsFlush { flush() }
    }

    func flushSoon() {
        guard needsFlush, !flushQueued else { return }
        flushQueued = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushQueued = false
            flushIfNeeded()
        }
    }
}

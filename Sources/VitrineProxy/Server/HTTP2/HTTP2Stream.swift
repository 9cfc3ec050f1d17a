import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import VitrineCore

/// One HTTP/2 stream: one request through the request path, with no HTTP/1.1 in between, and no
/// channel of its own: its connection (`HTTP2Connection`) hands it its frames and writes what it
/// answers, as nginx serves streams in the connection's own state. Its HEADERS become the request
/// head (`HTTP2RequestFields`), its DATA the body, and the answer is written as HEADERS and DATA
/// frames: a stored response's fields were made at store time, its body goes out as a slice of
/// the stored bytes, END_STREAM on its last DATA frame.
///
/// A stream has no decoder and, on a hit, no timer: the connection's idle time and drain are
/// `NIOHTTP2ServerConnectionManagementHandler`'s. A timer is armed only while a request body is
/// awaited (`timeouts.client_body`) or the stream holds more unsent than its budget
/// (`timeouts.send`: a client that stops reading, or holds a zero window, is reset).
final class HTTP2Stream: RequestTransport {
    let proxy: ProxyContext
    let id: HTTP2StreamID
    private unowned let connection: HTTP2Connection
    private var listingsCopy: Reloadable<Listings>.Copy
    private var routesCopy: Reloadable<Router>.Copy
    var machine: RequestStateMachine<ForwardExchange, CollapseWait>
    var record: RequestRecord?

    /// Where the answer is.
    private enum Answer {
        /// Nothing written yet.
        case none
        /// A whole answer, held until it is complete so that END_STREAM goes on its last frame.
        case held(HPACKHeaders, body: ByteBuffer?)
        /// The head went out; body parts follow as they come (`complete`: all of them have).
        case streaming(complete: Bool)
        /// END_STREAM was sent.
        case ended
        /// The stream was reset.
        case reset
    }

    private var answer = Answer.none
    /// Armed while a request body is awaited, or while the stream holds too much unsent.
    private var bodyTimer: Scheduled<Void>?
    private var sendTimer: Scheduled<Void>?
    /// Bytes written on the stream (DATA), for the access log.
    private var bytesWritten = 0
    /// Streamed body bytes handed to the connection and not yet sent (flow control may hold
    /// them): the fetch pauses past `HTTP2Connection.streamBufferBytes`.
    private var unsent = 0
    /// DATA bytes received since the stream's window was last opened again.
    private var windowConsumed = 0
    /// The stream is gone (ended, reset, or its connection closed).
    private(set) var isClosed = false

    init(id: HTTP2StreamID, connection: HTTP2Connection, proxy: ProxyContext, listings: Reloadable<Listings>.Copy, routes: Reloadable<Router>.Copy) {
        self.id = id
        self.connection = connection
        self.proxy = proxy
        self.listingsCopy = listings
        self.routesCopy = routes
        self.machine = RequestStateMachine(maxBody: proxy.limits.maxBody.bytes)
    }

    var allocator: ByteBufferAllocator { connection.allocator }
    var canAcceptMore: Bool { connection.isWritable && unsent < HTTP2Connection.streamBufferBytes }
    var eventLoop: any EventLoop { connection.eventLoop }
    var listings: Listings { connection.listingsSource.current(through: &listingsCopy) }
    var router: Router { proxy.routes.current(through: &routesCopy) }

    // MARK: The request

    /// A frame of this stream's.
    func receive(_ payload: HTTP2Frame.FramePayload) {
        switch payload {
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
            record = connection.peer.record(for: head, proxy: proxy, connection: connection.number, request: Int(id), bytesBefore: 0)
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
            if frame.endStream {
                requestEnded()
            } else {
                // Half the stream's window consumed: opened again (the body is forwarded as it
                // comes; the origin's pace holds the client through the connection's reading).
                windowConsumed &+= HTTP2Connection.flowControlled(frame)
                if windowConsumed >= 32768 {
                    connection.write(.windowUpdate(windowSizeIncrement: windowConsumed), on: id)
                    windowConsumed = 0
                }
            }
            armBodyTimer()
        case .rstStream:
            closed()
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
        bodyTimer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            bodyTimer = nil
            proxy.stats.increment(.clientTimeouts)
            broken(.requestTimeout)
            connection.flushSoon()
        }
    }

    /// The stream is gone: reset by the client, closed, or its connection closed.
    func closed() {
        guard !isClosed else { return }
        isClosed = true
        answer = .ended
        finishRecord()
        cancelTimers()
        cancel(machine.closed())
    }

    /// Writability is the connection's socket's and this stream's own unsent bytes': called when
    /// either changes (a fetch streaming here pauses with it).
    func updateWritability() {
        let writable = canAcceptMore
        guard writable != machine.isWritable else { return }
        let fetch = machine.writabilityChanged(writable)
        if writable {
            sendTimer?.cancel()
            sendTimer = nil
            fetch?.clientBecameWritable()
        } else {
            armSendTimer()
        }
    }

    /// The answer is whole and flushed, yet the stream is open: flow control holds its last
    /// frames (a client that grants no window), or the client has not ended its side. A hit's
    /// stream closes during the flush that sends it, so this costs a normal stream nothing.
    var isHeldAfterAnswer: Bool {
        guard case .ended = answer, !isClosed else { return false }
        return sendTimer == nil
    }

    /// Resets the stream if it is still open after `timeouts.send`: a client that takes nothing
    /// (a zero window) cannot hold a stream, nor through it its connection, for ever.
    func armSendTimer() {
        guard sendTimer == nil, !isClosed else { return }
        let timeout = TimeAmount.nanoseconds(Int64(proxy.timeouts.send.nanosecondsClamped))
        sendTimer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            sendTimer = nil
            proxy.stats.increment(.clientTimeouts)
            cancel(machine.close())
            reset(.cancel)
        }
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
                connection.write(.headers(.init(headers: fields)), on: id)
                connection.write(.data(.init(data: .byteBuffer(body), endStream: true)), on: id)
            } else {
                connection.write(.headers(.init(headers: fields, endStream: true)), on: id)
            }
        case .streaming(complete: true):
            answer = .ended
            connection.write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)), on: id)
        case .streaming(complete: false):
            // Cut short (the origin failed, the fetch was abandoned): a reset, so that the client
            // does not take a truncated body for the whole of it.
            reset(.internalError)
        case .none, .ended, .reset:
            break
        }
        _ = machine.answered(keepAlive: true)
        checkViolation()
        // Answered from another event (the origin's, L2's): flushed once the loop has handled
        // what is ready. Within the connection's read, the end of the read batch flushes.
        connection.flushSoon()
    }

    func exchangeFinished(keepAlive: Bool) {
        answered(keepAlive: keepAlive)
    }

    func originResponded(after nanoseconds: Int64) {
        record?.originNanoseconds = nanoseconds
    }

    private func finishRecord() {
        guard let finished = record.take() else { return }
        proxy.observe(finished, bytes: bytesWritten &- finished.bytesBefore, on: eventLoop)
    }

    func sendStored(_ stored: StoredAnswer, age: Int, verdict: CacheVerdict, for request: HTTPRequestHead, keepAlive: Bool) {
        var fields: HPACKHeaders
        switch stored {
        case .full(let response, let gzip, _):
            fields = response.http2Fields(gzip: gzip)
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
            connection.write(.headers(.init(headers: fields)), on: id)
        }
    }

    func sendInterim(_ status: HTTPResponseStatus, fields origin: HTTPHeaders, for request: HTTPRequestHead) {
        guard case .none = answer else { return }
        var fields = HPACKHeaders()
        fields.add(name: ":status", value: String(status.code))
        for (name, value) in origin { fields.add(name: name.lowercased(), value: value) }
        connection.write(.headers(.init(headers: fields)), on: id)
    }

    func sendBodyPart(_ buffer: ByteBuffer) {
        guard case .streaming(complete: false) = answer, buffer.readableBytes > 0 else { return }
        bytesWritten &+= buffer.readableBytes
        // Counted until sent: flow control may hold it in swift-nio-http2's buffer, and a
        // client that grants no window must pause the origin, not grow our memory.
        let size = buffer.readableBytes
        unsent &+= size
        let sent = eventLoop.makePromise(of: Void.self)
        connection.write(.data(.init(data: .byteBuffer(buffer))), on: id, promise: sent)
        sent.futureResult.assumeIsolated().whenComplete { [self] _ in
            unsent &-= size
            if !isClosed { updateWritability() }
        }
        updateWritability()
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
        guard !isClosed else { return }
        answer = .reset
        connection.write(.rstStream(code), on: id)
        connection.flushSoon()
        closed()
    }

    func flush() {
        connection.flush()
    }

    func flushSoon() {
        connection.flushSoon()
    }
}

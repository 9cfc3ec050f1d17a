import NIOCore
import NIOHTTP1
import VitrineCore

/// fetch → deliver for one forwarded request: takes an origin connection from the pool, streams
/// the request body to it, streams the response to the client (pausing the origin while the
/// client's socket is full), stores the response when it may be shared, and purges after writes.
final class ForwardExchange: OriginResponseDelegate {
    enum Mode {
        /// A cacheable request not found fresh: store the answer if the policy allows.
        case miss(key: CacheKey, token: FetchToken, wasStale: Bool)
        case pass(fwd: String, detail: String)
        /// An unsafe method: purge the target and the response's tags after a success.
        case write
    }

    private let connection: ClientConnectionHandler
    private let request: HTTPRequestHead
    private let route: Route
    private let mode: Mode
    private let pool: OriginPool
    private var keepAlive: Bool
    private var origin: OriginConnection?
    private var pendingBody: [ByteBuffer] = []
    private var requestEnded = false
    private var requestHadBody = false
    private var attempts = 0
    private var startedAt: NIODeadline = .now()

    private(set) var responseStarted = false
    private var responseStatus = 0
    private var finished = false
    private var chunked = false
    private var closeDelimited = false
    private var noBody = false

    // What will be stored, once the body is complete.
    private var storedBody: ByteBuffer?
    private var storedHeaders = HTTPHeaders()
    private var storedStatus = HTTPResponseStatus.ok
    private var storedPlan = StoragePlan(ttl: .zero)
    private var storedTags: [String] = []
    /// Wall-clock seconds when the request was sent, for the age calculation.
    private var requestWallTime = 0

    private var proxy: ProxyContext { connection.proxy }

    init(
        connection: ClientConnectionHandler, request: HTTPRequestHead, route: Route, mode: Mode, pool: OriginPool,
        keepAlive: Bool
    ) {
        self.connection = connection
        self.request = request
        self.route = route
        self.mode = mode
        self.pool = pool
        self.keepAlive = keepAlive
    }

    // MARK: Fetch

    func start() {
        attempts += 1
        startedAt = .now()
        proxy.stats.increment(.originRequests)
        pool.acquire { [self] result in
            guard !finished else {
                if case .success(let connection) = result { pool.release(connection) }
                return
            }
            switch result {
            case .success(let origin):
                send(on: origin)
            case .failure(let failure):
                originFailed(failure)
            }
        }
    }

    private func send(on origin: OriginConnection) {
        self.origin = origin
        requestWallTime = proxy.store.clock.wallSeconds()
        let settings = pool.settings
        origin.execute(
            originRequestHead(),
            delegate: self,
            firstByteTimeout: .nanoseconds(Int64(settings.firstByteTimeout.nanosecondsClamped)),
            totalTimeout: .nanoseconds(Int64(settings.totalTimeout.nanosecondsClamped))
        )
        for buffer in pendingBody { origin.writeBody(buffer) }
        pendingBody.removeAll()
        if requestEnded { origin.endRequest() }
    }

    /// The request as the origin sees it: hop-by-hop fields dropped, `X-Forwarded-*` set, and
    /// (for misses that will be stored) the client's validators dropped, so the origin sends a
    /// full response to store.
    private func originRequestHead() -> HTTPRequestHead {
        let tokens = HopByHop.connectionTokens(request.headers)
        var headers = HTTPHeaders()
        var forwardedFor: String?
        var storing = false
        if case .miss = mode, request.method == .GET { storing = true }
        for (name, value) in request.headers {
            if HopByHop.isHopByHop(name, connectionTokens: tokens) { continue }
            let lower = name.lowercased()
            if lower == "x-forwarded-for" {
                forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
                continue
            }
            if lower == "x-forwarded-proto" || lower == "x-forwarded-host" { continue }
            if storing && (lower == "if-none-match" || lower == "if-modified-since") { continue }
            headers.add(name: name, value: value)
        }
        let client = connection.clientAddress
        headers.add(name: "X-Forwarded-For", value: forwardedFor.map { "\($0), \(client)" } ?? client)
        headers.add(name: "X-Forwarded-Proto", value: "http")
        if let host = request.headers.first(name: "host") { headers.add(name: "X-Forwarded-Host", value: host) }
        if request.headers.contains(name: "transfer-encoding") {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        return HTTPRequestHead(
            version: .http1_1, method: request.method, uri: pool.settings.url.basePath + request.uri, headers: headers)
    }

    func requestBody(_ buffer: ByteBuffer) {
        requestHadBody = true
        if let origin {
            origin.writeBody(buffer)
        } else {
            pendingBody.append(buffer)
        }
    }

    func requestEnd() {
        requestEnded = true
        origin?.endRequest()
    }

    // MARK: Deliver

    func originResponseHead(_ head: HTTPResponseHead) {
        responseStarted = true
        responseStatus = Int(head.status.code)
        let tokens = HopByHop.connectionTokens(head.headers)
        var clientHeaders = HTTPHeaders()
        var tagValues: [String] = []
        for (name, value) in head.headers {
            if HopByHop.isHopByHop(name, connectionTokens: tokens) { continue }
            if ResponseCachePolicy.targetedFields.contains(name.lowercased()) { continue }
            if SurrogateKeys.isTagHeader(name) {
                tagValues.append(value)
                continue
            }
            clientHeaders.add(name: name, value: value)
        }
        let tags = SurrogateKeys.parse(tagValues)
        let status = Int(head.status.code)
        let contentLength = head.headers.first(name: "content-length").flatMap { Int($0) }

        noBody = request.method == .HEAD || head.status == .notModified || head.status == .noContent || status < 200
        if !noBody && contentLength == nil {
            if request.version.minor >= 1 { chunked = true } else { closeDelimited = true }
        }

        var cacheStatus: String
        var xCache: String
        switch mode {
        case .miss(_, _, let wasStale):
            xCache = "MISS"
            let fwd = wasStale ? "stale" : "miss"
            let timing = ResponseTiming(requestTime: requestWallTime, responseTime: proxy.store.clock.wallSeconds())
            let decision = route.policy.decide(
                status: status, headers: head.headers.map { ($0.name, $0.value) }, timing: timing)
            switch decision {
            case .store(let plan) where !plan.varyFields.isEmpty:
                // Secondary keys are not implemented yet: a varying response is never shared.
                cacheStatus = "vitrine; fwd=\(fwd); detail=vary"
            case .store(let plan)
            where request.method == .GET && (contentLength ?? 0) <= proxy.maxObjectSize:
                storedBody = connection.context.channel.allocator.buffer(capacity: min(contentLength ?? 16384, proxy.maxObjectSize))
                storedPlan = plan
                storedStatus = head.status
                storedTags = tags
                storedHeaders = clientHeaders
                storedHeaders.remove(name: "content-length")
                storedHeaders.remove(name: "age")
                cacheStatus = "vitrine; fwd=\(fwd); stored"
            case .store:
                cacheStatus = "vitrine; fwd=\(fwd); detail=\(request.method == .GET ? "too-large" : "head")"
            case .doNotStore(let reason):
                cacheStatus = "vitrine; fwd=\(fwd); detail=\(reason)"
            }
            proxy.stats.increment(.misses)
            proxy.metrics.misses.increment()
        case .pass(let fwd, let detail):
            xCache = "PASS"
            cacheStatus = "vitrine; fwd=\(fwd); detail=\(detail)"
            proxy.stats.increment(.passes)
            proxy.metrics.passes.increment()
        case .write:
            xCache = "PASS"
            cacheStatus = "vitrine; fwd=method"
            proxy.stats.increment(.passes)
            proxy.metrics.passes.increment()
            // Purged before the client sees the answer: the writer's next read is fresh.
            if (200..<400).contains(status) { purgeAfterWrite(responseHeaders: head.headers, tags: tags) }
        }

        var buffer = connection.context.channel.allocator.buffer(capacity: 512)
        buffer.writeStatusLine(head.status)
        for (name, value) in clientHeaders { buffer.writeHeader(name, value) }
        if chunked { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        buffer.writeHeader("Cache-Status", cacheStatus)
        buffer.writeHeader("X-Cache", xCache)
        if closeDelimited { keepAlive = false }
        if !keepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if request.version.minor == 0 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        connection.write(buffer)
        connection.flush()
    }

    func originResponseBody(_ buffer: ByteBuffer) {
        guard !finished, !noBody else { return }
        if chunked {
            var header = connection.context.channel.allocator.buffer(capacity: 16)
            header.writeChunkHeader(size: buffer.readableBytes)
            connection.write(header)
            connection.write(buffer)
            connection.write(ByteBuffer(staticString: "\r\n"))
        } else {
            connection.write(buffer)
        }
        connection.flush()
        if storedBody != nil {
            if storedBody!.readableBytes + buffer.readableBytes > proxy.maxObjectSize {
                storedBody = nil
            } else {
                storedBody!.writeImmutableBuffer(buffer)
            }
        }
    }

    func originResponseEnd() {
        guard !finished else { return }
        if chunked { connection.write(ByteBuffer(staticString: "0\r\n\r\n")) }
        connection.flush()
        proxy.metrics.originLatency.recordNanoseconds(Int64((NIODeadline.now() - startedAt).nanoseconds))
        if case .miss(let key, let token, _) = mode, let body = storedBody {
            let response = CachedResponse(
                status: storedStatus, headers: storedHeaders, body: body, initialAge: storedPlan.initialAge, tags: storedTags,
                staleWhileRevalidate: storedPlan.staleWhileRevalidate, staleIfError: storedPlan.staleIfError)
            let outcome = proxy.store.store(
                response, for: key, tags: storedTags, ttl: storedPlan.ttl, grace: storedPlan.retention, token: token)
            if outcome == .stored {
                proxy.stats.increment(.stored)
            }
        }
        finish(keepAlive: keepAlive && requestEnded)
    }

    func originFailed(_ failure: OriginFailure) {
        guard !finished else { return }
        origin = nil
        if !responseStarted {
            if failure.isRetryable && attempts < 2 && !requestHadBody {
                start()
                return
            }
            proxy.stats.increment(.originErrors)
            proxy.logger.warning(
                "origin request failed",
                metadata: ["origin": .string(pool.name), "target": .string(request.uri), "failure": "\(failure)"])
            finished = true
            connection.respond(failure.proxyError, keepAlive: keepAlive && requestEnded)
            connection.flush()
            connection.exchangeFinished(keepAlive: keepAlive && requestEnded && !connection.closing)
        } else {
            // Part of the response is on its way: the only honest signal left is closing.
            proxy.stats.increment(.originErrors)
            finish(keepAlive: false)
        }
    }

    var originMayContinue: Bool { connection.context.channel.isWritable }

    // MARK: Client events

    func clientBecameWritable() {
        origin?.resumeReading()
    }

    func clientClosed() {
        finished = true
        origin?.cancel()
        origin = nil
    }

    private func finish(keepAlive: Bool) {
        finished = true
        if origin != nil && !requestEnded {
            // The origin answered before the request body was complete: its connection is in
            // an unknown state and must not be reused.
            origin?.cancel()
        }
        origin = nil
        if proxy.accessLog { connection.logAccess(request, status: responseStatus, result: modeName) }
        connection.exchangeFinished(keepAlive: keepAlive)
    }

    private var modeName: String {
        switch mode {
        case .miss: return "MISS"
        case .pass, .write: return "PASS"
        }
    }

    private func purgeAfterWrite(responseHeaders: HTTPHeaders, tags: [String]) {
        var keys = [request.uri]
        // RFC 9111 §4.4: Location and Content-Location are invalidated too when same-origin.
        for name in ["location", "content-location"] {
            if let value = responseHeaders.first(name: name), value.hasPrefix("/") { keys.append(value) }
        }
        proxy.invalidator.purge(PurgeRequest(tags: tags, keys: keys))
    }
}

import NIOCore
import NIOHTTP1
import VitrineCore

/// fetch → deliver for one forwarded request: takes an origin connection from the pool, streams
/// the request body to it, streams the response to the client (pausing the origin while the
/// client's socket is full), stores the response when it may be shared, revalidates stale entries
/// with their validators, falls back to stale on origin errors where allowed, and purges after
/// writes. When other requests wait for it (collapsing), it tells them how it ended.
///
/// Where the fetch is (connecting, awaiting the head, holding a write's answer, responding,
/// finished) and what to do on each event is `FetchStateMachine`'s; this class carries out its
/// answers and keeps what is to be stored.
final class ForwardExchange: OriginResponseDelegate {
    enum Mode {
        /// A cacheable request not found fresh: revalidate or fetch, and store if allowed.
        case miss(MissFetch)
        case pass(fwd: String, detail: String)
        /// An unsafe method: purge the target and the response's tags after a success.
        case write
    }

    /// What happens to the origin's response.
    enum Handling {
        /// Streamed to the client (and maybe stored), framed as its head says.
        case stream(StreamedBody)
        /// A 304 to our conditional request: the stale entry, refreshed, is stored and delivered.
        case revalidated(CachedResponse, StoragePlan)
        /// An origin error while a stale entry may stand in: the stale entry is delivered.
        case staleIfError(CacheHit<CachedResponse>)
    }

    let proxy: ProxyContext
    /// The connection the answer is delivered to; nil for a background refresh or a listing fetch.
    private let client: (any ResponseSink)?
    /// For `X-Forwarded-For`: the client's address, or who fetches without one.
    /// Who the request is from, and what the origin is told about it.
    let forwarding: ClientForwarding
    /// The request's id, sent to the origin as `X-Request-Id`.
    let requestID: String?
    /// Told once how the fetch ended.
    var onEnd: ((FetchOutcome) -> Void)?
    /// The response this fetch stored in L1, if any.
    var storedResponse: CachedResponse?
    /// L1 refused the response: a purge touched it during the fetch.
    var purgedDuringFetch = false
    let request: HTTPRequestHead
    let route: Route
    let mode: Mode
    let pool: OriginPool
    private let keepAlive: Bool
    private var machine: FetchStateMachine<OriginConnection, HTTPResponseHead, ByteBuffer, OriginFailure, Handling>
    private var startedAt: NIODeadline = .now()
    /// Monotonic nanoseconds when the request was sent, for the age calculation.
    private var requestSentAt: UInt64 = 0

    /// The origin's answer has begun (part of it may be on its way to the client).
    var responseStarted: Bool { machine.responseStarted }
    private var responseStatus = 0
    var waitersReleased = false

    // What will be stored, once the body is complete.
    private var storedBody: ByteBuffer?
    private var storedHeaders = HTTPHeaders()
    private var storedStatus = HTTPResponseStatus.ok
    private var storedPlan = StoragePlan(ttl: .zero)
    private var storedTags: [String] = []
    /// Why the response is not stored, when it could have been: the key is then passed for a while.
    private var uncacheable = false

    /// `Vitrine-Purge` on a write's answer when its purge did not reach the shared tier in time.
    private var localOnlyPurge: String?

    /// - Parameters:
    ///   - client: where the answer goes; nil when nobody waits for it (it is only stored).
    ///   - clientAddress: the client's address, or a name for who fetches without one.
    ///   - requestComplete: the client's request has fully arrived already (a request
    ///     dispatched again after waiting, or a background refresh): no body or end will follow.
    ///   - onEnd: told once how the fetch ended.
    init(
        proxy: ProxyContext, client: (any ResponseSink)?, forwarding: ClientForwarding, requestID: String?, request: HTTPRequestHead, route: Route, mode: Mode,
        pool: OriginPool, keepAlive: Bool, requestComplete: Bool, onEnd: ((FetchOutcome) -> Void)? = nil
    ) {
        self.proxy = proxy
        self.client = client
        self.forwarding = forwarding
        self.requestID = requestID
        self.onEnd = onEnd
        self.machine = FetchStateMachine(requestComplete: requestComplete)
        self.request = request
        self.route = route
        self.mode = mode
        self.pool = pool
        self.keepAlive = keepAlive
    }

    // MARK: Fetch

    func start() {
        guard machine.start() else { return }
        acquire()
    }

    /// An attempt: a connection from the pool, and the request on it.
    private func acquire() {
        startedAt = .now()
        proxy.stats.increment(.originRequests)
        pool.acquire { [self] result in
            switch result {
            case .success(let connection):
                switch machine.acquired(connection) {
                case .send(let origin, let body, let end):
                    send(on: origin, body: body, end: end)
                case .release(let connection):
                    pool.release(connection)
                }
            case .failure(let failure):
                originFailed(failure)
            }
        }
    }

    private func send(on origin: OriginConnection, body: [ByteBuffer], end: Bool) {
        requestSentAt = proxy.store.clock.nanoseconds()
        let settings = pool.settings
        origin.execute(
            originRequestHead(),
            delegate: self,
            firstByteTimeout: .nanoseconds(Int64(settings.firstByteTimeout.nanosecondsClamped)),
            totalTimeout: .nanoseconds(Int64(settings.totalTimeout.nanosecondsClamped))
        )
        for buffer in body { origin.writeBody(buffer) }
        if end { origin.endRequest() }
    }

    func requestBody(_ buffer: ByteBuffer) {
        if case .write(let origin) = machine.requestPart(buffer) { origin.writeBody(buffer) }
    }

    func requestEnd() {
        if case .write(let origin) = machine.requestEnded() { origin.endRequest() }
    }

    // MARK: Deliver

    /// An interim response (RFC 9110 §15.2): handed to the client before the final one, its
    /// hop-by-hop and cache-internal fields removed, never stored. `100 Continue` is the proxy's
    /// own business (it answers `Expect` itself), so the origin's is dropped.
    func originInterimResponse(_ head: HTTPResponseHead) {
        guard let client, machine.mayDeliverInterim, head.status != .continue else { return }
        client.sendInterim(head.status, fields: OriginFields(head.headers).visible, for: request)
        client.flush()
    }

    func originResponseHead(_ head: HTTPResponseHead) {
        let waited = Int64((NIODeadline.now() - startedAt).nanoseconds)
        proxy.metrics.originAnswered(pool.name, nanoseconds: waited)
        client?.originResponded(after: waited)
        let isWrite = if case .write = mode { true } else { false }
        switch machine.responseHead(head, purgeFirst: isWrite && (200..<400).contains(Int(head.status.code))) {
        case .deliver(let head):
            deliverHead(head)
        case .purgeThenDeliver:
            // Purged before the client sees the answer: the writer's next read is fresh here, and
            // on every other node once the shared tier has the purge (read-your-writes across the
            // fleet). Meanwhile the origin is not read further.
            let tags = OriginFields(head.headers).tags + CacheGroups.parse(head.headers[CacheGroups.invalidationField])
            if let shared = purgeAfterWrite(responseHeaders: head.headers, tags: tags) {
                releaseWhenPurged(shared)
            } else {
                releaseHeldAnswer(failure: nil)  // no shared tier: L1 has it already
            }
        case .ignore:
            break
        }
    }

    /// Releases the held answer when `shared` completes, or `proxy.writePurgeTimeout` has passed.
    private func releaseWhenPurged(_ shared: EventLoopFuture<Void>) {
        let loop = pool.eventLoop
        let timer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(proxy.writePurgeTimeout.nanosecondsClamped))) { [self] in
            releaseHeldAnswer(failure: "timeout")
        }
        shared.hop(to: loop).assumeIsolated().whenComplete { [self] result in
            timer.cancel()
            switch result {
            case .success: releaseHeldAnswer(failure: nil)
            case .failure: releaseHeldAnswer(failure: "unavailable")
            }
        }
    }

    private func releaseHeldAnswer(failure: String?) {
        guard machine.isHeld else { return }
        if let failure {
            localOnlyPurge = "local-only; error=\(failure)"
            proxy.stats.increment(.localOnlyWritePurges)
            proxy.logger.warning(
                "a write was answered before its purge reached the shared tier: other nodes may serve the old value until it does",
                metadata: ["target": .string(request.uri), "error": .string(failure)])
        }
        guard case .deliver(let head, let parts) = machine.purgeEnded() else { return }
        deliverHead(head)
        for part in parts {
            switch part {
            case .body(let buffer): originResponseBody(buffer)
            case .end: originResponseEnd()
            case .failure(let failure): originFailed(failure)
            }
        }
        machine.connection?.resumeReading()
    }

    private func deliverHead(_ head: HTTPResponseHead) {
        var head = head
        // `strip_set_cookie`: an answer that may be stored loses its cookies, so that it can be.
        if case .miss = mode, route.stripSetCookie { head.headers.remove(name: "set-cookie") }
        responseStatus = Int(head.status.code)
        let status = responseStatus
        let timing = ResponseTiming(
            responseTime: proxy.store.clock.wallSeconds(),
            responseDelay: Int((proxy.store.clock.nanoseconds() &- requestSentAt) / 1_000_000_000))

        if case .miss(let fetch) = mode, let stale = fetch.stale {
            switch OriginDecision.onHead(status: status, stale: stale.staleWindows) {
            case .revalidate:
                machine.delivered(revalidate(stale.value, with: head, timing: timing))
                return
            case .staleIfError:
                machine.delivered(.staleIfError(stale))
                return
            case .stream:
                break
            }
        }

        let fields = OriginFields(head.headers)
        let clientHeaders = fields.visible
        let tags = fields.tags
        // NIO's response decoder has checked the framing; digits only, all the same.
        let contentLength = head.headers.first(name: "content-length").flatMap { value in
            value.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ? Int(value) : nil
        }

        let framing: StreamedBody
        if request.method == .HEAD || head.status == .notModified || head.status == .noContent || status < 200 {
            framing = .none
        } else if contentLength == nil {
            framing = .unsized
        } else {
            framing = .sized
        }

        let verdict: CacheVerdict
        switch mode {
        case .miss(let fetch):
            let fwd = fetch.stale == nil ? "miss" : "stale"
            // A request's `no-store` (RFC 9111 §5.2.1.5): what it fetches is not stored.
            let requestNoStore =
                request.headers.contains(name: "cache-control")
                && RequestCacheDirectives(cacheControl: request.headers["cache-control"], pragma: []).noStore
            let decision = route.policy.decide(
                status: status, headers: head.headers.map { ($0.name, $0.value) }, requestNoStore: requestNoStore, timing: timing)
            switch decision {
            case .store(let plan)
            where !plan.varyFields.isEmpty && !proxy.variants.admit(
                fetch.key, variant: VaryKey.variantID(fields: plan.varyFields, headers: request.headers, languages: route.vary.languages),
                limit: route.vary.maxVariants, window: plan.ttl + plan.retention, now: proxy.store.now):
                // One variant too many for this URL (`vary.max_variants`): served, not stored.
                verdict = .fetched(fwd: fwd, storedOrDetail: .notStored("too-many-variants"))
            case .store(let plan) where request.method == .GET && (contentLength ?? 0) <= proxy.maxObjectSize:
                storedBody = allocator.buffer(capacity: min(contentLength ?? 16384, proxy.maxObjectSize))
                storedPlan = plan
                storedStatus = head.status
                storedTags = tags
                storedHeaders = clientHeaders
                storedHeaders.remove(name: "content-length")
                storedHeaders.remove(name: "age")
                verdict = .fetched(fwd: fwd, storedOrDetail: .stored)
            case .store:
                uncacheable = request.method == .GET
                verdict = .fetched(fwd: fwd, storedOrDetail: .notStored(request.method == .GET ? "too-large" : "head"))
            case .doNotStore(let reason):
                // A 5xx says nothing about the URL's cacheability, nor does one client's
                // `no-store`: do not pass the key for them.
                uncacheable = status < 500 && reason != "request-no-store"
                verdict = .fetched(fwd: fwd, storedOrDetail: .notStored(reason))
            }
            proxy.stats.increment(.misses)
            proxy.metrics.misses.increment()
        case .pass(let fwd, let detail):
            verdict = .pass(fwd: fwd, detail: detail)
            proxy.stats.increment(.passes)
            proxy.metrics.passes.increment()
        case .write:
            verdict = .pass(fwd: "method", detail: nil)
            proxy.stats.increment(.passes)
            proxy.metrics.passes.increment()
        }

        machine.delivered(.stream(framing))
        client?.deliver(
            .streamed(status: head.status, fields: clientHeaders, body: framing, purge: localOnlyPurge, verdict), for: request,
            keepAlive: keepAlive)
        client?.flush()
    }

    private var allocator: ByteBufferAllocator { client?.allocator ?? ByteBufferAllocator() }

    /// RFC 9111 §4.3.4: the 304's fields replace the stored ones; the body is kept.
    private func revalidate(_ stale: CachedResponse, with head: HTTPResponseHead, timing: ResponseTiming) -> Handling {
        let fields = OriginFields(head.headers)
        var merged = stale.headers
        var replaced = Set<String>()
        for (name, value) in fields.visible {
            let lower = name.lowercased()
            if lower == "content-length" { continue }
            if replaced.insert(lower).inserted { merged.remove(name: name) }
            merged.add(name: name, value: value)
        }
        merged.remove(name: "age")
        let tags = fields.tags.isEmpty ? stale.tags : fields.tags
        let decisionHeaders = merged.map { ($0.name, $0.value) } + fields.targeted + [("Age", head.headers.first(name: "age") ?? "0")]
        let plan = route.policy.decide(status: Int(stale.status.code), headers: decisionHeaders, timing: timing).plan
            ?? StoragePlan(ttl: .zero)
        let refreshed = makeResponse(status: stale.status, headers: merged, body: stale.body, tags: tags, plan: plan)
        return .revalidated(refreshed, plan)
    }

    func originResponseBody(_ buffer: ByteBuffer) {
        // Only a streamed answer's body goes on; a 304's or a 5xx's that a stale entry stands in
        // for is dropped.
        guard case .handle(.stream(let framing)) = machine.responsePart(buffer), framing != .none else { return }
        if let client {
            client.sendBodyPart(buffer)
            client.flush()
        }
        if storedBody != nil {
            if storedBody!.readableBytes + buffer.readableBytes > proxy.maxObjectSize {
                storedBody = nil
                uncacheable = true
            } else {
                storedBody!.writeImmutableBuffer(buffer)
            }
        }
    }

    func originResponseEnd() {
        guard case .complete(let handling, let requestComplete, let unusable) = machine.responseEnded() else { return }
        // The origin answered before the request body was complete: its connection is in an
        // unknown state and must not be reused.
        unusable?.cancel()
        switch handling {
        case .revalidated(let response, let plan):
            proxy.stats.increment(.revalidated)
            let stored = store(response, plan: plan)
            client?.deliver(.stored(response, age: response.initialAge, .revalidated(stored: stored != nil)), for: request, keepAlive: keepAlive)
            client?.flush()
            releaseWaiters(response, storedAs: stored, plan: plan)
        case .staleIfError(let stale):
            client?.deliver(.stale(stale, detail: "stale-if-error"), for: request, keepAlive: keepAlive)
            client?.flush()
            releaseWaiters(.failed(.originProtocolError))
        case .stream(let framing):
            if framing != .none { client?.sendBodyEnd() }
            client?.flush()
            if case .miss = mode, let body = storedBody {
                let response = makeResponse(status: storedStatus, headers: storedHeaders, body: body, tags: storedTags, plan: storedPlan)
                releaseWaiters(response, storedAs: store(response, plan: storedPlan), plan: storedPlan)
            } else {
                releaseWaiters(.retry, pass: uncacheable)
            }
        }
        finish(keepAlive: keepAlive && requestComplete)
    }

    func originFailed(_ failure: OriginFailure) {
        var stale: CacheHit<CachedResponse>?
        if case .miss(let fetch) = mode { stale = fetch.stale }
        let action = machine.failed(failure, retryable: failure.isRetryable, staleIfError: stale?.staleWindows.ifError == true)
        let requestComplete: Bool
        switch action {
        case .held, .ignore:
            return
        case .retry:
            acquire()
            return
        case .abort:
            proxy.stats.increment(.originErrors)
            proxy.metrics.originFailed(pool.name)
            // Part of the response is on its way: the only honest signal left is closing.
            releaseWaiters(.retry)
            report(.failed(failure.proxyError))
            finish(keepAlive: false)
            return
        case .answerStale(let complete), .answerError(let complete):
            proxy.stats.increment(.originErrors)
            proxy.metrics.originFailed(pool.name)
            requestComplete = complete
        }
        proxy.logger.warning(
            "origin request failed",
            metadata: ["origin": .string(pool.name), "target": .string(request.uri), "failure": "\(failure)"])
        let keepAlive = keepAlive && requestComplete
        if case .answerStale = action, let stale {
            client?.deliver(.stale(stale, detail: "stale-if-error"), for: request, keepAlive: keepAlive)
        } else {
            client?.deliver(.error(failure.proxyError), for: request, keepAlive: keepAlive)
        }
        client?.flush()
        releaseWaiters(.failed(failure.proxyError))
        report(.failed(failure.proxyError))
        client?.exchangeFinished(keepAlive: keepAlive && !failure.proxyError.closesConnection)
    }

    /// The origin is paused while a write's answer is held, and while the client's socket is full.
    var originMayContinue: Bool {
        if machine.isHeld { return false }
        return client?.canAcceptMore ?? true
    }

    func originPaused() {
        if !machine.isHeld { proxy.stats.increment(.originPauses) }
    }

    // MARK: Client events

    func clientBecameWritable() {
        machine.connection?.resumeReading()
    }

    func clientClosed() {
        let origin = machine.clientClosed()
        report(.abandoned)
        origin?.cancel()
        releaseWaiters(.retry)
    }

    /// The answer is complete (or aborted): whoever started the fetch is told how it ended.
    private func finish(keepAlive: Bool) {
        report(
            storedResponse.map { .stored($0) } ?? (purgedDuringFetch ? .purgedDuringFetch(status: responseStatus) : .passed(status: responseStatus)))
        client?.exchangeFinished(keepAlive: keepAlive)
    }

}

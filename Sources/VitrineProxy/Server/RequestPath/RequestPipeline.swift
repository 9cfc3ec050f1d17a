import NIOCore
import NIOHTTP1
import VitrineCore

/// The request path, in the order Varnish reads: receive → lookup → hit / miss / pass → fetch →
/// deliver. Everything a request goes through before bytes move to or from an origin is here,
/// written once for every transport: what is answered is decided here, how it is framed is the
/// transport's (`RequestTransport`).
extension RequestTransport {
    /// receive: the head has passed framing and limits (`RequestDecoder`); nothing reads a head
    /// that fails them.
    func serve(_ head: HTTPRequestHead) {
        proxy.stats.increment(.requests)
        if head.method == .TRACE || head.method == .CONNECT {
            answer(.methodNotAllowed, keepAlive: false)
            return
        }
        guard let route = router.route(for: head.uri) else {
            answer(.noRoute, keepAlive: head.isKeepAlive)
            return
        }
        record?.route = route.prefix
        switch RequestClassifier.classify(head, route: route) {
        case .lookup:
            lookup(head, route: route)
        case .pass(let fwd, let detail):
            fetch(head, route: route, mode: .pass(fwd: fwd, detail: detail))
        case .write:
            fetch(head, route: route, mode: .write)
        }
    }

    /// lookup → hit, stale hit, or miss. Also where a request restarts when the wait it was
    /// in could not answer it (`machine.restart()` first).
    func lookup(_ head: HTTPRequestHead, route: Route) {
        let keepAlive = head.isKeepAlive
        var primary = route.key(target: head.uri, host: route.normalizer.includeHost ? head.headers.first(name: "host") : nil)
        // The origin is told the scheme (`X-Forwarded-Proto`), so the key says it too: an answer
        // fetched for http is never served over https, nor the other way round.
        if record?.forwarding.proto == "https" { primary = VaryKey.httpsKey(primary) }
        // Most storefront requests carry neither field: skip the parsing (and its allocations).
        let directives =
            head.headers.contains(name: "cache-control") || head.headers.contains(name: "pragma")
            ? RequestCacheDirectives(cacheControl: head.headers["cache-control"], pragma: head.headers["pragma"])
            : RequestCacheDirectives()
        let wantsOrigin = directives.wantsValidation && route.clientNoCache == .revalidate
        if !wantsOrigin, let listing = listings.lookup(primary) {
            deliver(.stored(listing.response, age: listing.age, .listing), for: head, keepAlive: keepAlive)
            countHit()
            answered(keepAlive: keepAlive)
            return
        }
        var key = primary
        var found = proxy.store.lookup(primary)
        if let marker = found.hit, marker.value.isVaryMarker {
            key = VaryKey.secondaryKey(primary, fields: marker.value.varyFields, headers: head.headers, languages: route.vary.languages)
            found = proxy.store.lookup(key)
        }

        let decided: LookupDecision<CacheHit<CachedResponse>>.Found
        switch found {
        case .fresh(let hit): decided = .fresh(hit)
        case .stale(let hit): decided = .stale(hit, hit.staleWindows)
        case .miss: decided = .miss
        }
        switch machine.lookedUp(decided, wantsOrigin: wantsOrigin, onlyIfCached: directives.onlyIfCached, isGET: head.method == .GET) {
        case .hit(let hit):
            deliverHit(hit, for: head, keepAlive: keepAlive)
        case .staleWhileRevalidate(let hit):
            deliverStale(hit, detail: "stale-while-revalidate", for: head, keepAlive: keepAlive)
            refreshInBackground(key, primaryKey: primary, head: head, route: route, stale: hit)
            answered(keepAlive: keepAlive)
        case .notCached:
            answer(.notCached, keepAlive: keepAlive)
        case .fetchAlone:
            let fetch = MissFetch(key: primary, collapseKey: key, token: proxy.store.fetchToken(), stale: found.hit, leader: false)
            self.fetch(head, route: route, mode: .miss(fetch))
        case .collapse(let consultSharedTier):
            collapse(key, primary: primary, head: head, route: route, stale: found.hit, consultSharedTier: consultSharedTier)
        }
    }

    /// miss → fetch, once per key: the first request leads, the others wait for its response.
    private func collapse(
        _ key: CacheKey, primary: CacheKey, head: HTTPRequestHead, route: Route, stale: CacheHit<CachedResponse>?,
        consultSharedTier: Bool
    ) {
        let id = proxy.collapser.makeWaiterID()
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let waiter = RequestCollapser.Waiter(id: id, eventLoop: eventLoop) { outcome in
            bound.value.collapsedFetchEnded(id: id, outcome: outcome)
        }
        switch proxy.collapser.join(key, waiter: waiter, now: proxy.store.now) {
        case .lead:
            leadMiss(key, primary: primary, head: head, route: route, stale: stale, consultSharedTier: consultSharedTier)
        case .pass:
            fetch(head, route: route, mode: .miss(MissFetch(key: primary, collapseKey: key, token: proxy.store.fetchToken(), stale: stale, leader: false)))
        case .wait:
            proxy.stats.increment(.collapsed)
            let timer = eventLoop.assumeIsolated().scheduleTask(
                in: .nanoseconds(Int64(proxy.collapser.maxWait.nanosecondsClamped))
            ) { [self] in
                // Waited long enough: fetch alone, if the outcome has not arrived meanwhile.
                guard machine.collapsedWait?.id == id, proxy.collapser.leave(key, id: id),
                    let waiting = machine.collapsedWaitEnded(id: id)
                else { return }
                fetch(
                    waiting.head, route: waiting.route,
                    mode: .miss(MissFetch(key: primary, collapseKey: key, token: proxy.store.fetchToken(), stale: waiting.stale, leader: false)))
            }
            machine.waitForCollapsedFetch(CollapseWait(id: id, key: key, head: head, route: route, stale: stale, timer: timer))
        }
    }

    /// miss, as the one request that fetches for the key on this node: the shared tier first
    /// (another node may have fetched it, or be fetching it), then the origin.
    private func leadMiss(
        _ key: CacheKey, primary: CacheKey, head: HTTPRequestHead, route: Route, stale: CacheHit<CachedResponse>?,
        consultSharedTier: Bool = true, leaseWaitUntil: NIODeadline? = nil
    ) {
        // Taken before the tier is asked, so a purge landing meanwhile keeps what comes back out of L1.
        let token = proxy.store.fetchToken()
        // A client that asked for the origin (and may) is not answered from L2 either.
        guard consultSharedTier, let tier = proxy.readableTier else {
            fetch(head, route: route, mode: .miss(MissFetch(key: primary, collapseKey: key, token: token, stale: stale, leader: true)))
            return
        }
        machine.askedSharedTier()
        let loop = eventLoop
        let lease = leaseWaitUntil == nil ? proxy.fetchLease : nil
        // The answer comes on this loop; bound to it, the request is carried on without a future.
        let answered = NIOLoopBound({ [self] (found: SharedTierLookup?) in
            if found == nil { proxy.stats.increment(.l2Errors) }
            guard !machine.isClosing else {
                // Dropped: the connection closed meanwhile.
                proxy.collapser.finish(key, .retry, now: proxy.store.now)
                return
            }
            let miss = LeadingMiss(key: key, primary: primary, head: head, route: route, token: token, sequence: found?.sequence)
            let (entry, tags, kept) = keepInL1(found, for: miss)
            let stale = kept ?? stale
            let leaseDeadline =
                leaseWaitUntil ?? .now() + .nanoseconds(Int64(proxy.fetchLease.nanosecondsClamped))
            guard
                let decision = machine.sharedTierAnswered(
                    entry, mayFetch: found?.mayFetch ?? true, stale: stale.map { ($0, $0.staleWindows) },
                    leaseWaitLeft: NIODeadline.now() < leaseDeadline)
            else {
                proxy.collapser.finish(key, .retry, now: proxy.store.now)
                return
            }
            carryOut(decision, for: miss, tags: tags, stale: stale, leaseDeadline: leaseDeadline)
            flushSoon()
        }, eventLoop: loop)
        tier.lookup(key, lease: lease, on: loop) { found in answered.value(found) }
    }

    /// What L2 had goes into L1 first (fresh, or as stale when soft-purged there), with the
    /// token taken before asking: a purge meanwhile keeps it out. A soft-purged entry is kept
    /// as stale for what is left of its life and served stale while one refresh runs, as a
    /// soft purge of L1 would be; not servable stale, it is fetched (revalidated with its
    /// validators) and stored in L2 again with the sequence looked up (`kept`: the stale entry).
    private func keepInL1(
        _ found: SharedTierLookup?, for miss: LeadingMiss
    ) -> (entry: SharedAnswer.Entry, tags: [String], kept: CacheHit<CachedResponse>?) {
        guard let shared = found?.entry, let local = shared.localCopy(now: proxy.store.clock.wallSeconds(), compress: miss.route.compress)
        else { return (.absent, [], nil) }
        var tags = local.response.tags
        if VaryKey.isVariant(miss.key) && !shared.isVaryMarker { tags.append(VaryKey.primaryTag(miss.key)) }
        if found?.softPurged == true, !shared.isVaryMarker {
            proxy.store.store(local.response, for: miss.key, tags: tags, ttl: .zero, grace: local.ttl + local.retention, token: miss.token)
            let kept = proxy.store.lookup(miss.key).hit
            return (.softPurged(kept: kept.map { ($0, $0.staleWindows) }), tags, kept)
        }
        proxy.store.store(local.response, for: miss.key, tags: tags, ttl: local.ttl, grace: local.retention, token: miss.token)
        if shared.isVaryMarker { return (.varyMarker, tags, nil) }
        return (local.ttl > .zero ? .fresh((local.response, Int64(local.ttl.nanoseconds))) : .exhausted, tags, nil)
    }

    /// l2-wait → deliver, restart, wait or fetch: carries out what the shared tier's answer decided.
    private func carryOut(
        _ decision: SharedAnswer, for miss: LeadingMiss, tags: [String], stale: CacheHit<CachedResponse>?, leaseDeadline: NIODeadline
    ) {
        let (key, head, keepAlive) = (miss.key, miss.head, miss.head.isKeepAlive)
        switch decision {
        case .hit(let (response, remaining)):
            proxy.stats.increment(.l2Hits)
            countHit()
            deliver(
                .stored(response, age: response.initialAge, .hit(ttl: CacheHit<CachedResponse>.seconds(remaining), detail: "l2")),
                for: head, keepAlive: keepAlive)
            let (store, token) = (proxy.store, miss.token)
            proxy.collapser.finish(key, .stored(response, remainingNanoseconds: remaining), now: proxy.store.now) {
                !store.wasPurged(key, tags: tags, since: token)
            }
            answered(keepAlive: keepAlive)
        case .staleAndRefresh(let hit):
            proxy.collapser.finish(key, .retry, now: proxy.store.now)
            deliverStale(hit, detail: "stale-while-revalidate", for: head, keepAlive: keepAlive)
            refreshInBackground(key, primaryKey: miss.primary, head: head, route: miss.route, stale: hit, sharedSequence: miss.sequence)
            answered(keepAlive: keepAlive)
        case .restartForVariant:
            // This URL varies: release the flight on the primary key, and look up the variant (the
            // machine has restarted).
            proxy.collapser.finish(key, .retry, now: proxy.store.now)
            lookup(head, route: miss.route)
        case .staleWhileLeased(let hit):
            // Another node holds the lease and is fetching.
            deliverStale(hit, detail: "stale-while-leased", for: head, keepAlive: keepAlive)
            proxy.collapser.finish(key, .retry, now: proxy.store.now)
            answered(keepAlive: keepAlive)
        case .waitForLease:
            // Another node holds the lease: wait briefly for L2 to fill (the machine waits still).
            eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(15)) { [self] in
                guard machine.sharedTierAnswered() else {
                    proxy.collapser.finish(key, .retry, now: proxy.store.now)
                    return
                }
                leadMiss(key, primary: miss.primary, head: head, route: miss.route, stale: stale, leaseWaitUntil: leaseDeadline)
            }
        case .fetch:
            // Nothing in L2, or the lease wait is over: fetch (without the lease in that case).
            proxy.stats.increment(.l2Misses)
            var fetch = MissFetch(key: miss.primary, collapseKey: key, token: miss.token, stale: stale, leader: true)
            fetch.sharedSequence = miss.sequence
            self.fetch(head, route: miss.route, mode: .miss(fetch))
        }
    }

    /// The fetch a waiting request was collapsed into has ended.
    private func collapsedFetchEnded(id: UInt64, outcome: CollapseOutcome) {
        guard let waiting = machine.collapsedWait, waiting.id == id else { return }
        let end: RequestStateMachine<ForwardExchange, CollapseWait>.CollapsedFetchEnd
        switch outcome {
        case .stored(let response, _):
            // A fetch of another variant than this request needs does not answer it.
            end = .stored(
                sameVariant: response.varyFields.isEmpty
                    || response.variantID
                        == VaryKey.variantID(fields: response.varyFields, headers: waiting.head.headers, languages: waiting.route.vary.languages))
        case .retry:
            end = .notStored
        case .failed:
            end = .failed(staleIfError: waiting.stale?.staleWindows.ifError == true)
        }
        guard let (_, next) = machine.collapsedFetchEnded(id: id, end) else { return }
        waiting.timer.cancel()
        let keepAlive = waiting.head.isKeepAlive
        switch (next, outcome) {
        case (.deliverStored, .stored(let response, let remaining)):
            deliver(
                .stored(response, age: response.initialAge, .hit(ttl: CacheHit<CachedResponse>.seconds(remaining), detail: "collapsed")),
                for: waiting.head, keepAlive: keepAlive)
            countHit()
            answered(keepAlive: keepAlive)
        case (.deliverStale, _):
            if let stale = waiting.stale { deliverStale(stale, detail: "stale-if-error", for: waiting.head, keepAlive: keepAlive) }
            answered(keepAlive: keepAlive)
        case (.answerError, .failed(let error)):
            answer(error, keepAlive: keepAlive)
        case (.lookUpAgain, _), (.deliverStored, _), (.answerError, _):
            // Looked up again (the machine has restarted; the other two pairs cannot happen, as
            // `end` was made from `outcome`).
            lookup(waiting.head, route: waiting.route)
        }
        flushSoon()
    }

    /// A fresh hit: the stored head, three dynamic lines and the stored body, written as they are.
    private func deliverHit(_ hit: CacheHit<CachedResponse>, for head: HTTPRequestHead, keepAlive: Bool) {
        deliver(.stored(hit.value, age: hit.age, .hit(ttl: hit.ttlSeconds)), for: head, keepAlive: keepAlive)
        countHit()
        answered(keepAlive: keepAlive)
    }

    /// Serves a stale entry (`X-Cache: STALE`), saying why in `Cache-Status`.
    private func deliverStale(_ stale: CacheHit<CachedResponse>, detail: String, for head: HTTPRequestHead, keepAlive: Bool) {
        deliver(.stale(stale, detail: detail), for: head, keepAlive: keepAlive)
    }

    private func countHit() {
        proxy.stats.increment(.hits)
        proxy.metrics.hits.increment()
    }

    /// deliver: every answer the client is given, hits as fetches as errors, is handed to the
    /// transport here. The one place a stored response's answer (304, 206, gzip) is chosen.
    func deliver(_ delivery: Delivery, for request: HTTPRequestHead, keepAlive: Bool) {
        switch delivery {
        case .stored(let response, let age, let verdict):
            if verdict.result == .stale {
                proxy.stats.increment(.stale)
                proxy.metrics.stale.increment()
            }
            let answer = StoredAnswer.choose(response, for: request)
            if case .notModified = answer { proxy.stats.increment(.notModified) }
            record?.status = answer.status
            record?.result = verdict.result
            sendStored(answer, age: age, verdict: verdict, for: request, keepAlive: keepAlive)
        case .streamed(let status, let fields, let body, let purge, let verdict):
            record?.status = Int(status.code)
            record?.result = verdict.result
            sendHead(status, fields: fields, body: body, purge: purge, verdict: verdict, for: request, keepAlive: keepAlive)
        case .error(let error):
            deliverError(error, keepAlive: keepAlive)
        }
    }

    /// The proxy's own error, counted and recorded, then written by the transport.
    func deliverError(_ error: ProxyError, keepAlive: Bool) {
        proxy.stats.increment(.clientErrors)
        proxy.metrics.errors.increment()
        record?.status = Int(error.status.code)
        record?.result = nil
        sendError(error, keepAlive: keepAlive)
    }

    /// fetch: hands the request to an exchange with the route's origin.
    func fetch(_ head: HTTPRequestHead, route: Route, mode: ForwardExchange.Mode) {
        let pool = route.origin.pool(on: eventLoop)
        // `Expect: 100-continue` (RFC 9110 §10.1.1): the client waits for a go-ahead before its
        // body. The proxy gives it once it is ready to forward the body; the origin is sent the
        // body as a stream without `Expect`, so its own 100 never comes.
        let requestOpen = machine.body != .complete
        if requestOpen, head.headers["expect"].contains(where: { $0.lowercased().contains("100-continue") }) {
            sendInterim(.continue, fields: [:], for: head)
            flush()
        }
        let exchange = ForwardExchange(
            proxy: proxy, client: self, forwarding: record?.forwarding ?? .direct("vitrine"), requestID: record?.requestID, request: head, route: route, mode: mode, pool: pool,
            keepAlive: head.isKeepAlive, requestComplete: !requestOpen)
        machine.fetchStarted(exchange)
        exchange.start()
    }

    /// Revalidates a stale entry with nobody waiting, unless a fetch for it is already under way.
    /// - Parameter sharedSequence: the shared tier's purge sequence when it was just looked up:
    ///   the refreshed response is then stored there too.
    private func refreshInBackground(
        _ key: CacheKey, primaryKey: CacheKey, head: HTTPRequestHead, route: Route, stale: CacheHit<CachedResponse>,
        sharedSequence: Int64? = nil
    ) {
        guard proxy.collapser.lead(key) else { return }
        let pool = route.origin.pool(on: eventLoop)
        var request = head
        request.method = .GET
        request.headers.remove(name: "if-none-match")
        request.headers.remove(name: "if-modified-since")
        var fetch = MissFetch(key: primaryKey, collapseKey: key, token: proxy.store.fetchToken(), stale: stale, leader: true)
        fetch.sharedSequence = sharedSequence
        let refresh = ForwardExchange(
            proxy: proxy, client: nil, forwarding: .direct("vitrine-refresh"), requestID: record?.requestID, request: request, route: route, mode: .miss(fetch), pool: pool,
            keepAlive: true, requestComplete: true)
        refresh.start()
    }

    /// Carries out an abandoned step: the fetch stops (its origin connection is released or
    /// closed), a collapsed wait leaves its flight.
    func cancel(_ abandoned: RequestStateMachine<ForwardExchange, CollapseWait>.Abandoned?) {
        switch abandoned {
        case .fetch(let exchange):
            exchange.clientClosed()
        case .wait(let wait):
            wait.timer.cancel()
            _ = proxy.collapser.leave(wait.key, id: wait.id)
        case .nothing, nil:
            break
        }
    }

    /// Answers with an error: the one way the pipeline ends a request with the proxy's own answer.
    private func answer(_ error: ProxyError, keepAlive: Bool) {
        respond(error, keepAlive: keepAlive)
        answered(keepAlive: keepAlive && !error.closesConnection)
    }
}

/// The `X-Cache` value of an answer.
public enum CacheResult: String, Sendable {
    case hit = "HIT"
    case miss = "MISS"
    case stale = "STALE"
    case pass = "PASS"

    public var headerLine: StaticString {
        switch self {
        case .hit: return "X-Cache: HIT\r\n"
        case .miss: return "X-Cache: MISS\r\n"
        case .stale: return "X-Cache: STALE\r\n"
        case .pass: return "X-Cache: PASS\r\n"
        }
    }
}

/// The shared tier's answer, decided: a fresh response with its freshness left, or a stale entry.
typealias SharedAnswer = SharedTierDecision<(response: CachedResponse, remaining: Int64), CacheHit<CachedResponse>>

/// A miss this connection leads, as the shared tier answered it: what each step after needs.
private struct LeadingMiss {
    /// The key the fetch is collapsed on (the variant's, when known).
    let key: CacheKey
    let primary: CacheKey
    let head: HTTPRequestHead
    let route: Route
    /// Taken before the tier was asked.
    let token: FetchToken
    /// The tier's purge sequence at the lookup: a response stored with it is race-free.
    let sequence: Int64?
}

/// A request waiting for a collapsed fetch.
struct CollapseWait: Identifiable {
    let id: UInt64
    let key: CacheKey
    let head: HTTPRequestHead
    let route: Route
    let stale: CacheHit<CachedResponse>?
    let timer: Scheduled<Void>
}

/// A fetch for a cacheable request: its key, the store's token from when it began, the stale
/// entry it may revalidate or fall back to, and whether other requests wait for it.
struct MissFetch {
    /// The primary key (the route's normalised target).
    let key: CacheKey
    /// The key the fetch is collapsed on: the secondary key when the variant fields are known.
    let collapseKey: CacheKey
    let token: FetchToken
    let stale: CacheHit<CachedResponse>?
    let leader: Bool
    /// The shared tier's purge sequence, when the tier was looked up before this fetch.
    var sharedSequence: Int64? = nil
}

extension CacheHit where Value == CachedResponse {
    /// `Age` in seconds (rounded down).
    var age: Int { value.initialAge + Int(residentNanoseconds / 1_000_000_000) }
    /// Freshness left in seconds, rounded up so that `Age` + ttl is the lifetime; negative when stale.
    var ttlSeconds: Int { Self.seconds(remainingNanoseconds) }

    static func seconds(_ nanoseconds: Int64) -> Int {
        nanoseconds >= 0 ? Int((nanoseconds + 999_999_999) / 1_000_000_000) : -Int((-nanoseconds) / 1_000_000_000)
    }

    /// Where this entry stands against its own stale-while-revalidate and stale-if-error.
    var staleWindows: StaleWindows {
        staleWindows(whileRevalidate: value.staleWhileRevalidate, ifError: value.staleIfError)
    }
}

import NIOCore
import NIOHTTP1
import VitrineCore

/// What a fetch does with what it fetched: stores it in L1 (and the shared tier), hands it to the
/// requests collapsed into it, tells whoever started it how it ended, and purges what a write
/// changed.
extension ForwardExchange {
    /// Stores under the primary key, or, for a response that varies, under its secondary key with
    /// a marker under the primary one. Nil when not stored.
    func store(_ response: CachedResponse, plan: StoragePlan) -> StoredAs? {
        guard case .miss(let fetch) = mode else { return nil }
        var key = fetch.key
        var tags = response.tags
        let wall = proxy.store.clock.wallSeconds()
        // Purging the URL purges what is stored under a key of its other than the URL's own:
        // each variant, and what was fetched over https.
        let httpsKey = VaryKey.isVariant(fetch.key)
        if httpsKey || !response.varyFields.isEmpty { tags.append(VaryKey.primaryTag(fetch.key)) }
        if !response.varyFields.isEmpty {
            key = VaryKey.secondaryKey(fetch.key, fields: response.varyFields, headers: request.headers, languages: route.vary.languages)
            let marker = CachedResponse.varyMarker(fields: response.varyFields)
            proxy.store.store(
                marker, for: fetch.key, tags: httpsKey ? [VaryKey.primaryTag(fetch.key)] : [], ttl: plan.ttl, grace: plan.retention,
                token: fetch.token)
            storeShared(fetch.key, L2Entry(marker, plan: plan, storedAt: wall), fetch: fetch, plan: plan)
        }
        let outcome = proxy.store.store(response, for: key, tags: tags, ttl: plan.ttl, grace: plan.retention, token: fetch.token)
        guard outcome == .stored else {
            purgedDuringFetch = outcome == .purgedDuringFetch
            return nil
        }
        proxy.stats.increment(.stored)
        storedResponse = response
        storeShared(key, L2Entry(response, plan: plan, storedAt: wall), fetch: fetch, plan: plan)
        return StoredAs(key: key, tags: tags)
    }

    /// Writes to the shared tier in the background, never delaying the client. Only for fetches
    /// that looked the tier up first: its sequence from then makes the write race-free.
    func storeShared(_ key: CacheKey, _ entry: L2Entry, fetch: MissFetch, plan: StoragePlan) {
        guard let tier = proxy.tier, let sequence = fetch.sharedSequence else { return }
        tier.store(
            key, entry: entry, extraTags: [sharedTierKeyTag(fetch.key), sharedTierEverythingTag], sequence: sequence, ttl: plan.ttl + plan.retention,
            on: pool.eventLoop)
    }

    func makeResponse(
        status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer, tags: [String], plan: StoragePlan
    ) -> CachedResponse {
        CachedResponse(
            status: status, headers: headers, body: body, initialAge: plan.initialAge, tags: tags,
            staleWhileRevalidate: plan.staleWhileRevalidate, staleIfError: plan.staleIfError, varyFields: plan.varyFields,
            variantID: VaryKey.variantID(fields: plan.varyFields, headers: request.headers, languages: route.vary.languages),
            compress: route.compress)
    }

    /// Tells whoever started the fetch how it ended, once.
    func report(_ outcome: FetchOutcome) {
        guard let onEnd else { return }
        self.onEnd = nil
        onEnd(outcome)
    }

    /// Tells requests collapsed into this fetch how it ended (once; only when leading).
    func releaseWaiters(_ outcome: CollapseOutcome, pass: Bool = false, stillCurrent: () -> Bool = { true }) {
        guard case .miss(let fetch) = mode, fetch.leader, !waitersReleased else { return }
        waitersReleased = true
        if case .stored = outcome {} else if fetch.sharedSequence != nil {
            proxy.tier?.releaseLease(fetch.collapseKey, on: pool.eventLoop)
        }
        proxy.collapser.finish(fetch.collapseKey, outcome, pass: pass, now: proxy.store.now, stillCurrent: stillCurrent)
    }

    /// Hands a response this fetch stored to the requests collapsed into it, unless a purge has
    /// touched it since the fetch began (they then look up again).
    func releaseWaiters(_ response: CachedResponse, storedAs stored: StoredAs?, plan: StoragePlan) {
        guard let stored, case .miss(let fetch) = mode else {
            releaseWaiters(.retry)
            return
        }
        let store = proxy.store
        releaseWaiters(.stored(response, remainingNanoseconds: Int64(plan.ttl.nanoseconds))) {
            !store.wasPurged(stored.key, tags: stored.tags, since: fetch.token)
        }
    }

    /// Purges what a successful write changed; the future completes when the shared tier has the
    /// purge (nil without a tier).
    func purgeAfterWrite(responseHeaders: HTTPHeaders, tags: [String]) -> EventLoopFuture<Void>? {
        var keys = [request.uri]
        // RFC 9111 §4.4: Location and Content-Location are invalidated too when same-origin
        // (a path, or an absolute URL naming the request's own host).
        let host = request.headers.first(name: "host")?.lowercased()
        for name in ["location", "content-location"] {
            guard let value = responseHeaders.first(name: name) else { continue }
            if value.hasPrefix("/") {
                keys.append(value)
            } else if let host, Invalidator.host(value)?.lowercased() == host, let target = Invalidator.requestTarget(value) {
                keys.append(target)
            }
        }
        return proxy.invalidator.purge(PurgeRequest(tags: tags, keys: keys), on: pool.eventLoop).1
    }

    /// Where a response was stored, to tell whether a purge has touched it since.
    struct StoredAs {
        let key: CacheKey
        let tags: [String]
    }
}

import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import VitrineConfig
import VitrineCore

/// Listings computed ahead of demand: every page the config declares is fetched at start
/// (bounded concurrency), kept pinned in a budget of its own that ordinary traffic never evicts,
/// and recomputed before its refresh interval ends and right after a purge of one of its tags
/// (debounced: a burst of purges costs a few recomputes). Until a new version is in, the
/// previous one is served, for at most the page's `max_stale`; past that requests go the normal
/// way. A recompute asks the shared tier first, under a lease, so one node fetches and the
/// others take its result from L2.
///
/// The decisions are `ListingSchedule`'s; this holds the versions, runs the fetches on one event
/// loop and answers lookups from any.
package final class Listings: Sendable {
    /// One page: a rendered template.
    struct Page: Sendable {
        let key: CacheKey
        let target: String
        /// The route when the page was registered; fetches use the current one (`currentRoute`).
        let route: Route
        let definition: Int
        /// The configured tags, rendered for this page.
        let declaredTags: [String]
        let timing: ListingSchedule<CacheKey>.Timing
    }

    struct Version: Sendable {
        let response: CachedResponse
        let fetchedAt: UInt64
        let cost: Int
    }

    /// A page served from its pinned version.
    struct Hit {
        let response: CachedResponse
        let age: Int
    }

    private struct State {
        var schedule = ListingSchedule<CacheKey>()
        var pages: [CacheKey: Page] = [:]
        var versions: [CacheKey: Version] = [:]
        /// Tag → pages carrying it (configured tags and the ones the origin named).
        var tagIndex: [String: Set<CacheKey>] = [:]
        var bytes = 0
        /// Definitions whose parameter values are known (index endpoints read).
        var resolved: Set<Int> = []
        var startedAt: UInt64 = 0
        var warmAt: UInt64?
        var refreshes = 0
        var failures = 0
        var lastRefreshAt: UInt64?
        var lastLatency: UInt64 = 0
        var totalLatency: UInt64 = 0
        var lastError: String?
        var stopped = false
    }

    let settings: ListingsSettings
    private let state = Mutex(State())
    private let hitCount = Atomic<Int>(0)
    private let pageCount = Atomic<Int>(0)
    private let logger: Logger
    private let clock: any CacheClock
    private let fetcher: ListingFetcher
    /// The loop the fetches run on, once started.
    private let runLoop = Mutex<(any EventLoop)?>(nil)
    private let tick: TimeAmount = .milliseconds(25)

    /// Built by a reload, to replace listings already serving.
    private let replacing: Bool

    package init(settings: ListingsSettings, fetcher: ListingFetcher, clock: any CacheClock, logger: Logger, replacing: Bool = false) {
        self.settings = settings
        self.replacing = replacing
        self.fetcher = fetcher
        self.clock = clock
        self.logger = logger
    }

    var isEnabled: Bool { !settings.pages.isEmpty }

    // MARK: Serving

    /// The pinned version of `key`, if it is a listing with a version that may be served.
    func lookup(_ key: CacheKey) -> Hit? {
        guard pageCount.load(ordering: .relaxed) > 0 else { return nil }
        let now = clock.nanoseconds()
        let version: Version? = state.withLock { state in
            guard state.schedule.isServable(key, now: now) else { return nil }
            return state.versions[key]
        }
        guard let version else { return nil }
        hitCount.add(1, ordering: .relaxed)
        return Hit(response: version.response, age: version.response.initialAge + Int((now &- version.fetchedAt) / 1_000_000_000))
    }

    // MARK: Purges

    /// A purge reached this node: the pages it touches are recomputed (at once after a quiet
    /// spell, debounced in a burst); their current versions are served meanwhile, within their
    /// `max_stale`.
    package func invalidate(_ request: PurgeRequest, keys: [CacheKey]) {
        guard isEnabled else { return }
        let now = clock.nanoseconds()
        let touchedAny = state.withLock { state -> Bool in
            var touched = Set<CacheKey>()
            if request.everything {
                touched = Set(state.pages.keys)
            } else {
                for tag in request.tags { touched.formUnion(state.tagIndex[tag] ?? []) }
                for key in keys where state.pages[key] != nil { touched.insert(key) }
                for prefix in request.prefixes where !prefix.isEmpty {
                    touched.formUnion(state.pages.keys.filter { $0.value.hasPrefix(prefix) })
                }
            }
            for key in touched { state.schedule.invalidate(key, now: now) }
            return !touched.isEmpty
        }
        // A purge after a quiet spell is due at once: start it now rather than at the next tick
        // (only when it touched a page: most purges name no listing).
        if touchedAny, let loop = runLoop.withLock({ $0 }) {
            loop.execute { [self] in runDue(on: loop) }
        }
    }

    // MARK: Running

    /// Starts warming up and refreshing, on `loop`.
    package func start(on loop: any EventLoop) {
        guard isEnabled else { return }
        runLoop.withLock { $0 = loop }
        state.withLock { $0.startedAt = clock.nanoseconds() }
        logger.info("warming listings", metadata: ["definitions": "\(settings.pages.count)", "concurrency": "\(settings.concurrency)"])
        // Everything here runs on `loop`: the fetches use its origin pool.
        loop.execute { [self] in
            for index in settings.pages.indices { resolve(index, on: loop) }
            scheduleTick(on: loop)
        }
    }

    package func stop() {
        state.withLock { $0.stopped = true }
    }

    private func scheduleTick(on loop: any EventLoop) {
        loop.scheduleTask(in: tick) { [self] in
            guard !state.withLock({ $0.stopped }) else { return }
            runDue(on: loop)
            scheduleTick(on: loop)
        }
    }

    private func runDue(on loop: any EventLoop) {
        let now = clock.nanoseconds()
        let due: [Page] = state.withLock { state in
            state.schedule.takeDue(now: now, limit: settings.concurrency).compactMap { state.pages[$0] }
        }
        for page in due { refresh(page, on: loop, attempt: 0) }
    }

    /// Reads the values of the definition's parameters (index endpoints from the origin), then
    /// registers its pages. Index endpoints are read again every `refresh`; one that cannot be
    /// read is retried every second, the pages already known kept meanwhile.
    private func resolve(_ index: Int, on loop: any EventLoop) {
        let definition = settings.pages[index]
        var domains: [(name: String, values: [String])] = []
        var pending = 0
        var failed: String?
        var rereadAfter: Duration?
        func finish() {
            guard pending == 0 else { return }
            let next: Duration
            if let failed {
                logger.warning("listing index unreadable; retrying", metadata: ["listing": "\(definition.name)", "error": "\(failed)"])
                state.withLock { $0.lastError = failed }
                next = .seconds(1)
            } else {
                register(index, domains: domains)
                guard let rereadAfter else { return }
                next = rereadAfter
            }
            loop.scheduleTask(in: .nanoseconds(Int64(clamping: next.nanoseconds))) { [self] in
                guard !state.withLock({ $0.stopped }) else { return }
                resolve(index, on: loop)
            }
        }
        for (position, parameter) in definition.parameters.enumerated() {
            switch parameter.domain {
            case .values(let values):
                domains.append((parameter.name, values))
            case .range(let first, let last):
                domains.append((parameter.name, (first...last).map(String.init)))
            case .index(let path, let field, let refresh):
                domains.append((parameter.name, []))
                rereadAfter = min(rereadAfter ?? refresh, refresh)
                pending += 1
                fetchIndex(path, field: field, on: loop) { result in
                    pending -= 1
                    switch result {
                    case .success(let values): domains[position].values = values
                    case .failure(let error): failed = "\(path): \(error)"
                    }
                    finish()
                }
            }
        }
        finish()
    }

    private func register(_ index: Int, domains: [(name: String, values: [String])]) {
        let definition = settings.pages[index]
        let timing = ListingSchedule<CacheKey>.Timing(refresh: definition.refresh, debounce: settings.debounce, maxStale: definition.maxStale)
        var pages: [Page] = []
        for values in ListingTemplate.combinations(domains) {
            let target = definition.template.render(values, percentEncoded: true)
            guard let route = fetcher.route(for: target) else {
                logger.warning("listing page has no route", metadata: ["target": "\(target)"])
                continue
            }
            pages.append(
                Page(
                    key: route.key(target: target, host: nil), target: target, route: route, definition: index,
                    declaredTags: definition.tags.map { $0.render(values) }, timing: timing))
        }
        let now = clock.nanoseconds()
        let count = state.withLock { state in
            let wanted = Set(pages.map(\.key))
            // Pages of this definition the index no longer lists are dropped.
            for (key, page) in state.pages where page.definition == index && !wanted.contains(key) { remove(key, from: &state) }
            for page in pages where state.pages[page.key] == nil {
                state.pages[page.key] = page
                for tag in page.declaredTags { state.tagIndex[tag, default: []].insert(page.key) }
                state.schedule.add(page.key, timing: timing, now: now)
            }
            state.resolved.insert(index)
            return state.pages.count
        }
        pageCount.store(count, ordering: .relaxed)
    }

    private func remove(_ key: CacheKey, from state: inout State) {
        if let version = state.versions.removeValue(forKey: key) { state.bytes -= version.cost }
        if let page = state.pages.removeValue(forKey: key) {
            for tag in page.declaredTags { state.tagIndex[tag]?.remove(key) }
        }
        state.schedule.remove(key)
    }

    /// One recompute: the shared tier first (another node may have it, or be computing it), then
    /// the origin.
    private func refresh(_ page: Page, on loop: any EventLoop, attempt: Int) {
        let started = clock.nanoseconds()
        let token = fetcher.fetchToken()
        guard let lookup = fetcher.lookUpShared(page.key, on: loop) else {
            fetch(page, token: token, sharedSequence: nil, started: started, on: loop)
            return
        }
        lookup.whenComplete { [self] result in
            let found = (try? result.get()) ?? nil
            // An entry that survived the tier's tag check was fetched after every purge the tier
            // has: computed by another node (or by this one before a restart).
            if let entry = found?.entry, !entry.isVaryMarker,
                let local = entry.localCopy(now: clock.wallSeconds(), compress: currentRoute(page).compress), local.ttl > .zero
            {
                install(page, response: local.response, started: started, fromL2: true)
                return
            }
            if let found, !found.mayFetch, attempt < 100 {
                // Another node holds the lease and is computing it: look again shortly.
                loop.scheduleTask(in: .milliseconds(20)) { [self] in refresh(page, on: loop, attempt: attempt + 1) }
                return
            }
            fetch(page, token: token, sharedSequence: found?.sequence, started: started, on: loop)
        }
    }

    /// The page's route as the routes are now: a reload that changed its TTL or its origin
    /// applies to the next refresh.
    private func currentRoute(_ page: Page) -> Route {
        fetcher.route(for: page.target) ?? page.route
    }

    private func fetch(_ page: Page, token: FetchToken, sharedSequence: Int64?, started: UInt64, on loop: any EventLoop) {
        fetcher.fetch(page.target, route: currentRoute(page), token: token, sharedSequence: sharedSequence, on: loop) { [self] outcome in
            switch ListingFetchError.result(of: outcome) {
            case .success(let response): install(page, response: response, started: started, fromL2: false)
            case .failure(let error): failed(page, error: "\(error)")
            }
        }
    }

    private func install(_ page: Page, response: CachedResponse, started: UInt64, fromL2: Bool) {
        let now = clock.nanoseconds()
        let cost = response.cost
        let outcome: (installed: Bool, warmedNow: Bool, progress: (Int, Int)?) = state.withLock { state in
            guard state.pages[page.key] != nil else { return (false, false, nil) }
            let previous = state.versions[page.key]?.cost ?? 0
            guard state.bytes - previous + cost <= settings.budget.bytes else {
                state.failures += 1
                state.lastError = "listings budget (\(settings.budget.bytes) bytes) exceeded by \(page.target)"
                state.schedule.finished(page.key, succeeded: false, now: now)
                return (false, false, nil)
            }
            state.bytes += cost - previous
            state.versions[page.key] = Version(response: response, fetchedAt: now, cost: cost)
            for tag in response.tags { state.tagIndex[tag, default: []].insert(page.key) }
            state.schedule.finished(page.key, succeeded: true, now: now)
            state.refreshes += 1
            state.lastRefreshAt = now
            state.lastLatency = now &- started
            state.totalLatency &+= now &- started
            let warmedNow = state.warmAt == nil && state.resolved.count == settings.pages.count && state.schedule.isWarm
            if warmedNow { state.warmAt = now }
            let warmed = state.schedule.warmCount
            let progress = state.warmAt == nil && warmed % 50 == 0 ? (warmed, state.pages.count) : nil
            return (true, warmedNow, progress)
        }
        if let (warmed, count) = outcome.progress {
            logger.info("warming listings", metadata: ["warm": "\(warmed)", "pages": "\(count)"])
        }
        if outcome.warmedNow {
            let (count, bytes, elapsed) = state.withLock { ($0.pages.count, $0.bytes, ($0.warmAt ?? 0) &- $0.startedAt) }
            logger.info(
                "listings warm",
                metadata: ["pages": "\(count)", "bytes": "\(bytes)", "milliseconds": "\(elapsed / 1_000_000)"])
        }
    }

    private func failed(_ page: Page, error: String) {
        let now = clock.nanoseconds()
        let failures = state.withLock { state in
            state.failures += 1
            state.lastError = "\(page.target): \(error)"
            state.schedule.finished(page.key, succeeded: false, now: now)
            return state.failures
        }
        if failures == 1 || failures % 100 == 0 {
            logger.warning("listing recompute failed; the previous version is kept", metadata: ["target": "\(page.target)", "error": "\(error)", "failures": "\(failures)"])
        }
    }

    /// Reads an index endpoint (a JSON list) through the cache's own fetch path.
    private func fetchIndex(
        _ path: String, field: String?, on loop: any EventLoop,
        completion: @escaping (Result<[String], ListingFetchError>) -> Void
    ) {
        guard let route = fetcher.route(for: path) else {
            completion(.failure(ListingFetchError(reason: "no route for \(path)")))
            return
        }
        fetcher.fetch(path, route: route, token: fetcher.fetchToken(), sharedSequence: nil, on: loop) { outcome in
            completion(ListingFetchError.result(of: outcome).flatMap { response in
                let items = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [Any]
                guard let items else { return .failure(ListingFetchError(reason: "not a JSON list")) }
                let values: [String] = items.compactMap { item in
                    let value: Any? = if let field { (item as? [String: Any])?[field] } else { item }
                    switch value {
                    case let number as NSNumber: return number.stringValue
                    case let text as String: return text
                    default: return nil
                    }
                }
                return .success(values)
            })
        }
    }

    // MARK: Observing

    /// What `/stats` and `/metrics` show.
    struct Status: Sendable {
        var count = 0
        var warm = false
        var warmed = 0
        var bytes = 0
        var hits = 0
        var refreshes = 0
        var failures = 0
        var inFlight = 0
        var warmUpMilliseconds: Int?
        var lastRefreshMillisecondsAgo: Int?
        var lastRefreshLatencyMilliseconds = 0.0
        var meanRefreshLatencyMilliseconds = 0.0
        var lastError: String?
    }

    var status: Status {
        let now = clock.nanoseconds()
        var status = state.withLock { state in
            Status(
                count: state.pages.count,
                warm: state.warmAt != nil,
                warmed: state.schedule.warmCount,
                bytes: state.bytes,
                refreshes: state.refreshes,
                failures: state.failures,
                inFlight: state.schedule.inFlight,
                warmUpMilliseconds: state.warmAt.map { Int(($0 &- state.startedAt) / 1_000_000) },
                lastRefreshMillisecondsAgo: state.lastRefreshAt.map { Int((now &- $0) / 1_000_000) },
                lastRefreshLatencyMilliseconds: Double(state.lastLatency) / 1e6,
                meanRefreshLatencyMilliseconds: state.refreshes == 0 ? 0 : Double(state.totalLatency) / Double(state.refreshes) / 1e6,
                lastError: state.lastError)
        }
        status.hits = hitCount.load(ordering: .relaxed)
        if !isEnabled { status.warm = true }
        return status
    }

    /// Ready as far as listings go: warm, or not required to be.
    /// Ready to take traffic: warm, unless `require_warm` is off or these listings replaced
    /// others on a reload (the node was serving already: it does not turn unready to warm up).
    var isReady: Bool { !settings.requireWarm || replacing || status.warm }
}

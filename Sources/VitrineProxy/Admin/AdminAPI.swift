import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import VitrineCore

/// A request to the admin API, body already read.
struct AdminRequest {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// The loop the request arrived on, for calls to the shared tier.
    var eventLoop: (any EventLoop)? = nil
}

/// An answer from the admin API.
struct AdminResponse {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]

    static func json(_ status: HTTPResponseStatus, _ text: String) -> AdminResponse {
        AdminResponse(status: status, contentType: "application/json", body: Array(text.utf8))
    }

    static func error(_ status: HTTPResponseStatus, _ code: String, _ message: String) -> AdminResponse {
        .json(status, "{\"error\":\"\(code)\",\"message\":\"\(message.jsonEscaped)\"}")
    }
}

/// The admin API's calls (see CONTRACT.md): purge, stats, metrics, health. Every call needs the
/// bearer token, compared in constant time.
package final class AdminAPI: Sendable {
    private let token: [UInt8]
    private let invalidator: Invalidator
    private let store: ResponseStore
    private let stats: ProxyStats
    private let metrics: ProxyMetrics
    private let ready = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    private let reloader = Mutex<(@Sendable () -> ReloadReport)?>(nil)
    private let listingsSource: Reloadable<Listings>?
    private var listings: Listings? { listingsSource?.current }
    /// The change feed's status; nil (off) without Postgres.
    private let feedStatus: @Sendable () -> ChangeFeedStatus?
    private let purgeLogStatus: @Sendable () -> PurgeLogStatus?

    package init(
        token: String, invalidator: Invalidator, store: ResponseStore, stats: ProxyStats, metrics: ProxyMetrics,
        listings: Reloadable<Listings>? = nil, feedStatus: @escaping @Sendable () -> ChangeFeedStatus? = { nil },
        purgeLogStatus: @escaping @Sendable () -> PurgeLogStatus? = { nil }
    ) {
        self.feedStatus = feedStatus
        self.purgeLogStatus = purgeLogStatus
        self.listingsSource = listings
        self.token = Array(token.utf8)
        self.invalidator = invalidator
        self.store = store
        self.stats = stats
        self.metrics = metrics
    }

    /// Listeners are up (listings are asked separately).
    package func markReady(_ value: Bool) { ready.store(value, ordering: .releasing) }

    /// The node drains (`SIGTERM`): `/readyz` says 503 from now on, so that load balancers
    /// stop sending while the listeners still take what is in flight.
    package func markDraining() { draining.store(true, ordering: .releasing) }

    /// What `POST /reload` runs (the node sets it once built).
    package func onReload(_ reload: @escaping @Sendable () -> ReloadReport) {
        reloader.withLock { $0 = reload }
    }

    /// Who a listener serves.
    package enum Access: Sendable {
        /// The admin listener: every call, with the bearer token.
        case admin
        /// The probe listener: health, readiness and metrics only, without a token.
        case probes
    }

    func handle(_ request: AdminRequest, access: Access = .admin) -> AdminResponse {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        switch access {
        case .admin:
            guard isAuthorized(request.headers) else {
                return .error(.unauthorized, "unauthorized", "missing or wrong bearer token")
            }
        case .probes:
            guard request.method == .GET, ["/healthz", "/readyz", "/metrics"].contains(path) else {
                return .error(.notFound, "not_found", "the probe listener serves GET /healthz, /readyz and /metrics only")
            }
        }
        switch (request.method, path) {
        case (.POST, "/purge"):
            return purge(body: request.body, on: request.eventLoop)
        case (.PURGE, _):
            let result = invalidator.purge(PurgeRequest(keys: [request.uri]), on: request.eventLoop).0
            return .json(.ok, "{\"purged\":\(result.purged),\"keys\":1}")
        case (.POST, "/reload"):
            guard let reload = reloader.withLock({ $0 }) else {
                return .error(.notFound, "not_found", "this node was not started from a config file: nothing to reload")
            }
            let report = reload()
            return .json(report.applied ? .ok : .unprocessableEntity, report.json)
        case (.GET, "/stats"):
            return .json(.ok, statsJSON())
        case (.GET, "/metrics"):
            metrics.record(store: store, stats: stats, tierState: invalidator.tier?.state, shards: invalidator.tier?.shards ?? [])
            if let feed = feedStatus() { metrics.record(feed) }
            metrics.record(outbox: invalidator.outbox.status, log: purgeLogStatus())
            if let listings { metrics.record(listings.status) }
            return AdminResponse(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.exposition())
        case (.GET, "/healthz"):
            return .json(.ok, "{\"status\":\"ok\"}")
        case (.GET, "/readyz"):
            let listening = ready.load(ordering: .acquiring)
            let listingsReady = listings?.isReady ?? true
            let isDraining = draining.load(ordering: .acquiring)
            let isReady = listening && listingsReady && !isDraining
            // Redis down degrades service (L1 and the origin carry on): it does not make the node unready.
            return .json(
                isReady ? .ok : .serviceUnavailable,
                "{\"ready\":\(isReady),\"draining\":\(isDraining),\"listeners\":\(listening),\"config\":true,\"listings_warm\":\(listings?.status.warm ?? true),\"redis\":\"\(redisState)\",\"feed\":\"\(feedStatus()?.state ?? "off")\"}"
            )
        default:
            return .error(.notFound, "not_found", "no admin call \(request.method.rawValue) \(path)")
        }
    }

    private func purge(body: ByteBuffer, on eventLoop: (any EventLoop)?) -> AdminResponse {
        let request: PurgeRequest
        do {
            request = try JSONDecoder().decode(PurgeRequest.self, from: Data(body.readableBytesView))
        } catch {
            return .error(.badRequest, "invalid_json", "expected {\"tags\": [...], \"keys\": [...], \"prefixes\": [...], \"everything\": false, \"soft\": false}")
        }
        guard !request.isEmpty else {
            return .error(.badRequest, "empty_purge", "name at least one tag, key or prefix, or everything")
        }
        let result = invalidator.purge(request, on: eventLoop).0
        return .json(
            .ok,
            "{\"purged\":\(result.purged),\"tags\":\(result.tags),\"keys\":\(result.keys),\"prefixes\":\(result.prefixes),\"soft\":\(request.soft)}"
        )
    }

    private func statsJSON() -> String {
        let hits = stats.value(.hits)
        let misses = stats.value(.misses)
        let lookups = hits + misses
        let ratio = lookups == 0 ? 0 : Double(hits) / Double(lookups)
        let fields: [(String, String)] = [
            ("entries", "\(store.entryCount)"),
            ("bytes", "\(store.byteCount)"),
            ("tag_rows", "\(store.tagRowCount)"),
            ("memory_budget", "\(store.byteBudget)"),
            ("requests", "\(stats.value(.requests))"),
            ("hits", "\(hits)"),
            ("misses", "\(misses)"),
            ("stale", "\(stats.value(.stale))"),
            ("passes", "\(stats.value(.passes))"),
            ("not_modified", "\(stats.value(.notModified))"),
            ("stored", "\(stats.value(.stored))"),
            ("purges", "\(stats.value(.purges))"),
            ("purged_entries", "\(stats.value(.purgedEntries))"),
            ("origin_requests", "\(stats.value(.originRequests))"),
            ("origin_errors", "\(stats.value(.originErrors))"),
            ("origin_pauses", "\(stats.value(.originPauses))"),
            ("client_errors", "\(stats.value(.clientErrors))"),
            ("client_timeouts", "\(stats.value(.clientTimeouts))"),
            ("connections_refused", "\(stats.value(.connectionsRefused))"),
            ("hit_ratio", String(format: "%.4f", ratio)),
            (
                "redis",
                "{\"state\":\"\(redisState)\",\"shards\":\(shardsJSON),\"tag_marks\":\(tagMarksJSON),\"l2_hits\":\(stats.value(.l2Hits)),\"l2_misses\":\(stats.value(.l2Misses)),\"remote_purges\":\(stats.value(.remotePurges)),\"local_only_write_purges\":\(stats.value(.localOnlyWritePurges)),\"purge_log\":\(purgeLogJSON),\"outbox\":\(outboxJSON)}"
            ),
            ("feed", feedJSON),
            ("listings", listingsJSON),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    private var redisState: String { invalidator.tier?.state ?? "off" }

    /// A cluster's shards: each primary, its replicas, its slots and whether it answers.
    private var shardsJSON: String {
        let shards = invalidator.tier?.shards ?? []
        return "[" + shards.map { shard in
            let replicas = shard.replicas.map { "\"" + $0.jsonEscaped + "\"" }.joined(separator: ",")
            let lastError = shard.lastError.map { "\"" + $0.jsonEscaped + "\"" } ?? "null"
            return "{\"primary\":\"\(shard.primary.jsonEscaped)\",\"replicas\":[\(replicas)],\"slots\":\(shard.slots),"
                + "\"state\":\"\(shard.up ? "up" : "down")\",\"failures\":\(shard.failures),\"last_error\":\(lastError)}"
        }.joined(separator: ",") + "]"
    }

    /// The tags' purge marks this node remembers, on a cluster (null otherwise).
    private var tagMarksJSON: String {
        guard let marks = invalidator.tier?.tagMarkStatus else { return "null" }
        return "{\"known\":\(marks.known),\"reads\":\(marks.reads),\"trusted\":\(marks.trusted)}"
    }

    /// Purges this node made that have not reached Redis yet.
    private var outboxJSON: String {
        let status = invalidator.outbox.status
        return "{\"backlog\":\(status.backlog),\"delivered\":\(status.delivered),\"overflowed\":\(status.overflowed),\"overflows\":\(status.overflows)}"
    }

    /// Where this node is in the fleet's purge log, what it caught up, and its L1 drops.
    private var purgeLogJSON: String {
        guard let status = purgeLogStatus() else { return "null" }
        let cause = status.lastDropCause.map { "\"" + $0.jsonEscaped + "\"" } ?? "null"
        let generation = status.generation.map { "\"" + $0.jsonEscaped + "\"" } ?? "null"
        return "{\"generation\":\(generation),\"last_applied\":\"\(status.lastApplied)\",\"caught_up\":\(status.caughtUp),\"l1_drops\":\(status.l1Drops),"
            + "\"last_drop_cause\":\(cause),\"in_gap\":\(status.inGap)}"
    }

    private var listingsJSON: String {
        guard let status = listings?.status else { return "{\"count\":0,\"warm\":true}" }
        var fields = [
            "\"count\":\(status.count)", "\"warm\":\(status.warm)", "\"warmed\":\(status.warmed)", "\"bytes\":\(status.bytes)",
            "\"hits\":\(status.hits)", "\"refreshes\":\(status.refreshes)", "\"failures\":\(status.failures)",
            "\"in_flight\":\(status.inFlight)",
            "\"last_refresh_latency_ms\":\(String(format: "%.2f", status.lastRefreshLatencyMilliseconds))",
            "\"mean_refresh_latency_ms\":\(String(format: "%.2f", status.meanRefreshLatencyMilliseconds))",
        ]
        if let warmUp = status.warmUpMilliseconds { fields.append("\"warm_up_ms\":\(warmUp)") }
        if let ago = status.lastRefreshMillisecondsAgo { fields.append("\"last_refresh_ms_ago\":\(ago)") }
        if let error = status.lastError {
            let escaped = error.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            fields.append("\"last_error\":\"\(escaped)\"")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private var feedJSON: String {
        guard let status = feedStatus() else { return "{\"state\":\"off\",\"cursor\":0,\"lag_ms\":0}" }
        return "{\"state\":\"\(status.state)\",\"cursor\":\(status.cursor),\"lag_ms\":\(status.lagMilliseconds),\"lag_rows\":\(status.lagRows),"
            + "\"applied\":\(status.appliedRows),\"replayed\":\(status.replayedRows),\"reconnects\":\(status.reconnects),"
            + "\"full_purges\":\(status.fullPurges),\"position\":\"\(status.position)\",\"pending_transactions\":\(status.pendingTransactions)}"
    }

    private func isAuthorized(_ headers: HTTPHeaders) -> Bool {
        guard let value = headers.first(name: "authorization"), value.hasPrefix("Bearer ") else { return false }
        return Self.constantTimeEquals(Array(value.utf8.dropFirst("Bearer ".utf8.count)), token)
    }

    /// Compares without an early exit, so timing reveals nothing about how much of a guess is right.
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count)
        let length = max(lhs.count, rhs.count)
        for index in 0..<length {
            let a = index < lhs.count ? lhs[index] : 0
            let b = index < rhs.count ? rhs[index] : 0
            difference |= a ^ b
        }
        return difference == 0 && lhs.count == rhs.count
    }
}

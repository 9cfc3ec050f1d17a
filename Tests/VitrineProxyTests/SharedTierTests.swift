import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VitrineConfig
import VitrineCore
import VitrineDemoOrigin
@testable import VitrineNode
@testable import VitrineProxy
import VitrineTestSupport
@testable import VitrineRedis
import VitrineFeed

/// Two proxy nodes sharing the real Redis that `make test` starts, in front of one demo origin.
@Suite(.timeLimit(.minutes(1)))
struct SharedTierTests {
    static let nextDatabase = Atomic<Int>(0)

    /// A Redis to test on: where, the fan-out channel, and the key prefix (its own on a cluster,
    /// which has one database).
    struct TestRedis {
        var url: String
        var channel: String
        var keyPrefix = "vt"
    }

    /// A single Redis, or the local cluster `make test` starts.
    enum Backend: String, CaseIterable, Sendable {
        case single, cluster
    }

    /// A Redis URL on a database of its own (4...253; the Redis client's tests use 0 and 3), emptied,
    /// or nil (an issue in CI) without Redis. On the cluster: a key prefix and channel of its own.
    static func isolatedRedis(_ backend: Backend = .single) async throws -> TestRedis? {
        if backend == .cluster {
            guard let seeds = ProcessInfo.processInfo.environment["VITRINE_TEST_REDIS_CLUSTER"] else {
                if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("VITRINE_TEST_REDIS_CLUSTER is not set: use `make test`") }
                return nil
            }
            let unique = UUID().uuidString.prefix(8)
            return TestRedis(url: "redis-cluster://\(seeds)", channel: "vitrine-test:\(unique)", keyPrefix: "vt-\(unique)")
        }
        guard let text = ProcessInfo.processInfo.environment["VITRINE_TEST_REDIS_URL"] else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("VITRINE_TEST_REDIS_URL is not set: use `make test`") }
            return nil
        }
        var url = try RedisURL(parsing: text)
        // A database no other test of this run uses (make test's Redis has 256): a test that empties
        // its own must never empty another's.
        url.database = Self.nextDatabase.add(1, ordering: .relaxed).newValue % 250 + 4
        let connection = try await RedisConnection.connect(to: url, on: MultiThreadedEventLoopGroup.singleton.next())
        _ = try await connection.send(["FLUSHDB"]).get()
        await connection.close()
        return TestRedis(url: "redis://\(url.host):\(url.port)/\(url.database)", channel: "vitrine-test:\(UUID().uuidString)")
    }

    /// Node A with its own demo origin, node B in front of the same origin, both on one Redis.
    static func withTwoNodes(
        on backend: Backend = .single, _ body: (ProxyFixture, ProxyFixture, DemoOrigin) async throws -> Void
    ) async throws {
        try await withTwoNodes(originURL: nil, on: backend) { a, b in try await body(a, b, a.origin!) }
    }

    /// Two nodes on one Redis, in front of `originURL` (or of node A's own demo origin).
    ///
    /// - Parameters:
    ///   - linkA: a link node A reaches Redis through (direct when nil).
    ///   - linkB: the same for node B.
    ///   - redis: the Redis to use (a fresh database, or prefix on the cluster, when nil).
    static func withTwoNodes(
        originURL: String?, on backend: Backend = .single, linkA: FaultyLink? = nil, linkB: FaultyLink? = nil,
        redis given: TestRedis? = nil, _ body: (ProxyFixture, ProxyFixture) async throws -> Void
    ) async throws {
        let chosen: TestRedis?
        if let given { chosen = given } else { chosen = try await isolatedRedis(backend) }
        guard let redis = chosen else { return }
        func configure(through link: FaultyLink?) -> (inout VitrineConfiguration) -> Void {
            { configuration in
                var url = redis.url
                if let link, let parsed = try? RedisURL(parsing: redis.url) {
                    url = "redis://127.0.0.1:\(link.port)/\(parsed.database)"
                }
                var settings = RedisSettings(url: url)
                settings.channel = redis.channel
                settings.keyPrefix = redis.keyPrefix
                configuration.redis = settings
                configuration.routes.append(RouteSettings(prefix: "/echo/", origin: "catalog", defaultTTL: .seconds(60)))
            }
        }
        let a = try await ProxyFixture.start(originURL: originURL, configure: configure(through: linkA))
        let b = try await ProxyFixture.start(originURL: originURL ?? "http://127.0.0.1:\(a.originPort)", configure: configure(through: linkB))
        do {
            try await waitUntil {
                let stateA = try await a.redisState()
                let stateB = try await b.redisState()
                return stateA == "up" && stateB == "up"
            }
            try await body(a, b)
        } catch {
            await a.stop()
            await b.stop()
            throw error
        }
        await a.stop()
        await b.stop()
    }

    /// Waits for `condition`; an issue at the caller's line when it is not met in `seconds`.
    static func waitUntil(
        seconds: Int = 3, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
    ) async throws {
        for _ in 0..<(seconds * 100) {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met in \(seconds) s", sourceLocation: sourceLocation)
    }

    @Test(arguments: Backend.allCases) func nodeBAnswersFromL2WhatNodeAFetched(on backend: Backend) async throws {
        try await Self.withTwoNodes(on: backend) { a, b, origin in
            // The write to L2 happens in the background, just after A's answer; B, asking
            // meanwhile, waits on A's lease for it. A product of its own per attempt: on a machine
            // running every suite at once a Redis command can time out (250 ms), and B then
            // fetches it itself and keeps it in its L1.
            var foundInL2 = false
            for id in 42..<62 where !foundInL2 {
                let before = origin.api.requests
                #expect(try await a.get("/catalog/products/\(id)").header("X-Cache") == "MISS")
                guard try await b.get("/catalog/products/\(id)").header("Cache-Status")?.hasSuffix("detail=l2") == true else { continue }
                foundInL2 = true
                let again = try await b.get("/catalog/products/\(id)")
                #expect(again.header("Cache-Status")?.hasPrefix("vitrine; hit; ttl=") == true)
                #expect(origin.api.requests == before + 1, "one origin request for both nodes")
            }
            #expect(foundInL2, "B never answered from L2 what A fetched")
        }
    }

    @Test(arguments: Backend.allCases) func aPurgeOnAIsAMissOnB(on backend: Backend) async throws {
        try await Self.withTwoNodes(on: backend) { a, b, origin in
            _ = try await a.get("/catalog/products/7")
            try await Self.waitUntil { try await b.get("/catalog/products/7").header("X-Cache") == "HIT" }
            #expect(try await b.get("/catalog/products/7").header("X-Cache") == "HIT")
            let purge = try await a.admin("POST", "/purge", body: #"{"tags":["product:7"]}"#)
            #expect(purge.status == 200)
            // Fan-out reaches B's L1; L2 no longer serves the entry either.
            try await Self.waitUntil { try await b.get("/catalog/products/7").header("X-Cache") == "MISS" }
            #expect(origin.api.requests >= 2)
        }
    }

    @Test(arguments: Backend.allCases) func aWriteThroughOneNodeIsFreshOnTheOther(on backend: Backend) async throws {
        try await Self.withTwoNodes(on: backend) { a, b, _ in
            _ = try await b.get("/catalog/products/9")
            #expect(try await b.get("/catalog/products/9").header("X-Cache") == "HIT")
            let write = try await a.send("PATCH", "/catalog/products/9", body: #"{"price_cents": 777}"#)
            #expect(write.status == 200)
            try await Self.waitUntil { try await b.get("/catalog/products/9").text.contains(#""price_cents":777"#) }
        }
    }

    /// Read-your-writes across the fleet: once a write through A has answered, B serves the new
    /// value to the very next request (no waiting for the fan-out to arrive).
    /// A's link to Redis is slow (20 ms each way), so its purge reaches Redis, and B, well after
    /// the origin has answered the write.
    @Test func aWriteThroughOneNodeIsFreshOnTheOtherAtOnce() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port, delay: .milliseconds(20))
        defer { Task { await link.stop() } }
        try await Self.withTwoNodes(originURL: nil, linkA: link) { a, b in
            var stale: [Int] = []
            var reachedFleet = 0
            for round in 1...25 {
                let product = 100 + round
                _ = try await b.get("/catalog/products/\(product)")
                #expect(try await b.get("/catalog/products/\(product)").header("X-Cache") == "HIT")
                let write = try await a.send("PATCH", "/catalog/products/\(product)", body: #"{"price_cents": \#(5000 + round)}"#)
                #expect(write.status == 200)
                // The guarantee is for a write whose purge reached the shared tier. One that did
                // not (A's 250 ms Redis timeout passed on a machine the other suites load) says
                // so, `Vitrine-Purge: local-only`, as the README has it: not a stale read.
                guard write.header("Vitrine-Purge") == nil else { continue }
                reachedFleet += 1
                if !(try await b.get("/catalog/products/\(product)").text.contains(#""price_cents":\#(5000 + round)"#)) {
                    stale.append(product)
                }
            }
            #expect(stale == [], "old values served by B right after the write through A")
            #expect(reachedFleet >= 15, "most purges reach the whole fleet (\(reachedFleet) of 25)")
        }
    }

    /// With Redis unreachable a write still answers, saying that only this node was purged.
    @Test func aWriteThatCouldNotReachTheFleetSaysSo() async throws {
        let port = TestPorts.unused()  // nothing listens on it
        let fixture = try await ProxyFixture.start { configuration in
            configuration.redis = RedisSettings(url: "redis://127.0.0.1:\(port)/0")
        }
        do {
            let write = try await fixture.send("PATCH", "/catalog/products/3", body: #"{"price_cents": 301}"#)
            #expect(write.status == 200)
            #expect(write.header("Vitrine-Purge")?.hasPrefix("local-only") == true, "\(write.headers)")
        } catch {
            await fixture.stop()
            throw error
        }
        await fixture.stop()
    }

    /// A soft purge marks entries stale in L2 too: a node that finds one there serves it stale
    /// while one refresh runs, instead of sending the request to the origin.
    @Test(arguments: Backend.allCases) func aSoftPurgeIsStaleInL2NotGone(on backend: Backend) async throws {
        let echo = try await EchoOrigin.start()
        try await Self.withTwoNodes(originURL: "http://127.0.0.1:\(echo.port)", on: backend) { a, b in
            let target = CachingSemanticsTests.target(
                "/echo/soft", ["Cache-Control:max-age=60, stale-while-revalidate=30", "Surrogate-Key:soft-tag"], "&delay=200")
            #expect(try await a.get(target).header("X-Cache") == "MISS")
            // In L2 once another node can find it there (the store is in the background).
            try await Task.sleep(for: .milliseconds(200))
            let purge = try await Self.purgeHeardBy(b, through: a, #"{"tags":["soft-tag"],"soft":true}"#)
            #expect(purge.status == 200)
            // B has never seen it: it finds the soft-purged entry in L2 and serves it stale (not
            // from the origin: that answer would be a MISS).
            let first = try await b.get(target)
            #expect(first.status == 200)
            #expect(first.header("X-Cache") == "STALE", "\(first.header("Cache-Status") ?? "")")
            // One refresh (B's) reaches the origin, and what it fetched is fresh in L2 and on B.
            try await CachingSemanticsTests.eventually { echo.requests == 2 }
            try await CachingSemanticsTests.eventually { try await b.get(target).header("X-Cache") == "HIT" }
            // A's own copy was soft-purged too: stale, then refreshed.
            let onA = try await a.get(target)
            #expect(onA.header("X-Cache") == "STALE" || onA.header("X-Cache") == "HIT")
            #expect(echo.requests <= 3)
        }
        await echo.stop()
    }

    /// A soft purge of a key (not only of a tag) reaches L2 too.
    @Test(arguments: Backend.allCases) func aSoftKeyPurgeIsStaleInL2(on backend: Backend) async throws {
        let echo = try await EchoOrigin.start()
        try await Self.withTwoNodes(originURL: "http://127.0.0.1:\(echo.port)", on: backend) { a, b in
            let target = CachingSemanticsTests.target("/echo/soft-key", ["Cache-Control:max-age=60, stale-while-revalidate=30"], "&delay=200")
            _ = try await a.get(target)
            try await Task.sleep(for: .milliseconds(200))
            let body = #"{"keys":["\#(target)"],"soft":true}"#
            #expect(try await Self.purgeHeardBy(b, through: a, body).status == 200)
            let first = try await b.get(target)
            #expect(first.header("X-Cache") == "STALE", "\(first.header("Cache-Status") ?? "")")
        }
        await echo.stop()
    }

    /// Purges through `a`'s admin API (which answers before the tier has the purge), and returns
    /// once `b` has heard of it: the purge is then in Redis (it is published last).
    static func purgeHeardBy(_ b: ProxyFixture, through a: ProxyFixture, _ body: String) async throws -> WireResponse {
        let before = try await purgeLog(b)["last_applied"] as? String
        let answer = try await a.admin("POST", "/purge", body: body)
        try await waitUntil { try await purgeLog(b)["last_applied"] as? String != before }
        return answer
    }

    /// One object of `/stats`' `redis` object.
    static func redisStats(_ fixture: ProxyFixture, _ name: String) async throws -> [String: Any] {
        let stats = try await fixture.admin("GET", "/stats")
        let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
        return ((json?["redis"] as? [String: Any])?[name] as? [String: Any]) ?? [:]
    }

    static func purgeLog(_ fixture: ProxyFixture) async throws -> [String: Any] { try await redisStats(fixture, "purge_log") }
    static func outbox(_ fixture: ProxyFixture) async throws -> [String: Any] { try await redisStats(fixture, "outbox") }

    /// Node B's subscription is cut while A purges: once back, B reads the purge it missed from
    /// the purge log and applies it, and keeps the rest of its L1 (no flush).
    @Test func aSubscriptionGapIsCaughtUpFromThePurgeLog() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        try await Self.withTwoNodes(originURL: nil, linkB: link, redis: redis) { a, b in
            for id in [7, 8] {
                _ = try await a.get("/catalog/products/\(id)")
                try await Self.waitUntil { try await b.get("/catalog/products/\(id)").header("X-Cache") == "HIT" }
            }
            // B knows the log's generation (read when its subscription first came up).
            try await Self.waitUntil { try await Self.purgeLog(b)["generation"] is String }
            link.cut()
            try await Self.waitUntil { try await Self.purgeLog(b)["in_gap"] as? Bool == true }
            #expect(try await a.admin("POST", "/purge", body: #"{"tags":["product:7"]}"#).status == 200)
            link.restore()
            try await Self.waitUntil { (try await Self.purgeLog(b)["caught_up"] as? Int ?? 0) >= 1 }
            let log = try await Self.purgeLog(b)
            #expect(log["l1_drops"] as? Int == 0, "\(log)")
            #expect(try await b.get("/catalog/products/7").header("X-Cache") == "MISS", "the missed purge was applied")
            let kept = try await b.get("/catalog/products/8")
            #expect(kept.header("X-Cache") == "HIT")
            #expect(kept.header("Cache-Status")?.contains("detail=l2") == false, "served from B's own L1: it was kept")
            #expect(try await b.admin("GET", "/metrics").text.contains("vitrine_purge_log_caught_up_total 1"))
        }
        await link.stop()
    }

    /// A subscription whose server goes silent, the connection still open (a half-open socket
    /// never errors), is noticed by its heartbeat within seconds; once the server answers again
    /// the node subscribes anew and reads what it missed from the log.
    @Test func aSilentSubscriptionIsNoticedByItsHeartbeat() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        try await Self.withTwoNodes(originURL: nil, linkB: link, redis: redis) { a, b in
            try await Self.waitUntil { try await Self.purgeLog(b)["generation"] is String }
            link.setPaused(true)
            try await Self.waitUntil(seconds: 8) { try await Self.purgeLog(b)["in_gap"] as? Bool == true }
            #expect(try await a.admin("POST", "/purge", body: #"{"tags":["product:7"]}"#).status == 200)
            link.setPaused(false)
            // Subscribed again after the subscriber's backoff, the log read once B's commands flow.
            try await Self.waitUntil(seconds: 15) { (try await Self.purgeLog(b)["caught_up"] as? Int ?? 0) >= 1 }
            #expect(try await Self.purgeLog(b)["in_gap"] as? Bool == false)
        }
        await link.stop()
    }

    /// A subscription is live only once the server has confirmed it: a node that began trusting
    /// it when the command was merely written could miss a purge published in between.
    @Test func aSubscriptionIsLiveOnlyOnceTheServerConfirmsIt() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        var url = parsed
        url.host = "127.0.0.1"
        url.port = link.port
        // Database 0: nothing is sent before SUBSCRIBE, whose answer the paused link holds.
        url.database = 0
        link.setPaused(true)
        await #expect(throws: RedisError.self) {
            _ = try await RedisSubscription.subscribe(
                to: [redis.channel], url: url, on: MultiThreadedEventLoopGroup.singleton.next(), connectTimeout: .milliseconds(300),
                onMessage: { _, _ in })
        }
        link.setPaused(false)
        // Answered now (given time: the machine runs every suite at once).
        let subscription = try await RedisSubscription.subscribe(
            to: [redis.channel], url: url, on: MultiThreadedEventLoopGroup.singleton.next(), connectTimeout: .seconds(10),
            onMessage: { _, _ in })
        await subscription.close()
        await link.stop()
    }

    /// A partition of one node: A is cut off from Redis, a write goes through A. A serves the new
    /// value at once and says the fleet was not told; B keeps the old one meanwhile; once A's link
    /// is back, A delivers the held purge, and from that moment B serves the new value.
    @Test func aPurgeMadeWhileCutOffIsDeliveredWhenTheLinkIsBack() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        try await Self.withTwoNodes(originURL: nil, linkA: link, redis: redis) { a, b in
            _ = try await a.get("/catalog/products/11")
            try await Self.waitUntil { try await b.get("/catalog/products/11").header("X-Cache") == "HIT" }
            link.cut()
            let write = try await a.send("PATCH", "/catalog/products/11", body: #"{"price_cents": 4242}"#)
            #expect(write.status == 200)
            #expect(write.header("Vitrine-Purge")?.hasPrefix("local-only") == true, "the fleet was not told: \(write.headers)")
            #expect(try await a.get("/catalog/products/11").text.contains(#""price_cents":4242"#), "A serves the new value")
            #expect(try await Self.outbox(a)["backlog"] as? Int == 1)
            #expect(!(try await b.get("/catalog/products/11").text.contains(#""price_cents":4242"#)), "B has not been told yet")
            link.restore()
            try await Self.waitUntil { try await Self.outbox(a)["backlog"] as? Int == 0 }
            // Delivered: published before the purge script answered; B applies it as it arrives.
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await b.get("/catalog/products/11").text.contains(#""price_cents":4242"#), "B serves the new value")
            #expect(try await Self.outbox(a)["delivered"] as? Int == 1)
            let metrics = try await a.admin("GET", "/metrics").text
            #expect(metrics.contains("vitrine_purge_outbox_backlog 0"))
            #expect(metrics.contains("vitrine_purge_outbox_delivered_total 1"))
        }
        await link.stop()
    }

    /// While a node holds purges that have not reached Redis, it reads nothing from L2 (which may
    /// still hold what they purged): its misses go to the origin.
    @Test(arguments: Backend.allCases) func aNodeWithHeldPurgesDoesNotReadL2(on backend: Backend) async throws {
        try await Self.withTwoNodes(on: backend) { a, b, origin in
            // A fetches two products; once B finds the second in L2, the first is there too. (A
            // pair of its own per attempt: a timed-out command makes B fetch one itself.)
            var inL2: Int?
            for first in stride(from: 12, to: 52, by: 2) where inL2 == nil {
                _ = try await a.get("/catalog/products/\(first)")
                _ = try await a.get("/catalog/products/\(first + 1)")
                if try await b.get("/catalog/products/\(first + 1)").header("Cache-Status")?.contains("detail=l2") == true { inL2 = first }
            }
            let id = try #require(inL2, "B never answered from L2 what A fetched")
            b.node.context.invalidator.outbox.hold(PurgeRequest(tags: ["held-back"]))
            let before = origin.api.requests
            let answer = try await b.get("/catalog/products/\(id)")
            #expect(answer.header("X-Cache") == "MISS")
            #expect(answer.header("Cache-Status")?.contains("detail=l2") != true, "not from L2 while purges are held")
            #expect(origin.api.requests == before + 1)
        }
    }

    /// With `redis.write_purge_timeout` shorter than Redis takes, the write answers anyway and says so.
    @Test func aWriteWhosePurgeIsSlowSaysSo() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        try await Self.withTwoNodes(originURL: nil, linkA: link, redis: redis) { a, _ in
            link.setPaused(true)
            let write = try await a.send("PATCH", "/catalog/products/15", body: #"{"price_cents": 1515}"#)
            #expect(write.status == 200)
            #expect(write.header("Vitrine-Purge")?.hasPrefix("local-only") == true, "\(write.headers)")
            link.setPaused(false)
        }
        await link.stop()
    }

    /// A Redis that takes commands and does not answer for a while (a hung server, a stalled network):
    /// commands time out, the circuit breaker opens, requests are served from L1 and the origin
    /// without waiting on Redis, and the node recovers once Redis answers again.
    @Test func aRedisThatNeverAnswersIsTimedOutAndBrokenAround() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        try await Self.withTwoNodes(originURL: nil, linkA: link, redis: redis) { a, b in
            link.setPaused(true)
            // The first requests wait for the command timeout, then the breaker answers at once.
            for id in 20..<30 {
                let started = ContinuousClock.now
                let response = try await a.get("/catalog/products/\(id)")
                #expect(response.status == 200)
                // Generous for a loaded machine; a request waiting on Redis for good would hit the suite's limit.
                #expect(ContinuousClock.now - started < .seconds(5), "product \(id) waited on a Redis that never answers")
            }
            link.setPaused(false)
            // Answers again: A's new fetches reach L2 again, and B finds them there.
            let next = Atomic<Int>(40)
            try await Self.waitUntil {
                let id = next.add(1, ordering: .relaxed).newValue
                _ = try await a.get("/catalog/products/\(id)")
                try await Task.sleep(for: .milliseconds(20))  // A's write to L2 is in the background
                return try await b.get("/catalog/products/\(id)").header("Cache-Status")?.contains("detail=l2") == true
            }
        }

        // The client itself: a command is timed out, and after three in a row the breaker stops
        // sending to the stalled connection.
        let client = RedisClient(url: RedisURL(host: "127.0.0.1", port: link.port, database: parsed.database), group: MultiThreadedEventLoopGroup.singleton)
        client.warmUp()
        // One event loop: the client keeps a connection (and a breaker) per loop; that one's
        // connection is up before Redis stops answering.
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        try await Self.waitUntil { (try? await client.send(["PING"], on: loop).get()) != nil }
        link.setPaused(true)
        for _ in 0..<3 {
            await #expect(throws: RedisError.timeout) { _ = try await client.send(["PING"], on: loop).get() }
        }
        // Then the breaker is open: the next call is not sent to the stalled connection. It fails
        // at once (`unavailable`), or, while the client reconnects, within its connect timeout.
        let started = ContinuousClock.now
        do {
            _ = try await client.send(["PING"], on: loop).get()
            Issue.record("a call succeeded on a Redis that does not answer")
        } catch let error as RedisError {
            #expect(error == .unavailable || error == .connectionClosed, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(1))
        link.setPaused(false)
        await client.shutdown()
        await link.stop()
    }

    /// Redis loses its data (a restart without persistence) while a node's subscription is down:
    /// the purge log cannot say what was missed, so the node drops L1, and says why.
    @Test func anEmptiedRedisDropsL1Loudly() async throws {
        guard let redis = try await Self.isolatedRedis(), let parsed = try? RedisURL(parsing: redis.url) else { return }
        let link = try await FaultyLink.start(port: parsed.port)
        try await Self.withTwoNodes(originURL: nil, linkB: link, redis: redis) { a, b in
            _ = try await a.get("/catalog/products/9")
            try await Self.waitUntil { try await b.get("/catalog/products/9").header("X-Cache") == "HIT" }
            try await Self.waitUntil { try await Self.purgeLog(b)["generation"] is String }
            link.cut()
            let connection = try await RedisConnection.connect(to: parsed, on: MultiThreadedEventLoopGroup.singleton.next())
            _ = try await connection.send(["FLUSHDB"]).get()
            await connection.close()
            link.restore()
            try await Self.waitUntil { (try await Self.purgeLog(b)["l1_drops"] as? Int ?? 0) >= 1 }
            let log = try await Self.purgeLog(b)
            #expect((log["last_drop_cause"] as? String)?.contains("generation") == true, "\(log)")
            #expect(try await b.get("/catalog/products/9").header("X-Cache") == "MISS")
        }
        await link.stop()
    }

    /// The stale-set race across nodes, made deterministic: a lookup (miss, sequence s), then a
    /// purge of a tag, then the store of what was fetched before the purge: never served.
    @Test(arguments: Backend.allCases) func aResponseFetchedBeforeAPurgeIsNeverServedFromL2(on backend: Backend) async throws {
        guard let redis = try await Self.isolatedRedis(backend) else { return }
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let tier = try Self.tier(on: redis, group: group)
        tier.backend.warmUp(on: loop)
        try await Self.waitUntil { tier.backend.state == "up" }
        try await Self.exerciseTier(tier, on: loop)
        await tier.backend.shutdown()
    }

    /// On a cluster a node remembers the tag marks it reads while its purge fan-out is live. A
    /// purge it makes, or hears of, makes it read that tag's again; while the fan-out is lost it
    /// reads them on every lookup. Either way, what was fetched before a purge is never served.
    @Test func rememberedTagMarksNeverServeWhatWasFetchedBeforeAPurge() async throws {
        guard let redis = try await Self.isolatedRedis(.cluster) else { return }
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let a = try Self.tier(on: redis, group: group)
        let b = try Self.tier(on: redis, group: group)
        for tier in [a, b] { tier.backend.warmUp(on: loop) }
        try await Self.waitUntil { a.backend.state == "up" && b.backend.state == "up" }
        for tier in [a, b] { tier.fanoutIsLive() }
        func entry(_ id: Int) -> L2Entry {
            L2Entry(
                isVaryMarker: false, status: .ok, initialAge: 0, storedAt: Int(Date().timeIntervalSince1970), ttlMilliseconds: 60_000,
                retentionMilliseconds: 0, staleWhileRevalidateMilliseconds: 0, staleIfErrorMilliseconds: 0, varyFields: [],
                variantID: "", tags: ["product:\(id)", "category:2"], headers: [:], body: ByteBuffer(string: "{\"id\":\(id)}"))
        }
        func found(_ tier: RedisTier, _ key: CacheKey) async throws -> Bool {
            try await tier.lookup(key, lease: nil, on: loop).get()?.entry != nil
        }
        let five = CacheKey("/catalog/products/5")
        let six = CacheKey("/catalog/products/6")
        let stored = try #require(try await a.lookup(five, lease: nil, on: loop).get())
        a.store(five, entry: entry(5), extraTags: [sharedTierKeyTag(five)], sequence: stored.sequence, ttl: .seconds(60), on: loop)
        try await Self.waitUntil { try await found(a, five) }
        #expect(try await found(b, five))
        let reads = try #require(b.tagMarkStatus).reads
        #expect(try await found(b, five))
        #expect(b.tagMarkStatus == SharedTierTagMarks(known: 2, reads: reads, trusted: true), "both tags' marks known: none read")

        // A fetch of six begins, A purges category:2 (whose marks both know), the fetch is stored.
        let begun = try #require(try await a.lookup(six, lease: nil, on: loop).get()).sequence
        try await a.purge(PurgeRequest(tags: ["category:2"]), keys: [], implicitTags: [], on: loop).get()
        a.store(six, entry: entry(6), extraTags: [sharedTierKeyTag(six)], sequence: begun, ttl: .seconds(60), on: loop)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await !found(a, six), "the purging node reads the tag's marks again")
        #expect(try await !found(a, five))
        // B, once it hears of the purge (its subscription calls this), reads them again too.
        b.forgetMarks(of: ["category:2"])
        #expect(try await !found(b, six))
        #expect(try await !found(b, five))

        // Lost fan-out: nothing remembered, every lookup reads the marks.
        let fresh = try #require(try await a.lookup(five, lease: nil, on: loop).get())
        a.store(five, entry: entry(5), extraTags: [sharedTierKeyTag(five)], sequence: fresh.sequence, ttl: .seconds(60), on: loop)
        try await Self.waitUntil { try await found(b, five) }
        b.fanoutWasLost()
        #expect(b.tagMarkStatus?.known == 0)
        let before = try #require(b.tagMarkStatus).reads
        #expect(try await found(b, five))
        #expect(try await found(b, five))
        #expect(b.tagMarkStatus == SharedTierTagMarks(known: 0, reads: before + 4, trusted: false), "two tags read on each lookup")
        for tier in [a, b] { await tier.backend.shutdown() }
    }

    /// The wiring: a node trusts its marks once subscribed, and forgets a tag's when it hears
    /// another node purge it.
    @Test func aNodeForgetsTheMarksOfATagItHearsPurged() async throws {
        try await Self.withTwoNodes(on: .cluster) { a, b, _ in
            try await Self.waitUntil { try await Self.redisStats(b, "tag_marks")["trusted"] as? Bool == true }
            _ = try await a.get("/catalog/products/21")
            try await Self.waitUntil { try await b.get("/catalog/products/21").header("Cache-Status")?.hasSuffix("detail=l2") == true }
            #expect(try await Self.redisStats(b, "tag_marks")["known"] as? Int == 2, "product:21 and category:22")
            #expect(try await a.admin("POST", "/purge", body: #"{"tags":["product:21"]}"#).status == 200)
            try await Self.waitUntil { try await Self.redisStats(b, "tag_marks")["known"] as? Int == 1 }
        }
    }

    /// A Redis tier on `redis`, its commands with a timeout that a loaded machine running every
    /// suite at once cannot miss by accident (these tests are about what is stored, not timeouts).
    static func tier(on redis: TestRedis, group: any EventLoopGroup) throws -> RedisTier {
        let backend: RedisBackend
        if RedisClusterURL.isCluster(redis.url) {
            let url = try RedisClusterURL(parsing: redis.url)
            backend = .cluster(RedisClusterClient(seeds: url.seeds, template: url.template, group: group, commandTimeout: .seconds(2)))
        } else {
            backend = .single(RedisClient(url: try RedisURL(parsing: redis.url), group: group, commandTimeout: .seconds(2)))
        }
        return RedisTier(backend: backend, nodeID: "test", channel: redis.channel, keyPrefix: redis.keyPrefix, logger: .init(label: "test"))
    }

    /// What every tier must do: never serve what was fetched before a purge of its tags, serve
    /// what was fetched after, purge keys, and lease a missing key to one fetcher.
    static func exerciseTier(_ tier: any SharedTier, on loop: any EventLoop) async throws {
        let key = CacheKey("/catalog/products/5")
        let entry = L2Entry(
            isVaryMarker: false, status: .ok, initialAge: 0, storedAt: Int(Date().timeIntervalSince1970), ttlMilliseconds: 60_000,
            retentionMilliseconds: 0, staleWhileRevalidateMilliseconds: 0, staleIfErrorMilliseconds: 0, varyFields: [],
            variantID: "", tags: ["product:5"], headers: ["Content-Type": "application/json"], body: ByteBuffer(string: "{}"))

        let before = try #require(try await tier.lookup(key, lease: nil, on: loop).get())
        #expect(before.entry == nil)
        try await tier.purge(PurgeRequest(tags: ["product:5"]), keys: [], implicitTags: [], on: loop).get()
        tier.store(key, entry: entry, extraTags: [sharedTierKeyTag(key)], sequence: before.sequence, ttl: .seconds(60), on: loop)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await tier.lookup(key, lease: nil, on: loop).get()?.entry == nil, "stored after the purge began: never served")

        // Fetched after the purge: served; a key purge then removes it.
        let after = try #require(try await tier.lookup(key, lease: nil, on: loop).get())
        tier.store(key, entry: entry, extraTags: [sharedTierKeyTag(key)], sequence: after.sequence, ttl: .seconds(60), on: loop)
        try await Self.waitUntil { try await tier.lookup(key, lease: nil, on: loop).get()?.entry != nil }
        let found = try await tier.lookup(key, lease: nil, on: loop).get()?.entry
        #expect(found.map { String(buffer: $0.body) } == "{}")
        try await tier.purge(PurgeRequest(keys: [key.value]), keys: [key], implicitTags: [sharedTierKeyTag(key)], on: loop).get()
        #expect(try await tier.lookup(key, lease: nil, on: loop).get()?.entry == nil)
        // Soft purges (tag, key, prefix) mark it stale; a refresh stored after them is fresh again.
        for soft in [
            (PurgeRequest(tags: ["product:5"], soft: true), [String]()), (PurgeRequest(keys: [key.value], soft: true), [sharedTierKeyTag(key)]),
            (PurgeRequest(prefixes: ["/catalog/"], soft: true), []),
        ] {
            let fresh = try #require(try await tier.lookup(key, lease: nil, on: loop).get())
            tier.store(key, entry: entry, extraTags: [sharedTierKeyTag(key)], sequence: fresh.sequence, ttl: .seconds(60), on: loop)
            try await Self.waitUntil { try await tier.lookup(key, lease: nil, on: loop).get().map { $0.entry != nil && !$0.softPurged } == true }
            try await tier.purge(soft.0, keys: soft.0.keys.isEmpty ? [] : [key], implicitTags: soft.1, on: loop).get()
            try await Self.waitUntil { try await tier.lookup(key, lease: nil, on: loop).get()?.softPurged == true }
            #expect(try await tier.lookup(key, lease: nil, on: loop).get()?.entry != nil, "\(soft.0): stale, not gone")
        }
        try await tier.purge(PurgeRequest(tags: ["product:5"]), keys: [], implicitTags: [], on: loop).get()
        #expect(try await tier.lookup(key, lease: nil, on: loop).get()?.entry == nil, "a hard purge removes it")
        // A variant goes with its primary key's purge; everything goes with purge-everything.
        let variant = CacheKey(key.value + "\u{1F}accept-language=fr")
        for (purge, implicit) in [
            (PurgeRequest(keys: [key.value]), [sharedTierKeyTag(key)]), (PurgeRequest(everything: true), [sharedTierEverythingTag]),
        ] {
            for stored in [key, variant] {
                let fresh = try #require(try await tier.lookup(stored, lease: nil, on: loop).get())
                tier.store(
                    stored, entry: entry, extraTags: [sharedTierKeyTag(key), sharedTierEverythingTag], sequence: fresh.sequence,
                    ttl: .seconds(60), on: loop)
                try await Self.waitUntil { try await tier.lookup(stored, lease: nil, on: loop).get()?.entry != nil }
            }
            try await tier.purge(purge, keys: purge.keys.isEmpty ? [] : [key], implicitTags: implicit, on: loop).get()
            #expect(try await tier.lookup(key, lease: nil, on: loop).get()?.entry == nil, "\(purge)")
            #expect(try await tier.lookup(variant, lease: nil, on: loop).get()?.entry == nil, "\(purge): the variant too")
        }
        // Leases: the first to miss may fetch, the second waits, until the first stores or gives up.
        let leased = CacheKey("/catalog/products/6")
        #expect(try await tier.lookup(leased, lease: .seconds(2), on: loop).get()?.mayFetch == true)
        #expect(try await tier.lookup(leased, lease: .seconds(2), on: loop).get()?.mayFetch == false)
        #expect(try await tier.lookup(leased, lease: nil, on: loop).get()?.mayFetch == false)
        tier.releaseLease(leased, on: loop)
        try await waitUntil { try await tier.lookup(leased, lease: nil, on: loop).get()?.mayFetch == true }
    }

    @Test func theFeedCursorCanLiveInRedis() async throws {
        guard let redis = try await Self.isolatedRedis() else { return }
        let group = MultiThreadedEventLoopGroup.singleton
        // These tests are about what is stored, not about timeouts: a command timeout that a loaded
        // machine running every suite at once cannot miss by accident.
        let client = RedisClient(url: try RedisURL(parsing: redis.url), group: group, commandTimeout: .seconds(2))
        client.warmUp()
        try await Self.waitUntil { client.state == .up }
        let loop = group.next()
        let store = RedisCursorStore(backend: .single(client), channel: "vitrine_invalidations", node: "node-a:8080", loop: loop)
        #expect(try await store.load() == nil, "nothing saved yet: a first start")
        let cursor = "vitrine-cursor 2 7713704199475074089:16384:16877:3e12ca69 1061/42"
        await store.save(cursor)
        #expect(try await store.load() == cursor)
        #expect(try await RedisCursorStore(backend: .single(client), channel: "vitrine_invalidations", node: "node-b:8080", loop: loop).load() == nil)
        await client.shutdown()

        // Redis unreachable: an error (the feed retries), never "no cursor" (which would skip history).
        let port = TestPorts.unused()  // nothing listens on it
        let dead = RedisClient(url: RedisURL(host: "127.0.0.1", port: port), group: group)
        await #expect(throws: (any Error).self) {
            try await RedisCursorStore(backend: .single(dead), channel: "c", node: "n", loop: loop).load()
        }
        await dead.shutdown()
    }

    /// The cluster layout: everything one lookup script reads is in one slot, a key purge's mark
    /// is in its entries' slot (variants included), and every slot has its purge-everything mark.
    @Test func theLayoutKeepsEachLookupScriptInOneSlot() {
        let keys = RedisTierKeys(prefix: "vt", channel: "vitrine:purges")
        #expect(Set(RedisTierKeys.slotTags.map { RedisClusterSlot.slot(of: $0) }).count == RedisClusterSlot.count)
        for text in ["/catalog/products/5", "/a}b{c", "/search?q={x}", "/", "/ü/ß?x=1"] {
            let primary = CacheKey(text)
            let variant = CacheKey(text + "\u{1F}accept-language=fr")
            for key in [primary, variant] {
                let names = keys.entry(key)
                let lookup = keys.lookupNames(key)
                let all = lookup.names.map { String(buffer: $0) }
                #expect(Set(all.map { RedisClusterSlot.slot(of: $0) }) == [lookup.slot], "\(all)")
                #expect(Set(all).count == 8)
                #expect(all == [names.entry, names.meta, names.lease, names.softMark] + [names.keyMarks.hard, names.keyMarks.soft, names.everythingMarks.hard, names.everythingMarks.soft])
                #expect(keys.marksToSet(sharedTierKeyTag(primary), soft: false) == [names.keyMarks.hard])
                #expect(keys.marksToSet(sharedTierKeyTag(primary), soft: true) == [names.keyMarks.soft])
                #expect(keys.marksToSet(sharedTierEverythingTag, soft: false).contains(names.everythingMarks.hard))
            }
        }
        // Written out, for a variant with non-ASCII bytes (the names are written byte by byte).
        let variant = CacheKey("/ü?x=1\u{1F}accept-language=fr")
        let everything = RedisTierKeys.slotTags[RedisClusterSlot.slot(of: "/ü?x=1")]
        #expect(
            keys.lookupNames(variant).names.map { String(buffer: $0) } == [
                "vt:{/ü?x=1}\u{1F}accept-language=fr:e", "vt:{/ü?x=1}\u{1F}accept-language=fr:m", "vt:{/ü?x=1}\u{1F}accept-language=fr:l",
                "vt:{/ü?x=1}\u{1F}accept-language=fr:s", "vt:{/ü?x=1}:kt", "vt:{/ü?x=1}:kst", "vt:{\(everything)}:at", "vt:{\(everything)}:ast",
            ])
        // What the fleet shares is in the channel's slot, where a script can publish on it.
        let channelSlot = RedisClusterSlot.slot(of: "vitrine:purges")
        #expect([keys.sequence, keys.log, keys.generation].allSatisfy { RedisClusterSlot.slot(of: $0) == channelSlot })
        #expect(keys.marksToSet("product:5", soft: false) == [keys.tagMarks("product:5").hard])
        #expect(RedisTierKeys.sibling(ofEntry: keys.entry(CacheKey("/p")).entry, ":m") == keys.entry(CacheKey("/p")).meta)
    }

    @Test func theInProcessTierKeepsTheSameContract() async throws {
        let tier = InProcessTier(budget: 1 << 20, clock: SystemClock())
        try await Self.exerciseTier(tier, on: MultiThreadedEventLoopGroup.singleton.next())
    }

    @Test func anEntrysMetadataReadsBackItsSequenceAndTags() {
        let meta = L2Meta(parsing: "42\nproduct:1\ncatégorie:é\u{301}\n\n#k:/p?q=1")
        #expect(meta.born == 42)
        #expect(meta.tags == ["product:1", "catégorie:é\u{301}", "#k:/p?q=1"])
        #expect(L2Meta(parsing: "").born == nil)
        #expect(L2Meta(parsing: "").tags.isEmpty)
        #expect(L2Meta(parsing: "x\nt").born == nil)
        #expect(L2Meta(parsing: "-3\nt").born == nil)
        #expect(L2Meta(parsing: "99999999999999999999\nt").born == nil, "past Int64: not a sequence, no trap")
        #expect(L2Meta(parsing: "9223372036854775807\nt").born == Int64.max)
        // As a cluster lookup reads it: the tags the lookup script read left out.
        let read = L2Meta(parsing: ByteBuffer(string: "7\n#all\nproduct:1\n#k:/p\n#allx"), skippingTagsReadWithEntry: true)
        #expect(read.born == 7)
        #expect(read.tags == ["product:1", "#allx"])
        // Bytes that are not UTF-8 (anything may write to Redis) are read, not trusted.
        var invalid = ByteBuffer(string: "5\n")
        invalid.writeBytes([0xFF, 0xC3, 0x28])
        #expect(L2Meta(parsing: invalid).tags == ["\u{FFFD}\u{FFFD}("])
    }

    @Test func entriesOfAnotherVersionAreMisses() {
        var bytes = L2EntryCodec.encode(
            L2Entry(
                isVaryMarker: false, status: .ok, initialAge: 3, storedAt: 100, ttlMilliseconds: 1, retentionMilliseconds: 2,
                staleWhileRevalidateMilliseconds: 3, staleIfErrorMilliseconds: 4, varyFields: ["accept-language"], variantID: "v",
                tags: ["a", "b"], headers: ["ETag": "\"x\""], body: ByteBuffer(string: "body"), gzipBody: ByteBuffer(string: "gz")))
        let decoded = L2EntryCodec.decode(bytes)
        #expect(decoded?.gzipBody.map { String(buffer: $0) } == "gz")
        #expect(decoded?.tags == ["a", "b"])
        #expect(decoded?.headers.first(name: "etag") == "\"x\"")
        #expect(decoded.map { String(buffer: $0.body) } == "body")
        #expect(decoded?.varyFields == ["accept-language"])
        bytes.setInteger(UInt8(2), at: 4)
        #expect(L2EntryCodec.decode(bytes) == nil)
        #expect(L2EntryCodec.decode(ByteBuffer(string: "garbage")) == nil)
        var truncated = L2EntryCodec.encode(decoded!)
        truncated.moveWriterIndex(to: truncated.writerIndex - 2)
        #expect(L2EntryCodec.decode(truncated) == nil)
    }

    @Test(arguments: Backend.allCases) func oneOriginRequestAcrossTheFleet(on backend: Backend) async throws {
        let echo = try await EchoOrigin.start()
        try await Self.withTwoNodes(originURL: "http://127.0.0.1:\(echo.port)", on: backend) { a, b in
            let target = CachingSemanticsTests.target("/echo/hot", ["Cache-Control:max-age=60"], "&delay=300")
            let responses = try await withThrowingTaskGroup(of: WireResponse.self) { group in
                for index in 0..<8 { group.addTask { try await (index % 2 == 0 ? a : b).get(target) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.status == 200 })
            // A lookup Redis does not answer within its command timeout (a loaded machine running
            // every suite at once) is a miss that fetches: each may add one origin request, and
            // nothing else may.
            let l2Errors = a.node.stats.value(.l2Errors) + b.node.stats.value(.l2Errors)
            #expect(echo.requests >= 1 && echo.requests <= 1 + l2Errors, "one origin request for the whole fleet (\(l2Errors) L2 errors)")
        }
        await echo.stop()
    }

    @Test func aDeadRedisDegradesServiceNotStopsIt() async throws {
        let port = TestPorts.unused()  // nothing listens on it
        try await ProxyFixture.with(configure: { configuration in
            configuration.redis = RedisSettings(url: "redis://127.0.0.1:\(port)/0")
        }) { (fixture: ProxyFixture) async throws -> Void in
            // Each request timed alone: the whole run's time is mostly the load of the suites
            // running beside this one, a single request held up by Redis is what is looked for.
            var slowest = Duration.zero
            func timed(_ target: String) async throws -> WireResponse {
                let started = ContinuousClock.now
                defer { slowest = max(slowest, ContinuousClock.now - started) }
                return try await fixture.get(target)
            }
            #expect(try await timed("/catalog/products/1").header("X-Cache") == "MISS")
            #expect(try await timed("/catalog/products/1").header("X-Cache") == "HIT")
            for id in 2...20 { #expect(try await timed("/catalog/products/\(id)").status == 200) }
            // Commands time out after 250 ms; 3 s leaves room for a loaded CI machine, and is still
            // far from a request that waits on Redis for good.
            #expect(slowest < .seconds(3), "no request waits long on a dead Redis (slowest: \(slowest))")
            #expect(try await fixture.redisState() == "down")
            #expect(try await fixture.admin("GET", "/readyz").status == 200)
            #expect(try await fixture.admin("POST", "/purge", body: #"{"tags":["product:1"]}"#).status == 200)
            #expect(try await fixture.get("/catalog/products/1").header("X-Cache") == "MISS")
        }
    }

    @Test(arguments: Backend.allCases) func statsShowTheTier(on backend: Backend) async throws {
        try await Self.withTwoNodes(on: backend) { a, _, _ in
            _ = try await a.get("/catalog/products/1")
            let stats = try await a.admin("GET", "/stats")
            let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any]
            let redis = json["redis"] as! [String: Any]
            #expect(redis["state"] as? String == "up")
            let ready = try await a.admin("GET", "/readyz")
            #expect(ready.text.contains(#""redis":"up""#))
        }
    }
}

extension ProxyFixture {
    func redisState() async throws -> String? {
        let stats = try await admin("GET", "/stats")
        let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
        return (json?["redis"] as? [String: Any])?["state"] as? String
    }
}

/// The node-local outbox of purges that did not reach Redis: in order, bounded, and an overflow
/// becomes a purge of everything once the held ones are delivered.
@Suite struct PurgeOutboxTests {
    @Test func heldPurgesAreDeliveredInOrderAndAnOverflowPurgesEverything() {
        let outbox = PurgeOutbox(capacity: 2)
        #expect(outbox.isEmpty && outbox.next() == nil)
        #expect(outbox.hold(PurgeRequest(tags: ["a"])))
        #expect(outbox.hold(PurgeRequest(tags: ["b"])))
        #expect(!outbox.hold(PurgeRequest(tags: ["c"])), "past the capacity")
        #expect(outbox.status.overflowed && outbox.status.backlog == 2)
        #expect(outbox.next()?.tags == ["a"])
        outbox.delivered()
        #expect(outbox.next()?.tags == ["b"])
        outbox.delivered()
        // What did not fit cannot be named: the fleet is told to purge everything.
        #expect(outbox.next()?.everything == true)
        #expect(!outbox.isEmpty)
        outbox.delivered()
        #expect(outbox.isEmpty && outbox.next() == nil && outbox.status.delivered == 3)
    }
}

import Foundation
import Logging
import PostgresNIO
import Synchronization
import NIOPosix
import Testing
import VitrineConfig
import VitrineCore
import VitrineDeadline
import VitrineDemoOrigin
@testable import VitrineNode
import VitrineFeed
@testable import VitrineProxy
import VitrineRedis
import VitrineTestSupport

/// The demo on Postgres, end to end: the catalog in tables, the proxy in front, its change feed on
/// the same database. A change committed anywhere is never served stale once the feed has it;
/// a write through the proxy is never served stale at all.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PostgresDemoTests {
    static let products = 200

    struct Demo: Sendable {
        let fixture: ProxyFixture
        /// The test's own connections, for committing changes as another service would.
        let client: PostgresClient
        let url: String

        /// Commits a price change in Postgres (not through the proxy); returns its outbox id. Bounded:
        /// a query on a connection killed under it may never return.
        func commitPrice(_ price: Int, product id: Int) async throws -> Int64 {
            let client = self.client
            return try await withDeadline(.seconds(5)) {
                try await Self.commitPrice(price, product: id, client: client)
            }
        }

        private static func commitPrice(_ price: Int, product id: Int, client: PostgresClient) async throws -> Int64 {
            try await client.withConnection { connection in
                _ = try await connection.query("UPDATE products SET price_cents = \(price) WHERE id = \(id)", logger: Self.logger).collect()
                for try await outboxID in try await connection.query("SELECT currval('vitrine_outbox_id_seq')", logger: Self.logger)
                    .decode(Int64.self)
                {
                    return outboxID
                }
                throw TestFailure("no outbox row for the update")
            }
        }

        /// Waits until the proxy's change feed has applied outbox row `id`.
        func waitForFeed(_ id: Int64, limit: Duration = .seconds(30)) async throws {
            let deadline = ContinuousClock.now + limit
            while (fixture.node.feedStatus?.cursor ?? 0) < id {
                guard ContinuousClock.now < deadline else { throw TestFailure("the feed did not reach \(id) in \(limit)") }
                try await Task.sleep(for: .milliseconds(1))
            }
        }

        /// The price the proxy serves for a product.
        func servedPrice(_ id: Int) async throws -> Int? {
            let response = try await fixture.get("/catalog/products/\(id)")
            guard response.status == 200 else { return nil }
            return (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["price_cents"] as? Int
        }

        static let logger: Logger = {
            var logger = Logger(label: "postgres-demo-test")
            logger.logLevel = .critical
            return logger
        }()
    }

    final class StopFlag: Sendable {
        private let flag = Atomic<Bool>(false)
        var isSet: Bool { flag.load(ordering: .relaxed) }
        func set() { flag.store(true, ordering: .relaxed) }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The demo (catalog in a fresh database on `server`, proxy in front, feed listening) for `body`.
    static func withDemo(
        database: String, server: String? = nil, configure: @escaping (inout VitrineConfiguration) -> Void = { _ in },
        _ body: (Demo) async throws -> Void
    ) async throws {
        guard let server = server ?? TestPostgres.server else { return }
        let url = try await TestPostgres.freshDatabase(database, on: server)
        let configuration = try PostgresURL(parsing: url).clientConfiguration()
        let catalog = PostgresCatalog(configuration: configuration, logger: Demo.logger)
        let client = PostgresClient(configuration: configuration, backgroundLogger: Demo.logger)
        let pools = [Task { await catalog.run() }, Task { await client.run() }]
        defer { for pool in pools { pool.cancel() } }
        _ = try await catalog.prepare(seed: { DemoCatalog(productCount: products) })
        let cursorFile = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-\(database)-\(UUID().uuidString).cursor").path
        try await ProxyFixture.with(catalog: catalog, configure: { configuration in
            var settings = PostgresSettings(url: url)
            settings.cursorFile = cursorFile
            configuration.postgres = settings
            configure(&configuration)
        }) { fixture in
            try await SharedTierTests.waitUntil { fixture.node.feedStatus?.state == "connected" }
            try await body(Demo(fixture: fixture, client: client, url: url))
        }
    }

    @Test func aWriteThroughTheProxyAndACommitInPostgresAreBothReadBackFresh() async throws {
        try await Self.withDemo(database: "vitrine_demo_fresh") { demo in
            #expect(try await demo.fixture.get("/catalog/products/42").header("X-Cache") == "MISS")
            #expect(try await demo.fixture.get("/catalog/products/42").header("X-Cache") == "HIT")

            // Through the proxy: the row is updated, and the next read is fresh at once.
            let write = try await demo.fixture.send("PATCH", "/catalog/products/42", body: #"{"price_cents": 1111}"#)
            #expect(write.status == 200)
            #expect(try await TestPostgres.psql(demo.url, "SELECT price_cents FROM products WHERE id = 42") == "1111")
            #expect(try await demo.servedPrice(42) == 1111)
            // The row's trigger purges it once more through the feed: the refilled entry is a
            // HIT once that purge is in (read again after it, as it may have landed after the read).
            let written = try #require(Int64(try await TestPostgres.psql(demo.url, "SELECT max(id) FROM vitrine_outbox")))
            try await demo.waitForFeed(written)
            #expect(try await demo.servedPrice(42) == 1111)
            #expect(try await demo.fixture.get("/catalog/products/42").header("X-Cache") == "HIT")

            // Committed by someone else: purged through the change feed.
            let id = try await demo.commitPrice(2222, product: 42)
            try await demo.waitForFeed(id)
            #expect(try await demo.servedPrice(42) == 2222)
        }
    }

    @Test func aThousandUpdatesAndNotOneStaleRead() async throws {
        try await Self.withDemo(database: "vitrine_demo_thousand") { demo in
            let ids = Array(1...20)
            for id in ids { _ = try await demo.servedPrice(id) }
            // Readers hammer the same products meanwhile: their fetches race the purges, and a
            // response fetched before a purge must never be served after it.
            let stop = StopFlag()
            let fixture = demo.fixture
            let readers = (0..<2).map { reader in
                Task {
                    var index = reader
                    while !stop.isSet {
                        _ = try? await fixture.get("/catalog/products/\(ids[index % ids.count])")
                        index += 3
                    }
                }
            }
            var stale: [String] = []
            for update in 1...1_000 {
                let id = ids[update % ids.count]
                let price = 10_000 + update
                if update % 2 == 0 {
                    let outboxID = try await demo.commitPrice(price, product: id)
                    try await demo.waitForFeed(outboxID)
                } else {
                    let write = try await demo.fixture.send("PATCH", "/catalog/products/\(id)", body: #"{"price_cents": \#(price)}"#)
                    #expect(write.status == 200)
                }
                let served = try await demo.servedPrice(id)
                if served != price { stale.append("update \(update): product \(id) served \(served.map(String.init) ?? "nothing"), not \(price)") }
            }
            stop.set()
            for reader in readers { await reader.value }
            #expect(stale.isEmpty, "\(stale.count) stale reads: \(stale.prefix(5))")
            #expect(demo.fixture.node.feedStatus?.appliedRows ?? 0 >= 500)
        }
    }

    @Test func killedConnectionsAndAPostgresRestartLoseNoChange() async throws {
        guard TestPostgres.server != nil else { return }
        let server = try await TestPostgres.Server()
        defer { server.stop() }
        try await Self.withDemo(database: "vitrine_demo_restart", server: server.url) { demo in
            let ids = Array(1...10)
            var latest: [Int: Int] = [:]
            var lastOutboxID: Int64 = 0
            for id in ids { _ = try await demo.servedPrice(id) }
            for update in 1...300 {
                if update == 100 {
                    // The feed's connections (and the origin's) killed under them.
                    try await TestPostgres.psql(
                        server.url,
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'vitrine_demo_restart' AND pid <> pg_backend_pid()"
                    )
                }
                if update == 200 { try await server.restart() }
                let id = ids[update % ids.count]
                let price = 20_000 + update
                // Commits fail while the server is down: retried, as a service would.
                let deadline = ContinuousClock.now + .seconds(30)
                while true {
                    do {
                        lastOutboxID = try await demo.commitPrice(price, product: id)
                        break
                    } catch {
                        guard ContinuousClock.now < deadline else { throw error }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                latest[id] = price
                // Reads go on during the outage too (served from cache or answered 5xx, never stored).
                if update % 10 == 0 { _ = try? await demo.servedPrice(ids[(update + 3) % ids.count]) }
            }
            try await demo.waitForFeed(lastOutboxID)
            for id in ids {
                // The origin's pool may still be reconnecting: a 5xx is retried, a stale price is not.
                var served: Int?
                for _ in 0..<100 {
                    served = try await demo.servedPrice(id)
                    if served != nil { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(served == latest[id], "product \(id)")
            }
            #expect((demo.fixture.node.feedStatus?.reconnects ?? 0) >= 2)
        }
    }

    @Test func aRestartedProxyReplaysWhatWasCommittedWhileItWasDown() async throws {
        guard let redis = try await SharedTierTests.isolatedRedis() else { return }
        let configure: (inout VitrineConfiguration) -> Void = { configuration in
            var settings = RedisSettings(url: redis.url)
            settings.channel = redis.channel
            configuration.redis = settings
        }
        try await Self.withDemo(database: "vitrine_demo_replay", configure: configure) { demo in
            try await SharedTierTests.waitUntil { try await demo.fixture.redisState() == "up" }
            // In L1 and, shared with every node, in Redis (written just after the answer).
            #expect(try await demo.servedPrice(9) != nil)
            let redisURL = try RedisURL(parsing: redis.url)
            let connection = try await RedisConnection.connect(to: redisURL, on: MultiThreadedEventLoopGroup.singleton.next())
            try await SharedTierTests.waitUntil { try await connection.send(["KEYS", "vt:{*/catalog/products/9}:e"]).get().array?.count == 1 }
            await connection.close()
            await demo.fixture.node.stop()

            let outboxID = try await demo.commitPrice(3333, product: 9)
            // The same node back (its cursor is in Redis), in front of the same origin.
            try await ProxyFixture.with(originURL: "http://127.0.0.1:\(demo.fixture.originPort)", configure: { configuration in
                configure(&configuration)
                configuration.postgres = PostgresSettings(url: demo.url)
            }) { restarted in
                try await SharedTierTests.waitUntil { restarted.node.feedStatus?.state == "connected" }
                #expect((restarted.node.feedStatus?.cursor ?? 0) >= outboxID)
                #expect((restarted.node.feedStatus?.replayedRows ?? 0) >= 1)
                let response = try await restarted.get("/catalog/products/9")
                #expect(response.header("X-Cache") == "MISS")
                #expect(response.text.contains(#""price_cents":3333"#))
            }
        }
    }
}

import Foundation
import Synchronization
import Testing
import VitrineConfig
import VitrineCore
import VitrineDemoOrigin
@testable import VitrineProxy

/// Precomputed listings in front of the demo origin: the demo's own definition (every category ×
/// 3 sorts × 3 pages, categories read from the origin's index).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ListingsTests {
    static let sorts = ["price_asc", "price_desc", "name"]

    static func withListings(_ body: (ProxyFixture) async throws -> Void) async throws {
        try await ProxyFixture.with(configure: { configuration in
            configuration.listings = .demo
            configuration.listings.debounce = .milliseconds(100)
        }) { fixture in
            try await waitUntil(seconds: 30) { try await listingStats(fixture)["warm"] as? Bool == true }
            try await body(fixture)
        }
    }

    static func listingStats(_ fixture: ProxyFixture) async throws -> [String: Any] {
        let stats = try await fixture.admin("GET", "/stats")
        return (try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any])["listings"] as! [String: Any]
    }

    static func waitUntil(seconds: Int, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met in \(seconds) s")
    }

    static func items(_ response: WireResponse) throws -> [[String: Any]] {
        (try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any])["items"] as! [[String: Any]]
    }

    final class Readers: Sendable {
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let notHits = Mutex<[String]>([])
    }

    /// Readers requesting `targets` until stopped; every answer that is not a listing hit is kept.
    static func read(_ targets: [String], fixture: ProxyFixture, readers: Readers) -> [Task<Void, Never>] {
        (0..<2).map { offset in
            Task {
                var index = offset
                while !readers.stop.load(ordering: .relaxed) {
                    let target = targets[index % targets.count]
                    index += 1
                    guard let response = try? await fixture.get(target) else { continue }
                    readers.reads.add(1, ordering: .relaxed)
                    if response.header("Cache-Status")?.hasSuffix("detail=listing") != true {
                        readers.notHits.withLock { $0.append("\(target): \(response.header("Cache-Status") ?? "\(response.status)")") }
                    }
                }
            }
        }
    }

    @Test func afterWarmUpEveryListingIsAHitAndTheOriginIsNotAsked() async throws {
        try await Self.withListings { fixture in
            let stats = try await Self.listingStats(fixture)
            #expect(stats["count"] as? Int == 24 * 3 * 3)
            #expect(stats["warm_up_ms"] as? Int != nil)
            #expect(try await fixture.admin("GET", "/readyz").text.contains(#""listings_warm":true"#))
            let origin = try #require(fixture.origin)
            let before = origin.api.requests
            var notHits: [String] = []
            for category in 1...24 {
                for sort in Self.sorts {
                    for page in 1...3 {
                        let target = "/catalog/categories/\(category)/products?sort=\(sort)&page=\(page)"
                        let response = try await fixture.get(target)
                        if response.status != 200 || response.header("Cache-Status") != "vitrine; hit; detail=listing" {
                            notHits.append(target)
                        }
                    }
                }
            }
            #expect(notHits.isEmpty, "\(notHits.prefix(5))")
            #expect(origin.api.requests == before)
            #expect(try await Self.listingStats(fixture)["hits"] as? Int == 216)
        }
    }

    @Test func aPriceChangeShowsInItsListingsWhileReadersNeverMiss() async throws {
        try await Self.withListings { fixture in
            let target = "/catalog/categories/3/products?sort=price_asc&page=1"
            let cheapest = try #require(try Self.items(try await fixture.get(target)).first)
            let id = try #require(cheapest["id"] as? Int)
            #expect(cheapest["price_cents"] as? Int != 1)
            let readers = Readers()
            let tasks = Self.read(Self.sorts.map { "/catalog/categories/3/products?sort=\($0)&page=1" }, fixture: fixture, readers: readers)

            let write = try await fixture.send("PATCH", "/catalog/products/\(id)", body: #"{"price_cents": 1}"#)
            #expect(write.status == 200)
            let changed = ContinuousClock.now
            try await Self.waitUntil(seconds: 10) { try Self.items(try await fixture.get(target)).first?["price_cents"] as? Int == 1 }
            let elapsed = ContinuousClock.now - changed
            readers.stop.store(true, ordering: .relaxed)
            for task in tasks { await task.value }
            #expect(readers.notHits.withLock { $0 }.isEmpty, "\(readers.notHits.withLock { $0.prefix(5) })")
            #expect(readers.reads.load(ordering: .relaxed) > 0)
            // The debounce (100 ms) plus one origin round trip, with room for a busy machine.
            #expect(elapsed < .seconds(3), "\(elapsed)")
        }
    }

    @Test func aThousandPurgesCauseAHandfulOfRecomputes() async throws {
        try await Self.withListings { fixture in
            let before = try #require(try await Self.listingStats(fixture)["refreshes"] as? Int)
            let readers = Readers()
            let tasks = Self.read(
                Self.sorts.map { "/catalog/categories/5/products?sort=\($0)&page=2" }, fixture: fixture, readers: readers)
            try await WireConnection.with(port: fixture.adminPort) { connection in
                for _ in 0..<1_000 {
                    let answer = try await connection.request(
                        "POST", "/purge", headers: [("Authorization", "Bearer \(ProxyFixture.token)")],
                        body: #"{"tags": ["listing:category:5"]}"#)
                    #expect(answer.status == 200)
                }
            }
            // Let the last recomputes land.
            try await Task.sleep(for: .milliseconds(600))
            try await Self.waitUntil(seconds: 10) { try await Self.listingStats(fixture)["in_flight"] as? Int == 0 }
            readers.stop.store(true, ordering: .relaxed)
            for task in tasks { await task.value }
            let recomputes = try #require(try await Self.listingStats(fixture)["refreshes"] as? Int) - before
            // Category 5 has 9 pages: at least one recompute each, then one per page every
            // max_stale / 2 (2.5 s) while the burst lasts; far fewer than 9 × 1,000.
            #expect(recomputes >= 9 && recomputes <= 9 * 6, "\(recomputes) recomputes")
            #expect(readers.notHits.withLock { $0 }.isEmpty, "\(readers.notHits.withLock { $0.prefix(5) })")
        }
    }

    @Test func anOriginDownDuringARefreshKeepsTheOldListing() async throws {
        try await Self.withListings { fixture in
            let target = "/catalog/categories/2/products?sort=name&page=1"
            let before = try await fixture.get(target)
            await fixture.origin!.stop()
            _ = try await fixture.admin("POST", "/purge", body: #"{"tags": ["listing:category:2"]}"#)
            try await Self.waitUntil(seconds: 10) { (try await Self.listingStats(fixture)["failures"] as? Int ?? 0) > 0 }
            let after = try await fixture.get(target)
            #expect(after.header("Cache-Status") == "vitrine; hit; detail=listing")
            #expect(after.body == before.body)
            let stats = try await Self.listingStats(fixture)
            #expect((stats["last_error"] as? String)?.contains("categories/2") == true)
        }
    }

    @Test func twoNodesOnOneRedisComputeEachListingOnce() async throws {
        guard let redis = try await SharedTierTests.isolatedRedis() else { return }
        let configure: (inout VitrineConfiguration) -> Void = { configuration in
            var settings = RedisSettings(url: redis.url)
            settings.channel = redis.channel
            configuration.redis = settings
            configuration.listings = .demo
        }
        let a = try await ProxyFixture.start(configure: configure)
        let b = try await ProxyFixture.start(originURL: "http://127.0.0.1:\(a.originPort)", configure: configure)
        do {
            try await Self.waitUntil(seconds: 30) {
                let warmA = try await Self.listingStats(a)["warm"] as? Bool == true
                let warmB = try await Self.listingStats(b)["warm"] as? Bool == true
                return warmA && warmB
            }
            // 216 pages and the category index, read by each node: one origin fetch per page in
            // all (the second node takes them from Redis), not one per node.
            let origin = try #require(a.origin)
            #expect(origin.api.requests <= 216 + 2 + 10, "\(origin.api.requests) origin requests")
            #expect(try await b.get("/catalog/categories/4/products?sort=name&page=3").header("Cache-Status") == "vitrine; hit; detail=listing")
        } catch {
            await a.stop()
            await b.stop()
            throw error
        }
        await a.stop()
        await b.stop()
    }
}

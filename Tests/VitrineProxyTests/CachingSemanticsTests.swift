import Foundation
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineNode
@testable import VitrineProxy

/// RFC 9111 / RFC 5861 behaviour through real sockets: collapsing, stale serving, revalidation.
/// Expiry is driven by a `ManualClock`, never by sleeping.
@Suite(.timeLimit(.minutes(1)))
struct CachingSemanticsTests {
    static func withEcho(
        clock: ManualClock = ManualClock(), configure: @escaping (inout VitrineConfiguration) -> Void = { _ in },
        _ body: (ProxyFixture, EchoOrigin, ManualClock) async throws -> Void
    ) async throws {
        let echo = try await EchoOrigin.start()
        do {
            try await ProxyFixture.with(originURL: "http://127.0.0.1:\(echo.port)", clock: clock, configure: { configuration in
                var echoRoute = RouteSettings(prefix: "/echo/", origin: "catalog", defaultTTL: .seconds(60))
                echoRoute.forwardHeaders.append("x-echo-tag-count")  // the echo origin's tag switch
                configuration.routes.append(echoRoute)
                configure(&configuration)
            }) { fixture in
                try await body(fixture, echo, clock)
            }
            await echo.stop()
        } catch {
            await echo.stop()
            throw error
        }
    }

    static func target(_ path: String, _ headers: [String], _ extra: String = "") -> String {
        path + "?" + headers.map { "h=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }.joined(separator: "&") + extra
    }

    /// Waits until the proxy has stored `count` responses: a response is stored just after its
    /// last byte is written, so a test that moves the clock right after reading one could
    /// otherwise move it before the store, on a loaded machine.
    static func stored(_ fixture: ProxyFixture, _ count: Int = 1) async throws {
        try await eventually { fixture.node.stats.value(.stored) >= count }
    }

    /// Polls until `condition` holds (background work), failing after about two seconds.
    static func eventually(_ condition: () async throws -> Bool) async throws {
        for _ in 0..<200 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met in time")
    }

    @Test func concurrentMissesMakeOneOriginRequest() async throws {
        try await Self.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/hot", ["Cache-Control:max-age=60"], "&delay=300")
            let responses = try await withThrowingTaskGroup(of: WireResponse.self) { group in
                for _ in 0..<10 { group.addTask { try await fixture.get(target) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(echo.requests == 1)
            #expect(responses.allSatisfy { $0.status == 200 && $0.text.hasPrefix("GET /echo/hot") })
            // One fetched; the others waited for it (collapsed) or, arriving later, hit the cache.
            #expect(responses.filter { $0.header("X-Cache") == "MISS" }.count == 1)
            #expect(responses.filter { $0.header("X-Cache") == "HIT" }.count == 9)
            #expect(responses.contains { $0.header("Cache-Status")?.hasSuffix("detail=collapsed") == true })
        }
    }

    @Test func uncacheableKeysAreNotCollapsedAfterwards() async throws {
        try await Self.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/personal", ["Cache-Control:no-store"], "&delay=200")
            _ = try await fixture.get(target)
            let responses = try await withThrowingTaskGroup(of: WireResponse.self) { group in
                for _ in 0..<6 { group.addTask { try await fixture.get(target) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(echo.requests == 7)
            #expect(responses.allSatisfy { $0.header("Cache-Status") == "vitrine; fwd=miss; detail=no-store" })
            // In parallel, not one after the other.
            #expect(echo.maxConcurrent > 1)
        }
    }

    @Test func waitersOfAnUncacheableLeaderFetchThemselves() async throws {
        try await Self.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/surprise", ["Cache-Control:no-store"], "&delay=200")
            let responses = try await withThrowingTaskGroup(of: WireResponse.self) { group in
                for _ in 0..<5 { group.addTask { try await fixture.get(target) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.status == 200 && $0.text.hasPrefix("GET /echo/surprise") })
            #expect(echo.requests == 5)
        }
    }

    @Test func aWaiterThatWaitsTooLongFetchesAlone() async throws {
        try await Self.withEcho(configure: { $0.cache.collapseWait = .milliseconds(100) }) { fixture, echo, _ in
            let slow = Self.target("/echo/slow", ["Cache-Control:max-age=60"], "&delay=1500")
            async let leader = fixture.get(slow)
            // The leader's fetch is at the origin: the next request waits 100 ms, then goes alone.
            try await Self.eventually { echo.requests == 1 }
            let waiter = try await fixture.get(slow)
            #expect(waiter.status == 200)
            #expect(try await leader.status == 200)
            #expect(echo.requests == 2)
        }
    }

    /// The stale-set race (issue 5): a purge lands while the origin is still answering; what that
    /// fetch brings back must not be served afterwards.
    @Test func aPurgeDuringAFetchIsNotUndoneByIt() async throws {
        try await Self.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/racy", ["Cache-Control:max-age=60", "Surrogate-Key:product:5"], "&delay=400")
            async let slow = fixture.get(target)
            // Purge once the origin has the request (so the fetch has begun), before it answers.
            try await Self.eventually { echo.requests == 1 }
            #expect(try await fixture.admin("POST", "/purge", body: #"{"tags":["product:5"]}"#).status == 200)
            #expect(try await slow.status == 200)
            // Fetched before the purge: never served from the cache.
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
            #expect(echo.requests == 2)
        }
    }

    @Test func staleWhileRevalidateServesStaleAndRefreshesOnce() async throws {
        try await Self.withEcho { fixture, echo, clock in
            let target = Self.target("/echo/swr", ["Cache-Control:max-age=10, stale-while-revalidate=60", "ETag:\"v1\""])
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
            try await Self.stored(fixture)
            clock.advance(by: .seconds(15))
            let stale = try await fixture.get(target)
            #expect(stale.status == 200)
            #expect(stale.header("X-Cache") == "STALE")
            #expect(stale.header("Cache-Status") == "vitrine; hit; ttl=-5; detail=stale-while-revalidate")
            // One background revalidation, answered 304 by the origin, refreshes the entry.
            try await Self.eventually { echo.requests == 2 }
            try await Self.eventually { try await fixture.get(target).header("X-Cache") == "HIT" }
            #expect(echo.requests == 2)
        }
    }

    @Test func staleEntriesAreRevalidatedWithTheirValidators() async throws {
        try await Self.withEcho { fixture, echo, clock in
            let target = Self.target("/echo/validated", ["Cache-Control:max-age=10", "ETag:\"v1\""])
            let first = try await fixture.get(target)
            try await Self.stored(fixture)
            clock.advance(by: .seconds(11))
            let revalidated = try await fixture.get(target)
            #expect(revalidated.status == 200)
            #expect(revalidated.header("Cache-Status") == "vitrine; fwd=stale; fwd-status=304; stored")
            #expect(revalidated.body == first.body, "the stored body is kept")
            #expect(echo.requests == 2)
            let hit = try await fixture.get(target)
            #expect(hit.header("X-Cache") == "HIT")
            #expect(hit.header("Cache-Status") == "vitrine; hit; ttl=10")
        }
    }

    /// A 304 names the entry's tags again: its cache groups as much as its surrogate keys.
    @Test func aRevalidatedEntryKeepsItsCacheGroups() async throws {
        try await Self.withEcho { fixture, _, clock in
            let target = Self.target(
                "/echo/grouped", ["Cache-Control:max-age=10", "ETag:\"v1\"", "Surrogate-Key:product:3", #"Cache-Groups:"shoes""#])
            _ = try await fixture.get(target)
            try await Self.stored(fixture)
            clock.advance(by: .seconds(11))
            #expect(try await fixture.get(target).header("Cache-Status") == "vitrine; fwd=stale; fwd-status=304; stored")
            #expect(try await fixture.get(target).header("X-Cache") == "HIT")
            _ = try await fixture.admin("POST", "/purge", body: #"{"tags":["shoes"]}"#)
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
        }
    }

    @Test func staleIfErrorStandsInForAFailingOrigin() async throws {
        try await Self.withEcho { fixture, echo, clock in
            let target = Self.target("/echo/fragile", ["Cache-Control:max-age=10, stale-if-error=300"])
            #expect(try await fixture.get(target).status == 200)
            try await Self.stored(fixture)
            clock.advance(by: .seconds(20))
            echo.setFailing(true)
            let stale = try await fixture.get(target)
            #expect(stale.status == 200)
            #expect(stale.header("X-Cache") == "STALE")
            #expect(stale.header("Cache-Status")?.hasSuffix("detail=stale-if-error") == true)
            // Past stale-if-error, the error shows.
            clock.advance(by: .seconds(400))
            #expect(try await fixture.get(target).status == 503)
        }
    }

    @Test func routeGraceCoversOriginsThatSayNothing() async throws {
        try await Self.withEcho(configure: { configuration in
            configuration.routes[configuration.routes.count - 1].grace = .seconds(30)
        }) { fixture, echo, clock in
            let target = Self.target("/echo/plain", ["Cache-Control:max-age=10"])
            _ = try await fixture.get(target)
            try await Self.stored(fixture)
            clock.advance(by: .seconds(12))
            echo.setFailing(true)
            #expect(try await fixture.get(target).header("X-Cache") == "STALE")
        }
    }

    @Test func mustRevalidateIsNeverServedStale() async throws {
        try await Self.withEcho(configure: { configuration in
            configuration.routes[configuration.routes.count - 1].grace = .seconds(30)
        }) { fixture, echo, clock in
            let target = Self.target("/echo/strict", ["Cache-Control:max-age=10, must-revalidate"])
            _ = try await fixture.get(target)
            try await Self.stored(fixture)
            clock.advance(by: .seconds(12))
            echo.setFailing(true)
            #expect(try await fixture.get(target).status == 503)
        }
    }

    @Test func negativeResponsesAreCachedBriefly() async throws {
        try await Self.withEcho { fixture, echo, clock in
            let target = Self.target("/echo/missing", ["Cache-Control:max-age=3600"], "&status=404")
            #expect(try await fixture.get(target).status == 404)
            let again = try await fixture.get(target)
            #expect(again.status == 404)
            #expect(again.header("Cache-Status") == "vitrine; hit; ttl=10")
            clock.advance(by: .seconds(11))
            _ = try await fixture.get(target)
            #expect(echo.requests == 2)
        }
    }

    @Test func onlyIfCachedAndClientNoCache() async throws {
        try await Self.withEcho(configure: { configuration in
            configuration.routes.insert(
                {
                    var route = RouteSettings(prefix: "/echo/fresh/", origin: "catalog", defaultTTL: .seconds(60))
                    route.clientNoCache = .revalidate
                    return route
                }(), at: 0)
        }) { fixture, echo, _ in
            let missing = try await fixture.get("/echo/a", headers: [("Cache-Control", "only-if-cached")])
            #expect(missing.status == 504)
            #expect(missing.text.contains(#""error":"not_cached""#))
            #expect(echo.requests == 0)
            _ = try await fixture.get("/echo/a")
            #expect(try await fixture.get("/echo/a", headers: [("Cache-Control", "only-if-cached")]).header("X-Cache") == "HIT")
            // Default route: a browser's no-cache is answered from the cache.
            #expect(try await fixture.get("/echo/a", headers: [("Cache-Control", "no-cache")]).header("X-Cache") == "HIT")
            // A route that allows it goes to the origin.
            _ = try await fixture.get("/echo/fresh/b")
            #expect(try await fixture.get("/echo/fresh/b", headers: [("Pragma", "no-cache")]).header("X-Cache") == "MISS")
            #expect(echo.requests == 3)
        }
    }

    @Test func targetedCacheControlGovernsAndIsStripped() async throws {
        try await Self.withEcho { fixture, _, _ in
            let target = Self.target("/echo/cdn", ["Cache-Control:private, max-age=0", "CDN-Cache-Control:max-age=120", "Surrogate-Control:max-age=5"])
            let first = try await fixture.get(target)
            #expect(first.header("CDN-Cache-Control") == nil)
            #expect(first.header("Surrogate-Control") == nil)
            #expect(first.header("Cache-Control") == "private, max-age=0")
            let hit = try await fixture.get(target)
            #expect(hit.header("Cache-Status") == "vitrine; hit; ttl=120")
        }
    }

    @Test func ageIncludesTheAgeTheResponseArrivedWith() async throws {
        try await Self.withEcho { fixture, _, clock in
            let target = Self.target("/echo/aged", ["Cache-Control:max-age=100", "Age:30"])
            _ = try await fixture.get(target)
            try await Self.stored(fixture)
            clock.advance(by: .seconds(5))
            let hit = try await fixture.get(target)
            #expect(hit.header("Age") == "35")
            #expect(hit.header("Cache-Status") == "vitrine; hit; ttl=65")
        }
    }
}

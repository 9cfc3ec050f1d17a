import Testing
import VitrineCore

@Suite struct ResponseCachePolicyTests {
    /// What a case expects: stored with this TTL (seconds), or not stored for this reason.
    enum Expected: Sendable, Equatable, CustomStringConvertible {
        case ttl(Int)
        case not(String)
        var description: String {
            switch self {
            case .ttl(let seconds): return "store \(seconds)s"
            case .not(let reason): return "not stored (\(reason))"
            }
        }
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let status: Int
        let headers: [(String, String)]
        let defaultTTL: Duration?
        let expected: Expected
        var testDescription: String { "\(status) \(headers.map { "\($0.0): \($0.1)" }) default=\(String(describing: defaultTTL)) → \(expected)" }

        init(_ status: Int, _ headers: [(String, String)], default defaultTTL: Duration? = nil, _ expected: Expected) {
            self.status = status
            self.headers = headers
            self.defaultTTL = defaultTTL
            self.expected = expected
        }
    }

    static let date = "Thu, 01 Jan 2026 00:00:00 GMT"
    static let cases: [Case] = [
        Case(200, [("Cache-Control", "public, max-age=300")], .ttl(300)),
        Case(200, [("Cache-Control", "max-age=300, s-maxage=60")], .ttl(60)),
        Case(200, [("cache-control", "max-age=300"), ("Age", "100")], .ttl(200)),
        Case(200, [("Cache-Control", "max-age=300"), ("Age", "400")], .not("expired")),
        Case(200, [("Cache-Control", "no-store, max-age=300")], .not("no-store")),
        Case(200, [("Cache-Control", "private, max-age=300")], .not("private")),
        Case(200, [("Cache-Control", "max-age=300"), ("Set-Cookie", "a=b")], .not("set-cookie")),
        Case(200, [("Cache-Control", "max-age=300"), ("Vary", "*")], .not("vary-star")),
        Case(200, [("Cache-Control", "no-cache, max-age=300")], .not("no-cache")),
        Case(200, [("Cache-Control", "no-cache, max-age=300"), ("ETag", "\"x\"")], .not("no-cache")),
        Case(200, [], default: .seconds(60), .ttl(60)),
        Case(200, [], .not("no-freshness")),
        Case(201, [], default: .seconds(60), .not("no-freshness")),
        Case(404, [], default: .seconds(60), .ttl(10)),
        Case(404, [("Cache-Control", "max-age=3600")], .ttl(10)),
        Case(410, [("Cache-Control", "max-age=5")], .ttl(5)),
        // Explicit freshness makes any final status storable (RFC 9111 §3); a default TTL does not.
        Case(500, [("Cache-Control", "max-age=300")], .ttl(300)),
        Case(503, [], default: .seconds(60), .not("no-freshness")),
        Case(206, [("Cache-Control", "max-age=300")], .not("partial")),
        Case(200, [("Cache-Control", "max-age=\"120\"")], .ttl(120)),
        Case(200, [("Cache-Control", "max-age=banana")], .not("expired")),
        // Expires against Date; an invalid Expires is already expired.
        Case(200, [("Date", date), ("Expires", "Thu, 01 Jan 2026 00:02:00 GMT")], .ttl(120)),
        Case(200, [("Date", date), ("Expires", "0")], .not("expired")),
        Case(200, [("Date", date), ("Expires", "Thu, 01 Jan 2026 00:02:00 GMT"), ("Cache-Control", "max-age=5")], .ttl(5)),
        // Targeted fields take the place of Cache-Control for this cache.
        Case(200, [("Cache-Control", "private"), ("CDN-Cache-Control", "max-age=90")], .ttl(90)),
        Case(200, [("Cache-Control", "max-age=600"), ("CDN-Cache-Control", "no-store")], .not("no-store")),
        Case(200, [("Cache-Control", "max-age=600"), ("Surrogate-Control", "max-age=45")], .ttl(45)),
        Case(200, [("CDN-Cache-Control", "max-age=90"), ("Surrogate-Control", "max-age=45")], .ttl(90)),
    ]

    @Test(arguments: cases)
    func decides(_ testCase: Case) {
        let policy = ResponseCachePolicy(defaultTTL: testCase.defaultTTL)
        let decision = policy.decide(
            status: testCase.status,
            headers: testCase.headers.map { (name: $0.0, value: $0.1) },
            timing: ResponseTiming(requestTime: 1_767_225_600, responseTime: 1_767_225_600)
        )
        switch (decision, testCase.expected) {
        case (.store(let plan), .ttl(let seconds)): #expect(plan.ttl == .seconds(seconds))
        case (.doNotStore(let reason), .not(let expected)): #expect(reason == expected)
        default: Issue.record("got \(decision)")
        }
    }

    @Test func ageIsCorrectedForDateAndTimeInFlight() {
        let policy = ResponseCachePolicy(defaultTTL: nil)
        // Sent at t, answered at t+2 with Age 10 and a Date 30 s in the past: the apparent age wins.
        let timing = ResponseTiming(requestTime: 1_767_225_630, responseTime: 1_767_225_632)
        let plan = policy.decide(
            status: 200, headers: [("Cache-Control", "max-age=100"), ("Age", "10"), ("Date", "Thu, 01 Jan 2026 00:00:02 GMT")],
            timing: timing
        ).plan
        #expect(plan?.initialAge == 30)
        #expect(plan?.ttl == .seconds(70))
        // With a recent Date, Age plus the response delay wins.
        let recent = policy.decide(
            status: 200, headers: [("Cache-Control", "max-age=100"), ("Age", "10"), ("Date", "Thu, 01 Jan 2026 00:00:32 GMT")],
            timing: timing
        ).plan
        #expect(recent?.initialAge == 12)
    }

    @Test func staleWindowsComeFromDirectivesOrTheRouteGrace() {
        let policy = ResponseCachePolicy(defaultTTL: .seconds(60), grace: .seconds(30), keep: .seconds(600))
        let explicit = policy.decide(status: 200, headers: [("Cache-Control", "max-age=10, stale-while-revalidate=5, stale-if-error=300")]).plan!
        #expect(explicit.staleWhileRevalidate == .seconds(5))
        #expect(explicit.staleIfError == .seconds(300))
        #expect(explicit.keep == .zero)
        let defaulted = policy.decide(status: 200, headers: [("Cache-Control", "max-age=10"), ("ETag", "\"v\"")]).plan!
        #expect(defaulted.staleWhileRevalidate == .seconds(30))
        #expect(defaulted.staleIfError == .seconds(30))
        #expect(defaulted.keep == .seconds(600))
        let strict = policy.decide(status: 200, headers: [("Cache-Control", "max-age=10, must-revalidate, stale-if-error=300")]).plan!
        #expect(strict.mustRevalidate)
        #expect(strict.retention == .zero)
        #expect(policy.decide(status: 200, headers: [("Cache-Control", "s-maxage=10")]).plan!.mustRevalidate)
        // no-cache with validators: kept, fresh for 0, to be revalidated on every use.
        let revalidated = policy.decide(status: 200, headers: [("Cache-Control", "no-cache, max-age=60"), ("ETag", "\"v\"")]).plan!
        #expect(revalidated.ttl == .zero)
        #expect(revalidated.keep == .seconds(600))
    }

    @Test func varyFieldsAreCollected() {
        let plan = ResponseCachePolicy(defaultTTL: nil).decide(
            status: 200, headers: [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding, Accept-Language"), ("Vary", "accept-encoding")]
        ).plan
        #expect(plan?.varyFields == ["accept-encoding", "accept-language"])
    }

    @Test func httpDatesInAllThreeForms() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("yesterday") == nil)
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(1_767_225_600) == "Thu, 01 Jan 2026 00:00:00 GMT")
    }

    @Test func requestDirectives() {
        #expect(RequestCacheDirectives(cacheControl: ["no-cache"], pragma: []).wantsValidation)
        #expect(RequestCacheDirectives(cacheControl: ["max-age=0"], pragma: []).wantsValidation)
        #expect(RequestCacheDirectives(cacheControl: [], pragma: ["no-cache"]).wantsValidation)
        #expect(!RequestCacheDirectives(cacheControl: ["max-age=60"], pragma: ["no-cache"]).wantsValidation)
        #expect(RequestCacheDirectives(cacheControl: ["only-if-cached"], pragma: []).onlyIfCached)
    }

    @Test func collapsingTableLeadsWaitsAndRemembersPasses() {
        var table = CollapsingTable<Int>()
        let key = CacheKey("/hot")
        #expect(table.join(key, waiter: 1, now: 0) == .lead)
        #expect(table.join(key, waiter: 2, now: 0) == .wait)
        #expect(table.join(key, waiter: 3, now: 0) == .wait)
        let left = table.leave(key) { $0 == 2 }
        #expect(left)
        #expect(table.finish(key) == [3])
        #expect(table.inFlight == 0)
        table.markPass(key, until: 100, now: 0)
        #expect(table.join(key, waiter: 4, now: 50) == .pass)
        #expect(table.join(key, waiter: 5, now: 100) == .lead)
        let secondLead = table.lead(key)
        #expect(!secondLead)
        _ = table.finish(key)
        let thirdLead = table.lead(key)
        #expect(thirdLead)
        // Expired pass marks are forgotten once there are many: they never pile up.
        for index in 0..<50_000 { table.markPass(CacheKey("/u/\(index)"), until: 1_000 + UInt64(index), now: 1_000 + UInt64(index)) }
        #expect(table.passCount <= 10_000)
    }

    @Test func cacheControlReadsEveryDirective() {
        let directives = CacheControl(parsing: [
            "public, max-age=10", "s-maxage=20, must-revalidate, proxy-revalidate", "stale-while-revalidate=30, stale-if-error=40",
        ])
        #expect(directives.isPublic)
        #expect(directives.maxAge == 10)
        #expect(directives.sharedMaxAge == 20)
        #expect(directives.mustRevalidate)
        #expect(directives.proxyRevalidate)
        #expect(directives.staleWhileRevalidate == 30)
        #expect(directives.staleIfError == 40)
        #expect(!directives.noStore && !directives.isPrivate && !directives.noCache)
    }

    @Test func surrogateKeysSplitOnSpacesAndCommas() {
        #expect(SurrogateKeys.parse(["product:1 product:2", "category:3,product:1", "  ,x"]) == ["product:1", "product:2", "category:3", "x"])
        #expect(SurrogateKeys.isTagHeader("Surrogate-Key"))
        #expect(SurrogateKeys.isTagHeader("xkey"))
        #expect(SurrogateKeys.isTagHeader("CACHE-TAG"))
        #expect(!SurrogateKeys.isTagHeader("cache-control"))
    }

    @Test func caseInsensitiveHeaderNames() {
        #expect("Content-Length".caseInsensitiveEquals("content-length"))
        #expect(!"content-length".caseInsensitiveEquals("content-lengt"))
        #expect(!"a-b".caseInsensitiveEquals("a\rb"))
    }
}

import Testing
import VitrineCore

@Suite struct ResponseCachePolicyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let status: Int
        let headers: [(String, String)]
        let defaultTTL: Duration?
        let authorization: Bool
        let expected: StorageDecision
        var testDescription: String { "\(status) \(headers) default=\(String(describing: defaultTTL)) → \(expected)" }

        init(_ status: Int, _ headers: [(String, String)], default defaultTTL: Duration? = nil, auth: Bool = false, _ expected: StorageDecision) {
            self.status = status
            self.headers = headers
            self.defaultTTL = defaultTTL
            self.authorization = auth
            self.expected = expected
        }
    }

    static let cases: [Case] = [
        Case(200, [("Cache-Control", "public, max-age=300")], .store(ttl: .seconds(300), grace: .zero)),
        Case(200, [("Cache-Control", "max-age=300, s-maxage=60")], .store(ttl: .seconds(60), grace: .zero)),
        Case(200, [("cache-control", "max-age=300"), ("Age", "100")], .store(ttl: .seconds(200), grace: .zero)),
        Case(200, [("Cache-Control", "max-age=300"), ("Age", "400")], .doNotStore(reason: "expired")),
        Case(200, [("Cache-Control", "no-store, max-age=300")], .doNotStore(reason: "no-store")),
        Case(200, [("Cache-Control", "private, max-age=300")], .doNotStore(reason: "private")),
        Case(200, [("Cache-Control", "max-age=300"), ("Set-Cookie", "a=b")], .doNotStore(reason: "set-cookie")),
        Case(200, [("Cache-Control", "max-age=300"), ("Vary", "Cookie")], .doNotStore(reason: "vary")),
        Case(200, [("Cache-Control", "no-cache, max-age=300")], .doNotStore(reason: "no-cache")),
        Case(200, [], default: .seconds(60), .store(ttl: .seconds(60), grace: .zero)),
        Case(200, [], .doNotStore(reason: "no-freshness")),
        Case(201, [], default: .seconds(60), .doNotStore(reason: "no-freshness")),
        Case(404, [], default: .seconds(60), .store(ttl: .seconds(60), grace: .zero)),
        Case(500, [("Cache-Control", "max-age=300")], .doNotStore(reason: "status")),
        Case(503, [], default: .seconds(60), .doNotStore(reason: "status")),
        Case(206, [("Cache-Control", "max-age=300")], .doNotStore(reason: "partial")),
        Case(200, [("Cache-Control", "max-age=300")], auth: true, .doNotStore(reason: "authorization")),
        Case(200, [("Cache-Control", "public, max-age=300")], auth: true, .store(ttl: .seconds(300), grace: .zero)),
        Case(200, [("Cache-Control", "s-maxage=30")], auth: true, .store(ttl: .seconds(30), grace: .zero)),
        Case(200, [("Cache-Control", "max-age=\"120\"")], .store(ttl: .seconds(120), grace: .zero)),
        Case(200, [("Cache-Control", "max-age=banana")], .doNotStore(reason: "expired")),
    ]

    @Test(arguments: cases)
    func decides(_ testCase: Case) {
        let policy = ResponseCachePolicy(defaultTTL: testCase.defaultTTL)
        let decision = policy.decide(
            status: testCase.status,
            headers: testCase.headers.map { (name: $0.0, value: $0.1) },
            requestHadAuthorization: testCase.authorization
        )
        #expect(decision == testCase.expected)
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

import NIOPosix
import NIOHTTP1
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

/// RFC 9111 through the proxy where the request or the framing matters: unsafe methods
/// (unknown ones too) invalidate, a request's `no-store` is honoured, an error with explicit
/// freshness is served while fresh.
@Suite(.timeLimit(.minutes(1)))
struct CachingToTheLetterEndToEndTests {
    static let cached = ["Cache-Control:max-age=60"]

    /// §4.4: a 2xx/3xx answer to any unsafe method invalidates the target; safe ones do not.
    /// (The echo origin reads the methods llhttp knows; an unknown one is classified below.)
    @Test(arguments: [("MKCOL", true), ("LINK", true), ("DELETE", true), ("OPTIONS", false), ("PROPFIND", false)])
    func unsafeMethodsInvalidate(_ method: String, _ invalidates: Bool) async throws {
        try await HeaderHandlingTests.withEcho { fixture, _ in
            let target = CachingSemanticsTests.target("/echo/unsafe-\(method)", Self.cached)
            _ = try await fixture.get(target)
            #expect(try await fixture.get(target).header("X-Cache") == "HIT")
            let answer = try await fixture.send(method, target)
            #expect(answer.status == 200)
            #expect(answer.header("X-Cache") == "PASS")
            let after = try await fixture.get(target).header("X-Cache")
            #expect(after == (invalidates ? "MISS" : "HIT"), "\(method)")
        }
    }

    @Test func unknownMethodsAreUnsafe() throws {
        let configuration = VitrineConfiguration.singleOrigin(OriginURL(parsing: "http://127.0.0.1:9")!)
        let route = try #require(Router(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton).route(for: "/x"))
        func classify(_ method: HTTPMethod) -> RequestClass {
            RequestClassifier.classify(HTTPRequestHead(version: .http1_1, method: method, uri: "/x"), route: route)
        }
        #expect(classify(.RAW(value: "FOO")) == .write)
        #expect(classify(.RAW(value: "QUERY")) == .pass(fwd: "method", detail: "method"))
        #expect(classify(.MOVE) == .write)
        #expect(classify(.OPTIONS) == .pass(fwd: "method", detail: "method"))
    }

    /// §5.2.1.5: what a request with `Cache-Control: no-store` fetches is not stored.
    @Test func aRequestsNoStoreKeepsItsResponseOut() async throws {
        try await HeaderHandlingTests.withEcho { fixture, echo in
            let target = CachingSemanticsTests.target("/echo/request-no-store", Self.cached)
            let first = try await fixture.get(target, headers: [("Cache-Control", "no-store")])
            #expect(first.header("Cache-Status")?.contains("detail=request-no-store") == true, "\(first.header("Cache-Status") ?? "")")
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
            #expect(echo.requests == 2)
        }
    }

    /// §3: a 503 with `max-age` is stored and served while fresh.
    @Test func anErrorWithExplicitFreshnessIsServedWhileFresh() async throws {
        try await HeaderHandlingTests.withEcho { fixture, echo in
            let target = CachingSemanticsTests.target("/echo/error-fresh", ["Cache-Control:max-age=60"], "&status=503")
            #expect(try await fixture.get(target).status == 503)
            let again = try await fixture.get(target)
            #expect(again.status == 503)
            #expect(again.header("X-Cache") == "HIT")
            #expect(echo.requests == 1)
        }
    }

    /// A request with `Authorization` is passed whatever the response says (`public` included),
    /// and what it fetched is never served to anyone else (README, "never stored").
    @Test func aRequestWithAuthorizationIsPassedAndNothingIsShared() async throws {
        try await HeaderHandlingTests.withEcho { fixture, echo in
            let target = CachingSemanticsTests.target("/echo/authorized", ["Cache-Control:public, s-maxage=60, must-revalidate"])
            let authorized = try await fixture.get(target, headers: [("Authorization", "Bearer user-1")])
            #expect(authorized.header("X-Cache") == "PASS")
            #expect(authorized.header("Cache-Status")?.contains("detail=authorization") == true)
            #expect(try await fixture.get(target).header("X-Cache") == "MISS", "nothing of the authorized answer was stored")
            #expect(echo.requests == 2)
        }
    }

    static func waitFor(_ client: RawClient, _ text: String) async throws {
        for _ in 0..<500 where !client.received.contains(text) { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// RFC 9110 §15.2: a 103 Early Hints from the origin reaches an HTTP/1.1 client before the
    /// answer (its hop-by-hop fields removed), and is never stored: a hit has none, and an
    /// HTTP/1.0 client is never sent one.
    @Test func earlyHintsAreRelayedNotStored() async throws {
        try await HeaderHandlingTests.withEcho { fixture, _ in
            let target = CachingSemanticsTests.target("/echo/hints", Self.cached, "&hints=1")
            let client = try await RawClient.connect(port: fixture.proxyPort)
            client.send("GET \(target) HTTP/1.1\r\nHost: shop.test\r\n\r\n")
            try await Self.waitFor(client, "X-Cache: MISS")
            let first = client.received
            #expect(first.hasPrefix("HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\n\r\nHTTP/1.1 200 OK\r\n"), "\(first)")
            #expect(!first.contains("X-Hop"), "hop-by-hop fields of the interim response are removed")
            client.send("GET \(target) HTTP/1.1\r\nHost: shop.test\r\n\r\n")
            try await Self.waitFor(client, "X-Cache: HIT")
            let hit = String(client.received.dropFirst(first.count))
            #expect(hit.hasPrefix("HTTP/1.1 200 OK\r\n"), "a hit sends no interim response: \(hit)")
            client.close()

            let old = try await RawClient.connect(port: fixture.proxyPort)
            let uncached = CachingSemanticsTests.target("/echo/hints-10", Self.cached, "&hints=1")
            old.send("GET \(uncached) HTTP/1.0\r\nHost: shop.test\r\n\r\n")
            try await old.closed.get()
            #expect(old.received.hasPrefix("HTTP/1.1 200 OK\r\n"), "no 1xx to an HTTP/1.0 client: \(old.received.prefix(60))")
        }
    }

    /// RFC 9110 §10.1.1: a client that sends `Expect: 100-continue` and waits gets its go-ahead,
    /// sends its body, and gets the origin's answer; the origin is not asked to expect anything.
    @Test func expect100ContinueIsAnswered() async throws {
        try await HeaderHandlingTests.withEcho { fixture, _ in
            let client = try await RawClient.connect(port: fixture.proxyPort)
            client.send("POST /echo/upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            try await Self.waitFor(client, "\r\n\r\n")
            #expect(client.received == "HTTP/1.1 100 Continue\r\n\r\n", "the go-ahead, and nothing else yet")
            client.send("hello")
            try await Self.waitFor(client, "hello")
            let answer = client.received.dropFirst("HTTP/1.1 100 Continue\r\n\r\n".count)
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")
            #expect(answer.contains("POST /echo/upload"))
            #expect(!answer.lowercased().contains("expect:"), "the origin saw no Expect")
            client.close()
        }
    }

    /// RFC 9110 §14: a single range of a stored complete response is answered 206 from the cache
    /// (the origin is not asked); one past the end is 416; several are answered with the whole; an
    /// `If-Range` that does not name the stored representation gets the whole.
    @Test func rangesAreAnsweredFromTheCache() async throws {
        try await HeaderHandlingTests.withEcho { fixture, echo in
            let target = CachingSemanticsTests.target("/echo/range", ["Cache-Control:max-age=60", "ETag:\"v1\""], "&pad=100")
            // A miss with a Range: the whole is fetched, stored and sent.
            let miss = try await fixture.get(target, headers: [("Range", "bytes=0-9")])
            #expect(miss.status == 200)
            let whole = miss.body
            #expect(whole.count > 100)
            let first = try await fixture.get(target, headers: [("Range", "bytes=0-9")])
            #expect(first.status == 206)
            #expect(first.header("Content-Range") == "bytes 0-9/\(whole.count)")
            #expect(first.body == Array(whole.prefix(10)))
            #expect(first.header("X-Cache") == "HIT")
            #expect(first.header("ETag") == "\"v1\"")
            let suffix = try await fixture.get(target, headers: [("Range", "bytes=-5")])
            #expect(suffix.status == 206 && suffix.body == Array(whole.suffix(5)))
            let open = try await fixture.get(target, headers: [("Range", "bytes=\(whole.count - 3)-")])
            #expect(open.status == 206 && open.body == Array(whole.suffix(3)))
            let past = try await fixture.get(target, headers: [("Range", "bytes=\(whole.count)-")])
            #expect(past.status == 416)
            #expect(past.header("Content-Range") == "bytes */\(whole.count)")
            let several = try await fixture.get(target, headers: [("Range", "bytes=0-1, 4-5")])
            #expect(several.status == 200 && several.body == whole)
            let otherVersion = try await fixture.get(target, headers: [("Range", "bytes=0-9"), ("If-Range", "\"v0\"")])
            #expect(otherVersion.status == 200 && otherVersion.body == whole)
            let sameVersion = try await fixture.get(target, headers: [("Range", "bytes=0-9"), ("If-Range", "\"v1\"")])
            #expect(sameVersion.status == 206)
            #expect(echo.requests == 1, "every range came from the cache")
        }
    }

    /// §3.2 / §4.3.4: a 304 updates the stored fields it carries and keeps those it does not.
    @Test func aRevalidationKeepsTheStoredFieldsThe304DoesNotCarry() async throws {
        try await HeaderHandlingTests.withEcho { fixture, echo in
            let target =
                CachingSemanticsTests.target("/echo/update", ["Cache-Control:max-age=1", "ETag:\"v1\"", "X-Both:from-origin"])
                + "&full=X-Only-Full:kept"
            let first = try await fixture.get(target)
            #expect(first.header("X-Only-Full") == "kept")
            try await Task.sleep(for: .milliseconds(1_100))
            let revalidated = try await fixture.get(target)
            #expect(revalidated.header("Cache-Status")?.contains("fwd-status=304") == true, "\(revalidated.header("Cache-Status") ?? "")")
            #expect(revalidated.header("X-Only-Full") == "kept", "a field the 304 does not carry is kept")
            #expect(revalidated.header("X-Both") == "from-origin")
            #expect(echo.requests == 2)
        }
    }

    /// A browser's analytics and consent cookies do not make a catalog read personal: with the
    /// demo's routes a request carrying only those is a HIT on its second read, and none of them
    /// reaches the origin; any other cookie passes the request, cookies and all.
    @Test func analyticsCookiesAreIgnoredOnTheDemoRoutes() async throws {
        try await ProxyFixture.with { fixture in
            let browser = [("Cookie", "_ga=GA1.2.111.222; _gid=GA1.2.333.444; OptanonConsent=isGpcEnabled=0&groups=C0001")]
            let first = try await fixture.get("/catalog/products/77", headers: browser)
            #expect(first.header("X-Cache") == "MISS")
            #expect(try await fixture.get("/catalog/products/77", headers: browser).header("X-Cache") == "HIT")
            let signedIn = try await fixture.get("/catalog/products/77", headers: [("Cookie", "_ga=1; session=abc")])
            #expect(signedIn.header("X-Cache") == "PASS")
            #expect(signedIn.header("Cache-Status")?.contains("detail=cookie") == true)
        }
        try await HeaderHandlingTests.withEcho(configure: { configuration in
            configuration.routes[configuration.routes.count - 1].cookies = .ignore(["_ga*"])
        }) { fixture, _ in
            let target = CachingSemanticsTests.target("/echo/cookies", Self.cached)
            let fetched = try await fixture.get(target, headers: [("Cookie", "_ga=secret-analytics-id")])
            #expect(fetched.header("X-Cache") == "MISS")
            #expect(!fetched.text.contains("secret-analytics-id"), "the origin never saw the ignored cookie")
            let passed = try await fixture.get(target, headers: [("Cookie", "session=private-session")])
            #expect(passed.header("X-Cache") == "PASS")
            #expect(passed.text.contains("cookie: session=private-session"), "a passed request keeps its cookies")
        }
    }

    /// `strip_set_cookie`: an answer that may be stored loses `Set-Cookie` and is stored; without
    /// it, such an answer is never stored.
    @Test func setCookieIsStrippedOnlyWhereTheRouteSaysSo() async throws {
        let target = CachingSemanticsTests.target("/echo/set-cookie", ["Cache-Control:max-age=60", "Set-Cookie:visitor=1"])
        try await HeaderHandlingTests.withEcho { fixture, _ in
            let first = try await fixture.get(target)
            #expect(first.header("Set-Cookie") == "visitor=1")
            #expect(try await fixture.get(target).header("X-Cache") == "MISS", "not stored: it sets a cookie")
        }
        try await HeaderHandlingTests.withEcho(configure: { configuration in
            configuration.routes[configuration.routes.count - 1].stripSetCookie = true
        }) { fixture, _ in
            let first = try await fixture.get(target)
            #expect(first.header("Set-Cookie") == nil)
            let second = try await fixture.get(target)
            #expect(second.header("X-Cache") == "HIT")
            #expect(second.header("Set-Cookie") == nil)
        }
    }
}

/// What `Vary` may make of one URL: a cap on variants, and `Accept-Language` reduced to the
/// languages a store sells (in the key and in what the origin is sent).
@Suite(.timeLimit(.minutes(1)))
struct VaryBoundsTests {
    @Test func variantsPastTheCapAreServedNotStored() async throws {
        try await HeaderHandlingTests.withEcho(configure: { configuration in
            configuration.routes[configuration.routes.count - 1].vary.maxVariants = 3
        }) { fixture, echo in
            let target = CachingSemanticsTests.target("/echo/by-agent", ["Cache-Control:max-age=60", "Vary:User-Agent"])
            for agent in 1...3 {
                _ = try await fixture.get(target, headers: [("User-Agent", "agent-\(agent)")])
                #expect(try await fixture.get(target, headers: [("User-Agent", "agent-\(agent)")]).header("X-Cache") == "HIT")
            }
            let fourth = try await fixture.get(target, headers: [("User-Agent", "agent-4")])
            #expect(fourth.status == 200)
            #expect(fourth.header("Cache-Status")?.contains("detail=too-many-variants") == true, "\(fourth.header("Cache-Status") ?? "")")
            #expect(try await fixture.get(target, headers: [("User-Agent", "agent-4")]).header("X-Cache") == "MISS")
            #expect(try await fixture.get(target, headers: [("User-Agent", "agent-1")]).header("X-Cache") == "HIT")
            #expect(echo.requests == 5)
        }
    }

    @Test func acceptLanguageIsReducedToTheLanguagesSold() async throws {
        try await HeaderHandlingTests.withEcho(configure: { configuration in
            configuration.routes[configuration.routes.count - 1].vary.languages = ["en", "fr"]
        }) { fixture, echo in
            let target = CachingSemanticsTests.target("/echo/by-language", ["Cache-Control:max-age=60", "Vary:Accept-Language"])
            let canadian = try await fixture.get(target, headers: [("Accept-Language", "fr-CA,fr;q=0.9,en;q=0.8")])
            #expect(canadian.text.contains("accept-language: fr\n"), "the origin is sent the language the key has")
            #expect(try await fixture.get(target, headers: [("Accept-Language", "fr")]).header("X-Cache") == "HIT")
            #expect(try await fixture.get(target, headers: [("Accept-Language", "de, en;q=0.5")]).header("X-Cache") == "MISS")
            #expect(try await fixture.get(target, headers: [("Accept-Language", "en-GB")]).header("X-Cache") == "HIT")
            #expect(echo.requests == 2)
        }
    }
}

@Suite struct VariantLimiterTests {
    @Test func theCapCountsVariantsWithinTheirLifetime() {
        let limiter = VariantLimiter()
        let key = CacheKey("/p")
        #expect(limiter.admit(key, variant: "a", limit: 2, window: .seconds(10), now: 0))
        #expect(limiter.admit(key, variant: "b", limit: 2, window: .seconds(10), now: 0))
        #expect(!limiter.admit(key, variant: "c", limit: 2, window: .seconds(10), now: 1))
        #expect(limiter.admit(key, variant: "a", limit: 2, window: .seconds(10), now: 2), "a variant already stored")
        // Once the others have expired there is room again.
        #expect(limiter.admit(key, variant: "c", limit: 2, window: .seconds(10), now: 11_000_000_000))
        #expect(limiter.admit(CacheKey("/q"), variant: "z", limit: 1, window: .seconds(10), now: 0))
    }
}

/// `Cache-Status` (RFC 9211) is a Structured Field list: every one the proxy sends parses as one,
/// an upstream cache's valid entries come first, and invalid ones are dropped.
@Suite(.timeLimit(.minutes(1)))
struct CacheStatusFieldTests {
    @Test func everyCacheStatusIsAStructuredList() async throws {
        try await HeaderHandlingTests.withEcho { fixture, _ in
            var seen: [[String]] = []
            let stored = CachingSemanticsTests.target("/echo/status", ["Cache-Control:max-age=60"])
            for (target, headers) in [
                (stored, [(String, String)]()), (stored, []), (stored, [("Authorization", "Bearer x")]),
                (stored, [("Cache-Control", "no-store")]), (CachingSemanticsTests.target("/echo/private", ["Cache-Control:private"]), []),
                (CachingSemanticsTests.target("/echo/error", ["Cache-Control:max-age=5"], "&status=503"), []),
                (stored, [("Range", "bytes=0-1")]),
            ] {
                seen.append(try await fixture.get(target, headers: headers).headers("Cache-Status"))
            }
            for lines in seen {
                #expect(!lines.isEmpty && CacheStatusField.isValid(lines), "\(lines)")
            }

            let upstream = CachingSemanticsTests.target("/echo/upstream", ["Cache-Control:max-age=60", "Cache-Status:OriginCache; hit"])
            let kept = try await fixture.get(upstream).headers("Cache-Status")
            #expect(kept.first == "OriginCache; hit" && kept.count == 2, "\(kept)")
            let broken = CachingSemanticsTests.target("/echo/broken", ["Cache-Control:max-age=60", "Cache-Status:((bad"])
            let dropped = try await fixture.get(broken).headers("Cache-Status")
            #expect(dropped.count == 1 && dropped[0].hasPrefix("vitrine;"), "\(dropped)")
        }
    }
}

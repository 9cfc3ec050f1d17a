import Testing
import VitrineCore

/// RFC 9111 where a lenient reading would serve what must not be served: `Age` and `Expires`
/// read strictly, explicit freshness for any status (never reused stale when an error),
/// `must-understand`, and a request's `no-store`.
@Suite struct CachingToTheLetterTests {
    static let now = 1_767_225_600  // Thu, 01 Jan 2026 00:00:00 GMT
    static let date = "Thu, 01 Jan 2026 00:00:00 GMT"
    static let timing = ResponseTiming(requestTime: now, responseTime: now)

    static func decide(
        _ status: Int, _ headers: [(String, String)], requestNoStore: Bool = false, grace: Duration = .zero
    ) -> StorageDecision {
        ResponseCachePolicy(defaultTTL: nil, grace: grace, keep: .seconds(600)).decide(
            status: status, headers: headers.map { (name: $0.0, value: $0.1) }, requestNoStore: requestNoStore, timing: timing)
    }

    /// Fresh for how long (nil: not stored, or stored stale).
    static func freshSeconds(_ decision: StorageDecision) -> Int? {
        guard let plan = decision.plan, plan.ttl > .zero else { return nil }
        return Int(plan.ttl.components.seconds)
    }

    /// §5.1: of several lines the first counts, of a list its first member; a value that is not
    /// delta-seconds makes the response stale.
    @Test(arguments: [
        (["10"], 3590),
        (["abc"], nil),
        (["-7200"], nil),
        (["7200.0"], nil),
        (["old, 0"], nil),
        (["old", "0"], nil),
        (["0", "old"], 3600),
        (["0, old"], 3600),
        (["60", "3000"], 3540),
        ([" 20 "], 3580),
    ] as [([String], Int?)])
    func age(_ lines: [String], _ fresh: Int?) {
        let headers = [("Date", Self.date), ("Cache-Control", "max-age=3600")] + lines.map { ("Age", $0) }
        #expect(Self.freshSeconds(Self.decide(200, headers)) == fresh, "\(lines)")
    }

    /// §5.3: an `Expires` that is not an HTTP date, or that is repeated, means already expired.
    /// The three forms HTTP defines are read, letters in any case.
    @Test(arguments: [
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120),
        ("THU, 01 JAN 2026 00:02:00 gmt", 120),
        ("Thursday, 01-Jan-26 00:02:00 GMT", 120),
        ("Thu Jan  1 00:02:00 2026", 120),
        ("Thu, 01 Jan 2026 00:02:00 UTC", nil),
        ("Thu, 01 Jan 2026 00:02:00 AEST", nil),
        ("Thu, 01 Jan 26 00:02:00 GMT", nil),
        ("Thu 01 Jan 2026 00:02:00 GMT", nil),
        ("Thu, 01  Jan  2026 00:02:00 GMT", nil),
        ("Thu, 01-Jan-2026 00:02:00 GMT", nil),
        ("Thu, 01 Jan 2026 00.02.00 GMT", nil),
        ("Thu, 01 Jan 2026 0:02:00 GMT", nil),
        ("Thu, 1 Jan 2026 00:02:00 GMT", nil),
        ("Thu, 01 Jan 2026 00:02:00 GMT extra", nil),
        ("Someday, 01-Jan-26 00:02:00 GMT", nil),
    ] as [(String, Int?)])
    func expires(_ value: String, _ fresh: Int?) {
        #expect(Self.freshSeconds(Self.decide(200, [("Date", Self.date), ("Expires", value)])) == fresh, "\(value)")
    }

    @Test func aRepeatedExpiresIsAlreadyExpired() {
        let repeated = [("Date", Self.date), ("Expires", "Thu, 01 Jan 2026 00:02:00 GMT"), ("Expires", "Thu, 01 Jan 2026 00:02:01 GMT")]
        #expect(Self.freshSeconds(Self.decide(200, repeated)) == nil)
    }

    /// §3: a response with explicit freshness is storable whatever its final status; an error so
    /// stored is served while fresh and never stale (no stale-while-revalidate, stale-if-error or
    /// keep for revalidation, whatever the route's grace).
    @Test(arguments: [500, 502, 503, 504, 599, 299, 420])
    func explicitFreshnessMakesAnyStatusStorable(_ status: Int) {
        let decision = Self.decide(
            status, [("Cache-Control", "max-age=30, stale-while-revalidate=60, stale-if-error=60"), ("ETag", "\"e\"")],
            grace: .seconds(30))
        #expect(Self.freshSeconds(decision) == 30, "\(status)")
        if status >= 500 {
            #expect(decision.plan?.retention == .zero, "a \(status) is never reused stale")
        }
        // Without explicit freshness it is not stored.
        #expect(Self.decide(status, []).plan == nil)
    }

    /// §5.2.2.3: `must-understand` stores only statuses this cache understands, and for those
    /// `no-store` (the fallback for caches that do not know the directive) does not apply.
    @Test func mustUnderstand() {
        #expect(Self.freshSeconds(Self.decide(200, [("Cache-Control", "must-understand, no-store, max-age=60")])) == 60)
        #expect(Self.decide(299, [("Cache-Control", "must-understand, max-age=60")]) == .doNotStore(reason: "must-understand"))
        #expect(Self.decide(420, [("Cache-Control", "must-understand, no-store, max-age=60")]) == .doNotStore(reason: "must-understand"))
    }

    /// §5.2.1.5: the response to a request with `no-store` is not stored.
    @Test func aRequestsNoStoreIsHonoured() {
        #expect(Self.decide(200, [("Cache-Control", "max-age=60")], requestNoStore: true) == .doNotStore(reason: "request-no-store"))
        #expect(RequestCacheDirectives(cacheControl: ["no-store"], pragma: []).noStore)
    }

    /// Interim (1xx) responses are never stored.
    @Test func interimResponsesAreNeverStored() {
        #expect(Self.decide(103, [("Cache-Control", "max-age=60")]) == .doNotStore(reason: "interim"))
    }

    /// RFC 9213: `CDN-Cache-Control` is a Structured Field dictionary; an invalid one (not a
    /// dictionary, or a known directive with a value of the wrong type) is ignored as a whole and
    /// `Cache-Control` (here `max-age=600`) applies; its `private`, `no-store` and `no-cache` win
    /// over what `Cache-Control` and `Expires` allow.
    @Test(arguments: [
        (["max-age=90"], "store 90"),
        (["max-age=90, foo=bar, baz"], "store 90"),
        (["max-age=30", "must-revalidate"], "store 30"),
        (["s-maxage=45, max-age=90"], "store 45"),
        (["max-age=\"90\""], "store 600"),
        (["max-age=9.5"], "store 600"),
        (["max-age=-1"], "store 600"),
        (["max-age=@1767225600"], "store 600"),
        (["max-age=90, no-store=1"], "store 600"),
        (["max-age=90,,"], "store 600"),
        (["max-age=90, private=\"x\""], "store 600"),
        (["no-store"], "no-store"),
        (["private, max-age=90"], "private"),
        (["private=(\"set-cookie\"), max-age=90"], "private"),
        (["no-cache, max-age=90"], "no-cache"),
        (["no-store=?0, max-age=90"], "store 90"),
    ] as [([String], String)])
    func cdnCacheControl(_ lines: [String], _ expected: String) {
        let headers = [("Date", Self.date), ("Cache-Control", "public, max-age=600"), ("Expires", "Thu, 01 Jan 2026 01:00:00 GMT")]
            + lines.map { ("CDN-Cache-Control", $0) }
        let outcome: String
        switch Self.decide(200, headers) {
        case .store(let plan): outcome = "store \(plan.ttl.components.seconds)"
        case .doNotStore(let reason): outcome = reason
        }
        #expect(outcome == expected, "\(lines)")
    }
}

/// `Range` (RFC 9110 §14.2) against a stored representation of 100 bytes.
@Suite struct ByteRangeRequestTests {
    @Test(arguments: [
        ("bytes=0-9", ByteRangeRequest.single(first: 0, last: 9)),
        ("bytes=90-", .single(first: 90, last: 99)),
        ("bytes=90-200", .single(first: 90, last: 99)),
        ("bytes=-10", .single(first: 90, last: 99)),
        ("bytes=-1000", .single(first: 0, last: 99)),
        ("BYTES=5-5", .single(first: 5, last: 5)),
        (" bytes=1-2 ", .single(first: 1, last: 2)),
        ("bytes=100-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=0-1,5-6", .whole),
        ("bytes=5-1", .whole),
        ("bytes=a-b", .whole),
        ("items=0-1", .whole),
        ("bytes=", .whole),
        ("bytes=99999999999999999999999999-", .unsatisfiable),
        ("bytes=0-99999999999999999999999999", .single(first: 0, last: 99)),
    ])
    func evaluate(_ value: String, _ expected: ByteRangeRequest) {
        #expect(ByteRangeRequest.evaluate([value], length: 100) == expected, "\(value)")
    }

    @Test func twoRangeFieldsOrAnEmptyRepresentation() {
        #expect(ByteRangeRequest.evaluate(["bytes=0-1", "bytes=2-3"], length: 100) == .whole)
        #expect(ByteRangeRequest.evaluate(["bytes=0-"], length: 0) == .unsatisfiable)
    }
}

/// Which request cookies make a read personal.
@Suite struct CookiePolicyTests {
    static let analytics = CookiePolicy.ignore(["_ga*", "_gid", "OptanonConsent"])

    @Test(arguments: [
        ("_ga=GA1.2.3; _gid=GA1.2.4", false),
        ("_ga_ABC=GS1; OptanonConsent=isGpcEnabled=0", false),
        ("_ga=1; session=abc", true),
        ("cart=3", true),
        ("", false),
        (" ; ", false),
        ("_gidx=1", true),
        ("=nameless", true),
    ])
    func ignoredCookies(_ value: String, _ matters: Bool) {
        #expect(Self.analytics.matters([value]) == matters, "\(value)")
    }

    @Test func passAndIgnoreAll() {
        #expect(CookiePolicy.pass.matters(["_ga=1"]))
        #expect(!CookiePolicy.pass.matters([""]))
        #expect(!CookiePolicy.ignoreAll.matters(["session=1"]))
    }
}

/// `Accept-Language` reduced to the languages a store sells.
@Suite struct AcceptLanguageTests {
    static let offered = ["en", "fr", "de-CH"]

    @Test(arguments: [
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("fr", "fr"),
        ("en-US,en;q=0.9", "en"),
        ("de-CH", "de-CH"),
        ("de", "de-CH"),
        ("es;q=1, fr;q=0.5", "fr"),
        ("fr;q=0.2, en;q=0.8", "en"),
        ("fr;q=0, en", "en"),
        ("es, pt", "en"),
        ("*", "en"),
        ("", "en"),
        ("fr;q=nan, en;q=1.5", "en"),
        ("frx", "en"),
    ])
    func best(_ value: String, _ expected: String) {
        #expect(AcceptLanguage.best([value], offered: Self.offered) == expected, "\(value)")
    }
}

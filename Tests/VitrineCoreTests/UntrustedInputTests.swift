import Testing
import VitrineCore

/// Numbers, dates and lists from clients and origins: out-of-range values follow the RFCs and
/// never trap.
@Suite struct UntrustedInputTests {
    @Test(arguments: [
        ("0", 0), ("60", 60), ("2147483647", 2_147_483_647), ("2147483648", 2_147_483_648), ("2147483649", 2_147_483_648),
        ("9223372036854775807", 2_147_483_648), ("99999999999999999999999999999", 2_147_483_648), ("007", 7),
    ])
    func deltaSecondsSaturateAtTwoToTheThirtyFirst(_ text: String, _ expected: Int) {
        #expect(DeltaSeconds.parse(text) == expected)
    }

    @Test(arguments: ["", "-1", "+5", "1.5", " 5", "5 ", "0x10", "٣"])
    func deltaSecondsAreDigitsOnly(_ text: String) {
        #expect(DeltaSeconds.parse(text) == nil)
    }

    @Test func cacheControlSaturates() {
        let directives = CacheControl(parsing: [
            "max-age=99999999999999999999, s-maxage=9223372036854775807, stale-while-revalidate=1e9, stale-if-error=99999999999999999999"
        ])
        #expect(directives.maxAge == DeltaSeconds.maximum)
        #expect(directives.sharedMaxAge == DeltaSeconds.maximum)
        #expect(directives.staleWhileRevalidate == nil)
        #expect(directives.staleIfError == DeltaSeconds.maximum)
    }

    @Test(arguments: [
        "Sun, 06 Nov 999999999999 08:49:37 GMT", "Sun, 06 Nov 10000 08:49:37 GMT", "Sun Nov  6 08:49:37 99999999999999999999",
        "Sunday, 06-Nov-9999999999999999 08:49:37 GMT", "Sun, 99999999999999999999 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 99999999999999999999:49:37 GMT", "Sun, 06 Nov 1969 08:49:37 GMT", ", , , , , GMT", "",
    ])
    func datesOutOfRangeAreNotDates(_ text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test(arguments: ["Sat, 31 Feb 2026 00:00:00 GMT", "Thu, 31 Apr 2026 00:00:00 GMT", "Sun, 29 Feb 2100 00:00:00 GMT", "Mon, 00 Jan 2026 00:00:00 GMT"])
    func daysAMonthDoesNotHaveAreNotDates(_ text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test func aLeapSecondStaysOnItsDay() {
        #expect(HTTPDate.parse("Fri, 31 Dec 9999 23:59:60 GMT") == 253_402_300_799)
        #expect(HTTPDate.parse("Tue, 29 Feb 2000 12:00:00 GMT") != nil)
    }

    @Test func theLastDateOfYear9999Parses() {
        #expect(HTTPDate.parse("Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799)
    }

    @Test func policyWithHugeValuesStoresForAtMostTwoToTheThirtyFirstSeconds() {
        let policy = ResponseCachePolicy(defaultTTL: nil, grace: .seconds(10))
        let timing = ResponseTiming(responseTime: 1_767_225_600, responseDelay: 0)
        let cases: [[(name: String, value: String)]] = [
            [("Cache-Control", "max-age=9223372036854775807")],
            [("Age", "9223372036854775807"), ("Cache-Control", "max-age=9223372036854775807")],
            [("Expires", "Fri, 31 Dec 9999 23:59:59 GMT"), ("Date", "Thu, 01 Jan 1970 00:00:00 GMT")],
            [("Cache-Control", "max-age=60, stale-while-revalidate=9223372036854775807")],
        ]
        for headers in cases {
            let decision = policy.decide(status: 200, headers: headers, timing: timing)
            if let plan = decision.plan {
                #expect(plan.ttl <= .seconds(DeltaSeconds.maximum))
                #expect(plan.staleWhileRevalidate <= .seconds(DeltaSeconds.maximum))
            }
        }
        // A huge Age makes the response stale at once; it is never negative freshness.
        let aged = policy.decide(status: 200, headers: [("Age", "99999999999999999999"), ("Cache-Control", "max-age=60")], timing: timing)
        #expect(aged.plan == nil || aged.plan?.ttl == .zero)
    }

    @Test(arguments: ["", ";", " ; ", ";charset=utf-8", "application/json", "text/html;", "\u{0}"])
    func anyContentTypeIsAnswered(_ contentType: String) {
        _ = Compressibility.isCompressible(contentType: contentType, contentEncoding: nil, size: 2048)
    }

    @Test func compressibilityStillReadsTheMediaType() {
        #expect(Compressibility.isCompressible(contentType: "application/json; charset=utf-8", contentEncoding: nil, size: 2048))
        #expect(!Compressibility.isCompressible(contentType: "", contentEncoding: nil, size: 2048))
        #expect(!Compressibility.isCompressible(contentType: "image/png", contentEncoding: nil, size: 2048))
    }

    @Test(arguments: [
        (";", false), (",;,", false), ("gzip", true), ("GZIP;q=0.5", true), ("gzip;q=0", false), ("br", false),
        ("*", true), ("gzip;q=nan", false), ("gzip;q=1e999", false), ("gzip;q=2", false), ("identity, x-gzip", true),
        (";;;;gzip", false), ("gzip;;", true), ("br, gzip ; q=0.001", true),
    ])
    func acceptEncodingIsReadWithoutTrapping(_ value: String, _ acceptsGzip: Bool) {
        #expect(AcceptEncoding.acceptsGzip([value]) == acceptsGzip)
        #expect(AcceptEncoding.normalizedFieldValue([value]) == (acceptsGzip ? "gzip" : nil))
    }

    @Test func cacheGroupsOfAHugeFieldAreReadInLinearTime() {
        let field = (0..<50_000).map { "\"g\($0)\"" }.joined(separator: ", ")
        let groups = CacheGroups.parse([field, field])
        #expect(groups.count == 50_000)
    }
}

/// Listing parameter values come from an origin's index: in a target they stay one value.
@Suite struct ListingValueEncodingTests {
    @Test func valuesFromAnIndexArePercentEncodedInTargets() throws {
        let template = try #require(ListingTemplate("/catalog/categories/{category}/products?sort={sort}"))
        let target = template.render(["category": "1 HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /a/../b?c=d&e", "sort": "price_asc"], percentEncoded: true)
        #expect(target == "/catalog/categories/1%20HTTP%2F1.1%0D%0AX-Injected%3A%201%0D%0A%0D%0AGET%20%2Fa%2F..%2Fb%3Fc%3Dd%26e/products?sort=price_asc")
        #expect(template.render(["category": "42", "sort": "name"], percentEncoded: true) == "/catalog/categories/42/products?sort=name")
        #expect(template.render(["category": "ü"], percentEncoded: true) == "/catalog/categories/%C3%BC/products?sort=")
    }
}

import Foundation
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

/// Secondary keys (Vary), key normalisation, cache groups and conditional requests, end to end.
@Suite(.timeLimit(.minutes(1)))
struct VariantsAndKeysTests {
    static func target(_ path: String, _ headers: [String], _ extra: String = "") -> String {
        CachingSemanticsTests.target(path, headers, extra)
    }

    @Test func varyMakesOneEntryPerVariant() async throws {
        try await CachingSemanticsTests.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/lang", ["Cache-Control:max-age=60", "Vary:Accept-Language"])
            func get(_ language: String) async throws -> WireResponse {
                try await fixture.get(target, headers: [("Accept-Language", language)])
            }
            #expect(try await get("en").header("X-Cache") == "MISS")
            #expect(try await get("en").header("X-Cache") == "HIT")
            let french = try await get("fr")
            #expect(french.header("X-Cache") == "MISS")
            #expect(french.text.contains("accept-language: fr"))
            #expect(try await get("fr").text.contains("accept-language: fr"))
            #expect(try await get("en").text.contains("accept-language: en"))
            #expect(echo.requests == 2)
            // Purging the URL purges every variant.
            _ = try await fixture.admin("PURGE", target)
            #expect(try await get("en").header("X-Cache") == "MISS")
            #expect(try await get("fr").header("X-Cache") == "MISS")
        }
    }

    @Test func acceptEncodingIsNormalised() async throws {
        try await CachingSemanticsTests.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/enc", ["Cache-Control:max-age=60", "Vary:Accept-Encoding"])
            _ = try await fixture.get(target, headers: [("Accept-Encoding", "gzip, deflate, br")])
            #expect(try await fixture.get(target, headers: [("Accept-Encoding", "br;q=1.0, gzip;q=0.8")]).header("X-Cache") == "HIT")
            #expect(try await fixture.get(target, headers: [("Accept-Encoding", "gzip;q=0, br")]).header("X-Cache") == "MISS")
            #expect(try await fixture.get(target).header("X-Cache") == "HIT")
            #expect(echo.requests == 2)
        }
    }

    @Test func collapsedRequestsOnlyTakeTheirOwnVariant() async throws {
        try await CachingSemanticsTests.withEcho { fixture, echo, _ in
            let target = Self.target("/echo/vary-hot", ["Cache-Control:max-age=60", "Vary:Accept-Language"], "&delay=200")
            let responses = try await withThrowingTaskGroup(of: (String, WireResponse).self) { group in
                for language in ["en", "fr", "en", "fr", "en"] {
                    group.addTask { (language, try await fixture.get(target, headers: [("Accept-Language", language)])) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (language, response) in responses {
                #expect(response.text.contains("accept-language: \(language)"), "a \(language) client got another variant")
            }
            #expect(echo.requests <= 3)
        }
    }

    @Test func keysAreNormalised() async throws {
        try await CachingSemanticsTests.withEcho { fixture, echo, _ in
            let first = try await fixture.get("/echo/k?b=2&a=1&utm_source=mail")
            #expect(first.text.hasPrefix("GET /echo/k?a=1&b=2\n"), "the origin sees the target the key describes")
            #expect(try await fixture.get("/echo/k?a=1&b=2").header("X-Cache") == "HIT")
            #expect(try await fixture.get("/echo/k?a=1&gclid=x&b=2").header("X-Cache") == "HIT")
            #expect(try await fixture.get("/echo/k?a=1&b=3").header("X-Cache") == "MISS")
            // A purge by key finds the entry whatever the order it is given in.
            _ = try await fixture.admin("POST", "/purge", body: #"{"keys":["/echo/k?b=2&a=1"]}"#)
            #expect(try await fixture.get("/echo/k?a=1&b=2").header("X-Cache") == "MISS")
            #expect(echo.requests == 3)
        }
    }

    @Test func cacheGroupsJoinAndInvalidate() async throws {
        try await CachingSemanticsTests.withEcho { fixture, _, _ in
            let member = Self.target("/echo/g1", ["Cache-Control:max-age=60", #"Cache-Groups:"shoes", "sale""#])
            _ = try await fixture.get(member)
            #expect(try await fixture.get(member).header("X-Cache") == "HIT")
            _ = try await fixture.admin("POST", "/purge", body: #"{"tags":["sale"]}"#)
            #expect(try await fixture.get(member).header("X-Cache") == "MISS")
            #expect(try await fixture.get(member).header("X-Cache") == "HIT")
            let write = try await fixture.send("POST", Self.target("/echo/orders", [#"Cache-Group-Invalidation:"shoes""#]), body: "{}")
            #expect(write.status == 200)
            #expect(try await fixture.get(member).header("X-Cache") == "MISS")
        }
    }

    @Test func ifModifiedSinceIsAnsweredFromCache() async throws {
        try await CachingSemanticsTests.withEcho { fixture, _, _ in
            let target = Self.target("/echo/dated", ["Cache-Control:max-age=60", "Last-Modified:Thu, 01 Jan 2026 00:00:00 GMT"])
            _ = try await fixture.get(target)
            let notModified = try await fixture.get(target, headers: [("If-Modified-Since", "Fri, 02 Jan 2026 00:00:00 GMT")])
            #expect(notModified.status == 304)
            let modified = try await fixture.get(target, headers: [("If-Modified-Since", "Wed, 31 Dec 2025 00:00:00 GMT")])
            #expect(modified.status == 200)
        }
    }

    @Test func hugeTagHeadersAreAccepted() async throws {
        try await CachingSemanticsTests.withEcho { fixture, _, _ in
            // A category page tagging every product on it: 8,000 tags, about 100 KB of Surrogate-Key.
            let target = Self.target("/echo/category", ["Cache-Control:max-age=60"])
            let first = try await fixture.get(target, headers: [("X-Echo-Tag-Count", "8000")])
            #expect(first.status == 200)
            #expect(first.header("Cache-Status") == "vitrine; fwd=miss; stored")
            #expect(first.header("Surrogate-Key") == nil)
            #expect(try await fixture.get(target).header("X-Cache") == "HIT")
            _ = try await fixture.admin("POST", "/purge", body: #"{"tags":["product:7777"]}"#)
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
        }
    }
}

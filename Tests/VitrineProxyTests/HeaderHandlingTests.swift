import Foundation
import Testing
import VitrineConfig
@testable import VitrineProxy

/// What the proxy sends to the origin and which responses it shares, against `EchoOrigin`.
@Suite(.timeLimit(.minutes(1)))
struct HeaderHandlingTests {
    static func withEcho(
        configure: @escaping (inout VitrineConfiguration) -> Void = { _ in },
        _ body: (ProxyFixture, EchoOrigin) async throws -> Void
    ) async throws {
        let echo = try await EchoOrigin.start()
        do {
            try await ProxyFixture.with(originURL: "http://127.0.0.1:\(echo.port)", configure: { configuration in
                configuration.routes.append(RouteSettings(prefix: "/echo/", origin: "catalog", defaultTTL: .seconds(60)))
                configure(&configuration)
            }) { fixture in
                try await body(fixture, echo)
            }
            await echo.stop()
        } catch {
            await echo.stop()
            throw error
        }
    }

    /// `h=Name:Value` query items, URL-encoded.
    static func target(_ path: String, _ headers: [String]) -> String {
        path + "?" + headers.map { "h=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }.joined(separator: "&")
    }

    @Test func hopByHopFieldsAreDroppedAndForwardingFieldsSet() async throws {
        try await Self.withEcho { fixture, echo in
            // A write forwards every end-to-end field; hop-by-hop ones never pass.
            let response = try await fixture.send(
                "POST", "/echo/headers",
                headers: [
                    ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
                    ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"), ("X-Forwarded-For", "10.1.2.3"),
                    ("X-Custom", "kept"),
                ], body: "{}")
            let seen = response.text
            #expect(seen.hasPrefix("POST /echo/headers\n"))
            for dropped in ["connection:", "x-secret-hop:", "keep-alive:", "upgrade:", "proxy-authorization:"] {
                #expect(!seen.contains("\n\(dropped)"), "\(dropped) must not reach the origin")
            }
            #expect(seen.contains("\nx-custom: kept\n"))
            // The client's own X-Forwarded-For is not believed (no trusted proxies): the peer alone.
            #expect(seen.contains("\nx-forwarded-for: 127.0.0.1\n"))
            #expect(seen.contains("\nx-forwarded-proto: http\n"))
            // The route does not key on the client's Host: the origin gets its own.
            #expect(seen.contains("\nhost: 127.0.0.1:\(echo.port)\n"))
            #expect(!seen.contains("\nx-forwarded-host:"))
            #expect(seen.contains("\ncontent-length: 2\n"))
        }
    }

    @Test func aFetchThatMayBeStoredForwardsOnlyWhatItsKeyDescribes() async throws {
        try await Self.withEcho { fixture, echo in
            let response = try await fixture.get(
                "/echo/keyed?b=2&utm_source=evil%3Bb%3D9&a=1",
                headers: [
                    ("X-Custom", "unkeyed"), ("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-Host", "evil.test"),
                    ("X-Original-URL", "/admin"), ("Accept-Language", "de"), ("Accept-Encoding", "br, gzip;q=0.5"),
                ])
            let seen = response.text
            // The key's target: sorted, the tracking parameter (and what it hid) gone.
            #expect(seen.hasPrefix("GET /echo/keyed?a=1&b=2\n"))
            for unkeyed in ["x-custom:", "x-original-url:", "x-forwarded-host:"] {
                #expect(!seen.contains("\n\(unkeyed)"), "\(unkeyed) must not reach the origin on a cacheable fetch")
            }
            #expect(seen.contains("\nx-forwarded-for: 127.0.0.1\n"))
            #expect(seen.contains("\naccept-language: de\n"))
            #expect(seen.contains("\naccept-encoding: gzip\n"))
            #expect(seen.contains("\nhost: 127.0.0.1:\(echo.port)\n"))
        }
    }

    @Test(arguments: [
        ["Cache-Control:public, max-age=60", "Set-Cookie:session=abc"],
        ["Cache-Control:private, max-age=60"],
        ["Cache-Control:no-store"],
        ["Cache-Control:no-cache, max-age=60"],
        ["Cache-Control:max-age=60", "Vary:Accept-Language, *"],
    ])
    func responsesThatMustNotBeSharedAreNeverServedFromCache(_ headers: [String]) async throws {
        try await Self.withEcho { fixture, echo in
            let target = Self.target("/echo/private", headers)
            let first = try await fixture.get(target)
            #expect(first.header("X-Cache") == "MISS")
            #expect(first.header("Cache-Status")?.contains("stored") == false)
            let second = try await fixture.get(target)
            #expect(second.header("X-Cache") == "MISS")
            #expect(echo.requests == 2)
        }
    }

    @Test func sharedMaxAgeWinsAndDefaultTTLFillsIn() async throws {
        try await Self.withEcho { fixture, _ in
            _ = try await fixture.get(Self.target("/echo/a", ["Cache-Control:max-age=600, s-maxage=5"]))
            let explicit = try await fixture.get(Self.target("/echo/a", ["Cache-Control:max-age=600, s-maxage=5"]))
            // Remaining seconds, rounded down: a busy machine may have let a second pass.
            // (s-maxage=5 against max-age=600: any of 1...5 shows which one won.)
            #expect((1...5).map { "vitrine; hit; ttl=\($0)" }.contains(explicit.header("Cache-Status") ?? ""))
            _ = try await fixture.get("/echo/b")
            let defaulted = try await fixture.get("/echo/b")
            #expect(["vitrine; hit; ttl=60", "vitrine; hit; ttl=59"].contains(defaulted.header("Cache-Status") ?? ""))
        }
    }

    @Test func everyTagHeaderIsReadStrippedAndPurgeable() async throws {
        try await Self.withEcho { fixture, echo in
            let targets = [
                Self.target("/echo/1", ["Surrogate-Key:a b"]), Self.target("/echo/2", ["Cache-Tag:b,c"]),
                Self.target("/echo/3", ["xkey:c d"]),
            ]
            for target in targets {
                let response = try await fixture.get(target)
                #expect(response.header("Surrogate-Key") == nil && response.header("Cache-Tag") == nil && response.header("xkey") == nil)
            }
            for target in targets { #expect(try await fixture.get(target).header("X-Cache") == "HIT") }
            let purge = try await fixture.admin("POST", "/purge", body: #"{"tags":["c"]}"#)
            #expect(purge.status == 200)
            #expect(try await fixture.get(targets[0]).header("X-Cache") == "HIT")
            #expect(try await fixture.get(targets[1]).header("X-Cache") == "MISS")
            #expect(try await fixture.get(targets[2]).header("X-Cache") == "MISS")
            #expect(echo.requests == 5)
        }
    }

    @Test func uncacheableRoutesAndOtherMethodsPass() async throws {
        try await Self.withEcho { fixture, echo in
            let options = try await fixture.send("OPTIONS", "/echo/x")
            #expect(options.header("X-Cache") == "PASS")
            #expect(options.header("Cache-Status") == "vitrine; fwd=method; detail=method")
            // A Range is looked up now (answered from the cache when stored): a miss fetches the whole.
            let ranged = try await fixture.get("/echo/x", headers: [("Range", "bytes=0-3")])
            #expect(ranged.header("X-Cache") == "MISS")
            #expect(ranged.status == 200)
            #expect(echo.requests == 2)
        }
    }

    @Test func writesPurgeTheirTargetAndLocation() async throws {
        try await Self.withEcho { fixture, _ in
            let collection = Self.target("/echo/items", ["Location:/echo/items/1"])
            _ = try await fixture.get(collection)
            _ = try await fixture.get("/echo/items/1")
            _ = try await fixture.get("/echo/items/2")
            #expect(try await fixture.get("/echo/items/1").header("X-Cache") == "HIT")
            let created = try await fixture.send("POST", collection, body: "{}")
            #expect(created.header("Cache-Status") == "vitrine; fwd=method")
            #expect(try await fixture.get(collection).header("X-Cache") == "MISS")
            #expect(try await fixture.get("/echo/items/1").header("X-Cache") == "MISS")
            #expect(try await fixture.get("/echo/items/2").header("X-Cache") == "HIT")
            // An absolute Location on the same host counts; another host's does not.
            _ = try await fixture.get("/echo/items/1")
            _ = try await fixture.send("PUT", Self.target("/echo/x", ["Content-Location:http://shop.test/echo/items/2"]), body: "{}")
            _ = try await fixture.send("PUT", Self.target("/echo/y", ["Content-Location:http://elsewhere.test/echo/items/1"]), body: "{}")
            #expect(try await fixture.get("/echo/items/2").header("X-Cache") == "MISS")
            #expect(try await fixture.get("/echo/items/1").header("X-Cache") == "HIT")
        }
    }
}

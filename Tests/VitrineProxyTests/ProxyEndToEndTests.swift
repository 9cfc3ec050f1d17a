import Foundation
import NIOCore
import NIOPosix
import Testing
import VitrineConfig
@testable import VitrineProxy
import VitrineTestSupport

/// The proxy and the demo origin on real sockets, talking real HTTP.
@Suite(.timeLimit(.minutes(1)))
struct ProxyEndToEndTests {
    @Test func missThenHit() async throws {
        try await ProxyFixture.with { fixture in
            let first = try await fixture.get("/catalog/products/42")
            #expect(first.status == 200)
            #expect(first.header("X-Cache") == "MISS")
            #expect(first.header("Cache-Status") == "vitrine; fwd=miss; stored")
            #expect(first.header("Surrogate-Key") == nil, "tag headers never reach clients")

            let second = try await fixture.get("/catalog/products/42")
            #expect(second.status == 200)
            #expect(second.header("X-Cache") == "HIT")
            #expect(second.header("Cache-Status")?.hasPrefix("vitrine; hit; ttl=") == true)
            #expect(second.header("Age") != nil)
            #expect(second.body == first.body)
            #expect(second.header("ETag") == first.header("ETag"))
            #expect(second.header("Surrogate-Key") == nil)

            let stats = try await fixture.admin("GET", "/stats")
            let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any]
            #expect(json["hits"] as? Int == 1)
            #expect(json["misses"] as? Int == 1)
            #expect(json["entries"] as? Int == 1)
            #expect(json["origin_requests"] as? Int == 1)
            // Without Redis the in-process L2 takes a fifth of cache.memory; L1 has the rest.
            let demo = VitrineConfiguration.demo(
                origin: OriginURL(parsing: "http://127.0.0.1:9")!, port: 0, adminPort: 0, token: ProxyFixture.token)
            let memory = demo.cache.memory.bytes
            #expect(json["memory_budget"] as? Int == memory - memory / 5)
            for field in [
                "bytes", "tag_rows", "stale", "purges", "client_timeouts", "connections_refused", "redis", "feed", "listings",
            ] { #expect(json[field] != nil, "\(field)") }
        }
    }

    @Test func originSeesOneRequestForManyHits() async throws {
        try await ProxyFixture.with { fixture in
            for _ in 0..<20 { _ = try await fixture.get("/catalog/categories/2/products?sort=name&page=1") }
            let stats = try await fixture.get("/_origin/stats")
            #expect(stats.header("X-Cache") == "PASS")
            let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any]
            #expect(json["requests"] as? Int == 1)
        }
    }

    @Test func purgeByTagThenMiss() async throws {
        try await ProxyFixture.with { fixture in
            _ = try await fixture.get("/catalog/products/7")
            _ = try await fixture.get("/catalog/products/8")
            #expect(try await fixture.get("/catalog/products/7").header("X-Cache") == "HIT")

            let purge = try await fixture.admin("POST", "/purge", body: #"{"tags":["product:7"]}"#)
            #expect(purge.status == 200)
            let json = try JSONSerialization.jsonObject(with: Data(purge.body)) as! [String: Any]
            #expect(json["purged"] as? Int == 1)

            #expect(try await fixture.get("/catalog/products/7").header("X-Cache") == "MISS")
            #expect(try await fixture.get("/catalog/products/8").header("X-Cache") == "HIT")
        }
    }

    @Test func purgeByKeyPrefixAndPURGEMethod() async throws {
        try await ProxyFixture.with { fixture in
            for id in 1...3 { _ = try await fixture.get("/catalog/products/\(id)") }
            _ = try await fixture.get("/search/products?q=jacket")
            let byMethod = try await fixture.admin("PURGE", "/catalog/products/1")
            #expect(byMethod.status == 200)
            #expect(try await fixture.get("/catalog/products/1").header("X-Cache") == "MISS")
            let byPrefix = try await fixture.admin("POST", "/purge", body: #"{"prefixes":["/catalog/"]}"#)
            let json = try JSONSerialization.jsonObject(with: Data(byPrefix.body)) as! [String: Any]
            #expect(json["purged"] as? Int == 3)
            #expect(try await fixture.get("/catalog/products/2").header("X-Cache") == "MISS")
            #expect(try await fixture.get("/search/products?q=jacket").header("X-Cache") == "HIT")
            let byKey = try await fixture.admin("POST", "/purge", body: #"{"keys":["http://shop.test/search/products?q=jacket"]}"#)
            #expect(byKey.status == 200)
            #expect(try await fixture.get("/search/products?q=jacket").header("X-Cache") == "MISS")
        }
    }

    @Test func writeThenFreshRead() async throws {
        try await ProxyFixture.with { fixture in
            let before = try await fixture.get("/catalog/products/5")
            let category = (try JSONSerialization.jsonObject(with: Data(before.body)) as! [String: Any])["category_id"] as! Int
            let listingPath = "/catalog/categories/\(category)/products?sort=price_asc"
            _ = try await fixture.get(listingPath)
            #expect(try await fixture.get("/catalog/products/5").header("X-Cache") == "HIT")
            #expect(try await fixture.get(listingPath).header("X-Cache") == "HIT")

            let write = try await fixture.send("PATCH", "/catalog/products/5", body: #"{"price_cents": 1}"#)
            #expect(write.status == 200)
            #expect(write.header("X-Cache") == "PASS")
            #expect(write.header("Surrogate-Key") == nil)

            let after = try await fixture.get("/catalog/products/5")
            #expect(after.header("X-Cache") == "MISS")
            let price = (try JSONSerialization.jsonObject(with: Data(after.body)) as! [String: Any])["price_cents"] as? Int
            #expect(price == 1)
            // The listing carries the product's tag and the listing tag: purged too, and now first.
            let listing = try await fixture.get(listingPath)
            #expect(listing.header("X-Cache") == "MISS")
            let items = (try JSONSerialization.jsonObject(with: Data(listing.body)) as! [String: Any])["items"] as! [[String: Any]]
            #expect(items.first?["id"] as? Int == 5)
        }
    }

    @Test func badWriteIsPassedAndPurgesNothing() async throws {
        try await ProxyFixture.with { fixture in
            _ = try await fixture.get("/catalog/products/9")
            let write = try await fixture.send("PATCH", "/catalog/products/9", body: "{not json")
            #expect(write.status == 400)
            #expect(try await fixture.get("/catalog/products/9").header("X-Cache") == "HIT")
        }
    }

    @Test func adminNeedsTheToken() async throws {
        try await ProxyFixture.with { fixture in
            for path in ["/stats", "/metrics", "/healthz", "/readyz"] {
                #expect(try await fixture.admin("GET", path, authorized: false).status == 401, "\(path)")
            }
            let wrong = try await WireConnection.with(port: fixture.adminPort) {
                try await $0.request("POST", "/purge", headers: [("Authorization", "Bearer nope")], body: #"{"tags":["x"]}"#)
            }
            #expect(wrong.status == 401)
            #expect(try await fixture.admin("GET", "/healthz").status == 200)
            #expect(try await fixture.admin("GET", "/readyz").status == 200)
            let metrics = try await fixture.admin("GET", "/metrics")
            #expect(metrics.text.contains("vitrine_requests_total"))
            #expect(metrics.text.contains("vitrine_cache_entries"))
            #expect(try await fixture.admin("POST", "/purge", body: "[]").status == 400)
            #expect(try await fixture.admin("POST", "/purge", body: "{}").status == 400)
        }
    }

    @Test func privateRequestsAreNotShared() async throws {
        try await ProxyFixture.with { fixture in
            let withCookie = try await fixture.get("/catalog/products/3", headers: [("Cookie", "session=1")])
            #expect(withCookie.header("X-Cache") == "PASS")
            let withAuth = try await fixture.get("/catalog/products/3", headers: [("Authorization", "Bearer x")])
            #expect(withAuth.header("X-Cache") == "PASS")
            #expect(try await fixture.get("/catalog/products/3").header("X-Cache") == "MISS")
        }
    }

    @Test func headAndConditionalRequestsAreAnsweredFromCache() async throws {
        try await ProxyFixture.with { fixture in
            let full = try await fixture.get("/catalog/products/11")
            let etag = try #require(full.header("ETag"))
            try await WireConnection.with(port: fixture.proxyPort) { connection in
                let head = try await connection.request("HEAD", "/catalog/products/11")
                #expect(head.status == 200)
                #expect(head.header("X-Cache") == "HIT")
                #expect(head.header("Content-Length") == String(full.body.count))
                let notModified = try await connection.request("GET", "/catalog/products/11", headers: [("If-None-Match", "W/\(etag)")])
                #expect(notModified.status == 304)
                #expect(notModified.header("ETag") == etag)
                let changed = try await connection.request("GET", "/catalog/products/11", headers: [("If-None-Match", "\"other\"")])
                #expect(changed.status == 200)
            }
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await ProxyFixture.with { fixture in
            _ = try await fixture.get("/catalog/products/2")
            try await WireConnection.with(port: fixture.proxyPort) { connection in
                let ids = [2, 14, 2, 15, 16, 2]
                try await connection.send(ids.map { "GET /catalog/products/\($0) HTTP/1.1\r\nHost: shop.test\r\n\r\n" }.joined())
                for id in ids {
                    let response = try await connection.readResponse()
                    let json = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
                    #expect(json["id"] as? Int == id)
                }
            }
        }
    }

    @Test func malformedRequestLineGets400AndClose() async throws {
        try await ProxyFixture.with { fixture in
            let text = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send("GARBAGE\r\n\r\n")
                return try await connection.readUntilClosed()
            }
            #expect(text.hasPrefix("HTTP/1.1 400"))
            #expect(text.contains(#""error":"bad_request""#))
        }
    }

    @Test func oversizedHeadersGet431AndClose() async throws {
        try await ProxyFixture.with { fixture in
            let text = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n")
                return try await connection.readUntilClosed()
            }
            #expect(text.hasPrefix("HTTP/1.1 431"))
            #expect(text.contains(#""error":"headers_too_large""#))
        }
    }

    @Test(arguments: [
        ("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400"),
        ("POST /catalog/products/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "HTTP/1.1 400"),
        ("POST /catalog/products/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", "HTTP/1.1 413"),
        ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414"),
        ("GET /catalog/products/1 HTTP/1.1\r\n\r\n", "HTTP/1.1 400"),
    ])
    func ambiguousOrOversizedRequestsAreRefused(_ request: String, _ expected: String) async throws {
        try await ProxyFixture.with { fixture in
            let text = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send(request)
                return try await connection.readUntilClosed()
            }
            #expect(text.hasPrefix(expected), "\(text.prefix(80))")
            // Nothing was stored from a refused request.
            let stats = try await fixture.admin("GET", "/stats")
            let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any]
            #expect(json["entries"] as? Int == 0)
        }
    }

    @Test func originDownGets502WithJSON() async throws {
        let port = TestPorts.unused()  // nothing listens on it
        try await ProxyFixture.with(originURL: "http://127.0.0.1:\(port)") { fixture in
            let response = try await fixture.get("/catalog/products/1")
            #expect(response.status == 502)
            #expect(response.header("Content-Type") == "application/json")
            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
            #expect(json["error"] as? String == "origin_unreachable")
            // The proxy itself keeps serving.
            #expect(try await fixture.admin("GET", "/healthz").status == 200)
        }
    }

    @Test func silentOriginGets504() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        // Accepts connections and never answers.
        let silent = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = silent.localAddress!.port!
        try await ProxyFixture.with(originURL: "http://127.0.0.1:\(port)", configure: { configuration in
            for name in configuration.origins.keys { configuration.origins[name]?.firstByteTimeout = .milliseconds(300) }
        }) { fixture in
            let response = try await fixture.get("/catalog/products/1")
            #expect(response.status == 504)
            #expect(response.text.contains(#""error":"origin_timeout""#))
        }
        try await silent.close()
    }

    @Test func requestBodiesStreamThroughToTheOrigin() async throws {
        try await ProxyFixture.with { fixture in
            let response = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send(
                    "PATCH /catalog/products/21 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"stock\"\r\n4\r\n: 0}\r\n0\r\n\r\n")
                return try await connection.readResponse()
            }
            #expect(response.status == 200)
            let json = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
            #expect(json["stock"] as? Int == 0)
        }
    }
}

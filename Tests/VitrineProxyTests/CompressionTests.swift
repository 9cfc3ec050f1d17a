import CompressNIO
import NIOCore
import Testing
import VitrineConfig
@testable import VitrineProxy

@Suite(.timeLimit(.minutes(1)))
struct CompressionTests {
    @Test func gzipForClientsThatAcceptItIdentityForOthers() async throws {
        try await ProxyFixture.with { fixture in
            let miss = try await fixture.get("/catalog/categories/4/products?sort=name")
            #expect(miss.header("Content-Encoding") == nil)
            let identity = try await fixture.get("/catalog/categories/4/products?sort=name")
            #expect(identity.header("X-Cache") == "HIT")
            #expect(identity.header("Content-Encoding") == nil)
            #expect(identity.header("Vary") == "Accept-Encoding")
            #expect(identity.body == miss.body)

            let gzipped = try await fixture.get("/catalog/categories/4/products?sort=name", headers: [("Accept-Encoding", "br, gzip")])
            #expect(gzipped.header("X-Cache") == "HIT")
            #expect(gzipped.header("Content-Encoding") == "gzip")
            #expect(gzipped.header("Vary") == "Accept-Encoding")
            #expect(gzipped.header("Content-Length") == String(gzipped.body.count))
            #expect(gzipped.body.count < identity.body.count / 3)
            #expect(gzipped.header("ETag") == "W/" + identity.header("ETag")!)
            var compressed = ByteBuffer(bytes: gzipped.body)
            let inflated = try compressed.decompress(with: .gzip(), allocator: ByteBufferAllocator())
            #expect(Array(inflated.readableBytesView) == identity.body)

            // Either representation's validator matches a conditional request.
            let conditional = try await fixture.get(
                "/catalog/categories/4/products?sort=name", headers: [("Accept-Encoding", "gzip"), ("If-None-Match", gzipped.header("ETag")!)])
            #expect(conditional.status == 304)
        }
    }

    @Test func smallOrAlreadyEncodedResponsesAreNotCompressed() async throws {
        try await CachingSemanticsTests.withEcho { fixture, _, _ in
            let small = CachingSemanticsTests.target("/echo/s", ["Cache-Control:max-age=60", "Content-Type:application/json"])
            _ = try await fixture.get(small)
            #expect(try await fixture.get(small, headers: [("Accept-Encoding", "gzip")]).header("Content-Encoding") == nil)
            let encoded = CachingSemanticsTests.target(
                "/echo/e", ["Cache-Control:max-age=60", "Content-Type:text/plain", "Content-Encoding:br"], "&pad=" + String(repeating: "x", count: 2000))
            _ = try await fixture.get(encoded)
            #expect(try await fixture.get(encoded, headers: [("Accept-Encoding", "gzip")]).header("Content-Encoding") == "br")
        }
    }

    @Test func routesCanTurnCompressionOff() async throws {
        try await ProxyFixture.with(configure: { configuration in
            for index in configuration.routes.indices { configuration.routes[index].compress = false }
        }) { fixture in
            _ = try await fixture.get("/catalog/products/3")
            let hit = try await fixture.get("/catalog/products/3", headers: [("Accept-Encoding", "gzip")])
            #expect(hit.header("X-Cache") == "HIT")
            #expect(hit.header("Content-Encoding") == nil)
            #expect(hit.header("Vary") == nil)
        }
    }
}

import CompressNIO
import NIOCore
import NIOHTTP1
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

/// What a cached response is charged: the memory it keeps alive, not the bytes it carries.
@Suite struct CachedResponseCostTests {
    @Test func aBodySlicedFromALargeReadIsCompactedAtStoreTime() {
        var read = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1 << 20)
        let slice = read.readSlice(length: 1500)!
        #expect(slice.storageCapacity >= 1 << 20)
        let response = CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "image/png")]), body: slice, initialAge: 0, tags: [])
        #expect(response.body.storageCapacity == 2048)
        #expect(response.body.readableBytesView.elementsEqual(slice.readableBytesView))
        #expect(response.cost < 8 << 10)
        #expect(response.cost >= response.head.storageCapacity + response.body.storageCapacity)
    }

    @Test func aBodyInItsOwnStorageIsNotCopied() {
        var body = ByteBufferAllocator().buffer(capacity: 3000)
        body.writeRepeatingByte(UInt8(ascii: "y"), count: 3000)
        let response = CachedResponse(status: .ok, headers: HTTPHeaders(), body: body, initialAge: 0, tags: [])
        let shared = response.body.withUnsafeReadableBytes { $0.baseAddress } == body.withUnsafeReadableBytes { $0.baseAddress }
        #expect(shared)
    }

    @Test func theCostCountsHeadersAndTheGzipCopy() {
        let text = String(repeating: "{\"name\":\"product\"},", count: 200)
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("X-Long", String(repeating: "v", count: 500))])
        let plain = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: text), initialAge: 0, tags: [])
        let compressed = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: text), initialAge: 0, tags: [], compress: true)
        #expect(compressed.gzip != nil)
        #expect(compressed.cost > plain.cost)
        #expect(plain.cost > text.utf8.count + 500)
        #expect(compressed.gzip!.body.storageCapacity < 2 * compressed.gzip!.body.readableBytes + 64)
    }
}

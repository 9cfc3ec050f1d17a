import Benchmark
import NIOCore
import NIOEmbedded
import NIOHTTP1
import VitrineProxy

/// The request-head parse and response-head encode of a cache hit, as the proxy does them: its
/// own `RequestDecoder` (NIO's `HTTPRequestDecoder`, which it replaced, alongside for comparison),
/// and heads written straight into bytes (`HeadEncoding.swift`).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    // A storefront's product request: a browser's usual fields.
    let request = ByteBuffer(string: [
        "GET /catalog/products/4217?currency=EUR&lang=de HTTP/1.1",
        "Host: shop.example.com",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Accept: application/json",
        "Accept-Language: de-DE,de;q=0.9,en;q=0.8",
        "Accept-Encoding: gzip, deflate, br",
        "Connection: keep-alive",
        "", "",
    ].joined(separator: "\r\n"))

    Benchmark("request-head parse (storefront GET, 6 fields)") { benchmark in
        var decoder = RequestDecoder()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            decoder.append(request)
            blackHole(try? decoder.next())  // head
            blackHole(try? decoder.next())  // end
        }
        benchmark.stopMeasurement()
    }

    Benchmark("request-head parse, NIO's HTTPRequestDecoder (storefront GET, 6 fields)") { benchmark in
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            _ = try? channel.writeInbound(request)
            blackHole(try? channel.readInbound(as: HTTPServerRequestPart.self))  // head
            blackHole(try? channel.readInbound(as: HTTPServerRequestPart.self))  // end
        }
        benchmark.stopMeasurement()
        _ = try? channel.finish()
    }

    // What a stored response's head costs once, when it is stored: status line and its fields.
    let fields: [(String, String)] = [
        ("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "public, max-age=300"),
        ("ETag", "\"p4217-v12\""), ("Last-Modified", "Tue, 24 Nov 2026 08:12:44 GMT"), ("Vary", "Accept-Encoding"),
        ("Date", "Thu, 26 Nov 2026 12:00:00 GMT"), ("X-Request-Id", "9f2c4e1a-5b7d-4c3e-8a1f-2d6b9e0c7a54"),
    ]
    Benchmark("response-head encode (stored head: status + 8 fields)") { benchmark in
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            buffer.writeStatusLine(.ok)
            for (name, value) in fields { buffer.writeHeader(name, value) }
            buffer.writeHeader("Content-Length", decimal: 2048)
            blackHole(buffer.readableBytes)
        }
        benchmark.stopMeasurement()
    }

    // What every hit writes after the stored head (RequestPipeline.deliver), as it writes it.
    Benchmark("response-head encode (per-hit tail: Age, Cache-Status, X-Cache)") { benchmark in
        let allocator = ByteBufferAllocator()
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            var tail = allocator.buffer(capacity: 128)
            tail.writeHitFields(age: index & 255, verdict: .hit(ttl: 300 - index & 255), keepAlive: true, isHTTP10: false)
            blackHole(tail)
        }
        benchmark.stopMeasurement()
    }
}

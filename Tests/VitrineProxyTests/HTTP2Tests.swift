import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import VitrineConfig
@testable import VitrineNode
@testable import VitrineProxy

/// HTTP/2 on the TLS listener: every stream goes through the request path and the cache that
/// serve HTTP/1.1, with their limits, many at once on one connection; the attacks on HTTP/2
/// itself are cut off. One test at a time: they open many streams, and the suites beside them
/// (the shared tier's, with their command timeouts) share the two cores.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct HTTP2Tests {
    static func withH2(
        configure: @escaping (inout VitrineConfiguration) -> Void = { _ in },
        _ body: (ProxyFixture, EchoOrigin, Int) async throws -> Void
    ) async throws {
        try await OperateTests.withEcho(configure: { configuration in
            configuration.tls = TestCertificates.listener("shop")
            configure(&configuration)
        }) { fixture, echo in
            try await body(fixture, echo, try #require(fixture.tlsPort))
        }
    }

    @Test func h2IsNegotiatedAndServedFromTheSameCache() async throws {
        try await Self.withH2 { fixture, echo, port in
            let client = try await HTTP2TestClient.connect(port: port)
            #expect(client.negotiated == "h2")
            let first = try await client.request("GET", "/echo/h2?h=ETag:%22v1%22")
            #expect(first.status == 200)
            #expect(first.text.hasPrefix("GET /echo/h2?h=ETag:%22v1%22\n"))
            #expect(first.text.contains("\nx-forwarded-proto: https\n"))
            #expect(first.header("connection") == nil && first.header("transfer-encoding") == nil, "no connection-specific fields in h2")
            #expect(first.header("content-length") == String(first.body.count))
            let second = try await client.request("GET", "/echo/h2?h=ETag:%22v1%22")
            #expect(second.header("x-cache") == "HIT" && second.body == first.body)
            // What framing changes: a HEAD has no body, a 304 none, a range its slice.
            let head = try await client.request("HEAD", "/echo/h2?h=ETag:%22v1%22")
            #expect(head.status == 200 && head.body.isEmpty && head.header("content-length") == String(first.body.count))
            let notModified = try await client.request("GET", "/echo/h2?h=ETag:%22v1%22", headers: [("if-none-match", "\"v1\"")])
            #expect(notModified.status == 304 && notModified.body.isEmpty)
            let range = try await client.request("GET", "/echo/h2?h=ETag:%22v1%22", headers: [("range", "bytes=0-3")])
            #expect(range.status == 206 && range.text == "GET ")
            #expect(echo.requests == 1)
            // An HTTP/1.1 client of the same listener gets the same entry.
            let http1 = try await WireConnection.with(port: port, tls: (try TestCertificates.client(), "shop.example")) {
                try await $0.request("GET", "/echo/h2?h=ETag:%22v1%22")
            }
            #expect(http1.header("X-Cache") == "HIT" && http1.body == first.body)
            await client.close()
        }
    }

    @Test func manyStreamsAtOnceOnOneConnectionEachGetTheirOwnAnswer() async throws {
        try await Self.withH2 { fixture, echo, port in
            let client = try await HTTP2TestClient.connect(port: port)
            let answers = try await withThrowingTaskGroup(of: (Int, HTTP2TestClient.Response).self) { group in
                for index in 0..<100 {
                    group.addTask { (index, try await client.request("GET", "/echo/stream\(index)?delay=5&pad=\(index * 100)")) }
                }
                var answers: [Int: HTTP2TestClient.Response] = [:]
                for try await (index, answer) in group { answers[index] = answer }
                return answers
            }
            for index in 0..<100 {
                let answer = try #require(answers[index])
                #expect(answer.status == 200)
                #expect(answer.text.hasPrefix("GET /echo/stream\(index)?delay=5&pad=\(index * 100)\n"), "stream \(index) got another's answer")
            }
            // The same URL on many streams at once: collapsed into one fetch.
            let before = echo.requests
            let same = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<40 { group.addTask { try await client.request("GET", "/echo/same?delay=200").status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(same.allSatisfy { $0 == 200 } && same.count == 40)
            #expect(echo.requests - before == 1)
            await client.close()
        }
    }

    @Test func aRequestBodyOverH2IsFramedByTheProxy() async throws {
        try await Self.withH2 { _, _, port in
            let client = try await HTTP2TestClient.connect(port: port)
            // No content-length: the stream's end ends the body.
            let unsized = try await client.request("POST", "/echo/write", body: Array("{\"a\":1}".utf8))
            #expect(unsized.status == 200)
            #expect(unsized.text.hasSuffix("\n{\"a\":1}"))
            #expect(unsized.text.contains("\ncontent-length: 7\n") || unsized.text.contains("\ntransfer-encoding: chunked\n"))
            let sized = try await client.request("POST", "/echo/write", headers: [("content-length", "2")], body: Array("{}".utf8))
            #expect(sized.status == 200 && sized.text.hasSuffix("\n{}"))
            // More than the stream's and the connection's first windows (64 KiB each): the
            // proxy opens them again as the body is forwarded, or the upload stalls.
            let large = Array(repeating: UInt8(ascii: "x"), count: 300_000)
            let uploaded = try await client.request("POST", "/echo/write", body: large)
            #expect(uploaded.status == 200 && uploaded.body.suffix(300_000) == large[...])
            await client.close()
        }
    }

    @Test func aFieldThatWouldBreakAnHTTP1LineNeverReachesTheOrigin() async throws {
        try await Self.withH2 { _, echo, port in
            let client = try await HTTP2TestClient.connect(port: port, validateHeaders: false)
            // swift-nio-http2 finds the field malformed: the stream, or the whole connection, ends.
            let answer = try? await client.request("GET", "/echo/smuggle", headers: [("x-a", "1\r\ncontent-length: 5")])
            #expect(answer == nil || answer?.status != 200)
            #expect(echo.requests == 0)
            await client.close()
            // The listener carries on.
            let next = try await HTTP2TestClient.connect(port: port)
            let clean = try await next.request("GET", "/echo/clean")
            #expect(clean.status == 200)
            await next.close()
        }
    }

    @Test func streamsOpenedAndResetInALoopAreCutOffWithGOAWAY() async throws {
        try await Self.withH2 { _, _, port in
            let tls = try TestCertificates.client(applicationProtocols: ["h2"])
            let goAway = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: HTTP2ErrorCode.self)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "shop.example"))
                        // The proxy answers each stream at once, often after the client reset it: the
                        // client keeps every stream it reset in mind, so that those answers are not
                        // errors to it (by default it keeps 32, then answers them with GOAWAY itself).
                        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                        configuration.maximumRecentlyResetStreams = 1000
                        try channel.pipeline.syncOperations.addHandler(
                            NIOHTTP2Handler(mode: .client, frameDelegate: nil, connectionConfiguration: configuration))
                        try channel.pipeline.syncOperations.addHandler(GoAwayWatcher(goAway: goAway))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            // CVE-2023-44487: open a stream and cancel it at once, over and over. (A path no
            // route serves: the proxy answers each itself, and no origin is kept busy.)
            let fields = HPACKHeaders([(":method", "GET"), (":path", "/nowhere"), (":scheme", "https"), (":authority", "shop.example")])
            try await channel.eventLoop.submit {
                for index in 0..<500 {
                    let stream = HTTP2StreamID(1 + 2 * index)
                    channel.write(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: fields, endStream: true))), promise: nil)
                    channel.write(HTTP2Frame(streamID: stream, payload: .rstStream(.cancel)), promise: nil)
                }
                channel.flush()
            }.get()
            let code = try await goAway.futureResult.get()
            #expect(code == .enhanceYourCalm)
            // And the connection is closed by the server (else the test closes it in 10 s).
            let closedByTheTest = Atomic(false)
            let closing = channel.eventLoop.scheduleTask(in: .seconds(10)) {
                closedByTheTest.store(true, ordering: .relaxed)
                channel.close(promise: nil)
            }
            try await channel.closeFuture.get()
            closing.cancel()
            let closedByServer = !closedByTheTest.load(ordering: .relaxed)
            #expect(closedByServer, "the server closes the connection after its GOAWAY")
        }
    }

    @Test func http2CanBeTurnedOffForTheListener() async throws {
        try await Self.withH2(configure: { $0.tls?.http2 = false }) { _, _, port in
            let client = try TestCertificates.client(applicationProtocols: ["h2", "http/1.1"])
            let alpn = try await TestCertificates.handshake(port: port, serverName: "shop.example", context: client).alpn
            #expect(alpn == "http/1.1")
        }
    }

    /// Tells the first GOAWAY's error code; fails if the connection closes, or 10 s pass, first.
    private final class GoAwayWatcher: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        let goAway: EventLoopPromise<HTTP2ErrorCode>
        var told = false
        init(goAway: EventLoopPromise<HTTP2ErrorCode>) { self.goAway = goAway }

        private func tell(_ result: Result<HTTP2ErrorCode, any Error>) {
            guard !told else { return }
            told = true
            goAway.completeWith(result)
        }

        func channelActive(context: ChannelHandlerContext) {
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { [self] in tell(.failure(ChannelError.connectTimeout(.seconds(10)))) }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .goAway(_, let code, _) = unwrapInboundIn(data).payload { tell(.success(code)) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            tell(.failure(ChannelError.ioOnClosedChannel))
        }

        /// Answers to streams this client has reset already are errors to its HTTP/2 handler:
        /// expected here, and no reason to close.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }
}

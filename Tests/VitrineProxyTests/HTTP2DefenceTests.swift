import NIOCore
import Testing
import VitrineConfig
@testable import VitrineNode
@testable import VitrineProxy

/// HTTP/2 connections that misbehave, tried from outside with frames written as bytes: each is
/// closed, so that no client holds a `max_connections` slot for ever.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct HTTP2DefenceTests {
    /// RFC 9113 §5.4.1: after a GOAWAY for a connection error, the connection is closed. A header
    /// block that opens with a dynamic table size update above the advertised 4,096 bytes is a
    /// COMPRESSION_ERROR (RFC 7541 §6.3).
    @Test func aConnectionErrorIsAnsweredWithGOAWAYAndClosed() async throws {
        try await HTTP2Tests.withH2 { _, echo, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            // A table size update to 65,535 (5-bit prefix, then 65,504 as a varint), then
            // `:method: GET` from the static table.
            let block: [UInt8] = [0x3F, 0xE0, 0xFF, 0x03, 0x82]
            try await connection.send(
                RawHTTP2Connection.preface + RawHTTP2Connection.frame(type: 0x1, flags: 0x5, stream: 1, payload: block))
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(connection.goAwayCodes.contains(0x9), "GOAWAY with COMPRESSION_ERROR, got \(connection.goAwayCodes)")
            #expect(closed, "the server closes the connection after a connection error's GOAWAY")
            #expect(echo.requests == 0)
        }
    }

    /// A connection that opens no stream is idle from its start: closed after `keepalive`, with
    /// GOAWAY, as one whose streams have all ended.
    @Test func aConnectionThatNeverOpensAStreamIsClosedWhenIdle() async throws {
        try await HTTP2Tests.withH2(configure: { $0.timeouts.keepalive = .milliseconds(500) }) { _, _, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            try await connection.send(RawHTTP2Connection.preface)
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(closed, "an idle h2 connection is closed after keepalive")
            #expect(!connection.goAwayCodes.isEmpty && connection.goAwayCodes.allSatisfy { $0 == 0 }, "a graceful GOAWAY (NO_ERROR) first")
        }
    }

    /// CVE-2024-27316: a header block that never ends, one CONTINUATION frame after another,
    /// is cut off with GOAWAY (ENHANCE_YOUR_CALM) after a few, and the connection closed: the
    /// server never buffers a block that grows for ever.
    @Test func aContinuationFloodIsCutOff() async throws {
        try await HTTP2Tests.withH2 { _, echo, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            let start = RawHTTP2Connection.frame(type: 0x1, flags: 0x1, stream: 1, payload: RawHTTP2Connection.literal(":method", "GET"))
            var flood = RawHTTP2Connection.preface + start
            for index in 0..<64 {
                flood += RawHTTP2Connection.frame(type: 0x9, flags: 0, stream: 1, payload: RawHTTP2Connection.literal("x-\(index)", "yyyy"))
            }
            try await connection.send(flood)
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(connection.goAwayCodes.contains(0xB), "GOAWAY with ENHANCE_YOUR_CALM, got \(connection.goAwayCodes)")
            #expect(closed)
            #expect(echo.requests == 0)
        }
    }

    /// A flood of PING frames (each of which the server must answer) is cut off.
    @Test func aPingFloodIsCutOff() async throws {
        try await HTTP2Tests.withH2 { _, _, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            var flood = RawHTTP2Connection.preface
            for index in 0..<1000 {
                flood += RawHTTP2Connection.frame(type: 0x6, flags: 0, stream: 0, payload: [0, 0, 0, 0, 0, 0, UInt8(index >> 8), UInt8(index & 0xFF)])
            }
            try await connection.send(flood)
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(connection.goAwayCodes.contains(0xB), "GOAWAY with ENHANCE_YOUR_CALM, got \(connection.goAwayCodes)")
            #expect(closed)
        }
    }

    /// Empty DATA frames cost the server work and the client nothing: more than one in a row is
    /// a flood.
    @Test func anEmptyDataFrameFloodIsCutOff() async throws {
        try await HTTP2Tests.withH2 { _, _, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            var flood = RawHTTP2Connection.preface + RawHTTP2Connection.get("/echo/upload?delay=2000", stream: 1, endStream: false)
            for _ in 0..<100 { flood += RawHTTP2Connection.frame(type: 0x0, flags: 0, stream: 1, payload: []) }
            try await connection.send(flood)
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(connection.goAwayCodes.contains(0xB), "GOAWAY with ENHANCE_YOUR_CALM, got \(connection.goAwayCodes)")
            #expect(closed)
        }
    }

    /// `limits.max_concurrent_streams` streams are served at once. A client that opens more than
    /// it was told it may breaks the protocol: swift-nio-http2 answers with GOAWAY
    /// (PROTOCOL_ERROR), and the connection is closed; the origin never sees more than the limit.
    @Test func aClientPastTheConcurrencyLimitIsCutOff() async throws {
        try await HTTP2Tests.withH2(configure: { $0.limits.maxConcurrentStreams = 4 }) { _, echo, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            try await connection.send(RawHTTP2Connection.preface)
            // The server's SETTINGS (and its limit) are in effect once acknowledged: wait for an
            // answer on a first stream before opening the rest.
            try await connection.send(RawHTTP2Connection.get("/echo/first", stream: 1))
            try await SharedTierTests.waitUntil(seconds: 10) { connection.answered.contains(1) }
            var streams: [UInt8] = []
            for index in 0..<6 { streams += RawHTTP2Connection.get("/echo/slow\(index)?delay=300", stream: UInt32(3 + 2 * index)) }
            try await connection.send(streams)
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(connection.goAwayCodes.contains(0x1), "GOAWAY with PROTOCOL_ERROR, got \(connection.goAwayCodes)")
            #expect(closed)
            #expect(echo.requests <= 5, "the first stream, then at most the limit")
        }
    }

    /// A drain sends every HTTP/2 connection a graceful GOAWAY, and closes it once its streams
    /// are done.
    @Test func aDrainSendsGOAWAYAndCloses() async throws {
        try await HTTP2Tests.withH2(configure: { $0.server.drainDelay = .zero }) { fixture, _, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            try await connection.send(RawHTTP2Connection.preface + RawHTTP2Connection.get("/echo/before-drain", stream: 1))
            try await SharedTierTests.waitUntil(seconds: 10) { connection.answered.contains(1) }
            let drain = Task { await fixture.node.drain() }
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(closed)
            #expect(!connection.goAwayCodes.isEmpty && connection.goAwayCodes.allSatisfy { $0 == 0 })
            await drain.value
        }
    }

    /// A drain lets a stream already open finish: GOAWAY and its PING first, and the connection
    /// closes once the stream's answer is out, not before.
    @Test func aDrainLetsAnOpenStreamFinish() async throws {
        try await HTTP2Tests.withH2(configure: { $0.server.drainDelay = .zero }) { fixture, echo, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            try await connection.send(RawHTTP2Connection.preface + RawHTTP2Connection.get("/echo/slow-drain?delay=700", stream: 1))
            try await SharedTierTests.waitUntil(seconds: 10) { echo.requests == 1 }
            let drain = Task { await fixture.node.drain() }
            let closed = await connection.closedByServer(within: .seconds(10))
            #expect(closed)
            #expect(connection.answered.contains(1), "the open stream was answered before the close")
            #expect(!connection.goAwayCodes.isEmpty && connection.goAwayCodes.allSatisfy { $0 == 0 })
            await drain.value
        }
    }

    /// A client that grants no window (SETTINGS_INITIAL_WINDOW_SIZE 0) cannot be sent an answer's
    /// body: the stream, answered and flushed but held by flow control, is reset after
    /// `timeouts.send` rather than held open (and its connection with it) for ever.
    @Test func aStreamHeldOpenByAZeroWindowIsResetAfterTheSendTimeout() async throws {
        try await HTTP2Tests.withH2(configure: { $0.timeouts.send = .milliseconds(500) }) { _, echo, port in
            // In the cache first, so that the held stream is a hit (no fetch keeps it busy).
            let client = try await HTTP2TestClient.connect(port: port)
            #expect(try await client.request("GET", "/echo/zero-window?pad=4000").status == 200)
            await client.close()
            let connection = try await RawHTTP2Connection.connect(port: port)
            let zeroWindow = RawHTTP2Connection.frame(type: 0x4, flags: 0, stream: 0, payload: [0x00, 0x04, 0, 0, 0, 0])
            let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + zeroWindow
                + RawHTTP2Connection.frame(type: 0x4, flags: 0x1, stream: 0, payload: [])
            try await connection.send(preface + RawHTTP2Connection.get("/echo/zero-window?pad=4000", stream: 1))
            try await SharedTierTests.waitUntil(seconds: 10) { connection.resets[1] != nil }
            #expect(connection.resets[1] == 0x8, "RST_STREAM with CANCEL: \(connection.resets)")
            #expect(connection.answered.contains(1), "its HEADERS went out; its DATA could not")
            #expect(echo.requests == 1)
            await connection.close()
        }
    }

    /// A client that grants no more window than the first 64 KiB holds its stream's origin, not
    /// the proxy's memory: once 64 KiB wait unsent on the stream the origin is not read further
    /// (counted as a pause), so its answer stops far short of its end.
    @Test func aStreamWithNoWindowLeftPausesItsOrigin() async throws {
        try await HTTP2Tests.withH2(configure: { $0.timeouts.send = .seconds(60) }) { fixture, echo, port in
            let connection = try await RawHTTP2Connection.connect(port: port)
            // It reads every frame, and never sends WINDOW_UPDATE.
            try await connection.send(RawHTTP2Connection.preface + RawHTTP2Connection.get("/echo/stream?stream=512", stream: 1))
            try await SharedTierTests.waitUntil(seconds: 30) { fixture.node.stats.value(.originPauses) > 0 || echo.streamsEnded > 0 }
            #expect(fixture.node.stats.value(.originPauses) > 0, "the origin was never paused")
            #expect(echo.streamsEnded == 0)
            #expect(echo.streamed < 128 << 20, "\(echo.streamed) bytes taken from the origin for a stream with no window")
            // Its HEADERS went out (and reach the client).
            try await SharedTierTests.waitUntil(seconds: 10) { connection.answered.contains(1) }
            await connection.close()
        }
    }
}

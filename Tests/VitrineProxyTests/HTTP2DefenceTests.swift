import NIOCore
import Testing
import VitrineConfig
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
}

import Foundation
import NIOCore
import NIOPosix
import Testing
import VitrineTestSupport

/// The real Redis and Postgres that `make test` starts are reachable. In CI a missing server is a
/// failure, never a skip: later tiers (the Redis L2, the change feed) test against them.
@Suite(.timeLimit(.minutes(1)))
struct TestServicesTests {
    static let environment = ProcessInfo.processInfo.environment
    static let inCI = environment["CI"] == "true"

    static func hostAndPort(_ url: String) -> (String, Int)? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        var authority = url[schemeEnd.upperBound...].prefix { $0 != "/" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) else { return nil }
        return (String(authority[..<colon]), port)
    }

    /// Sends `request` and returns the first bytes answered.
    static func exchange(_ url: String, _ request: [UInt8]) async throws -> [UInt8] {
        let (host, port) = try #require(hostAndPort(url))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: request))
            var iterator = inbound.makeAsyncIterator()
            return Array(try #require(try await iterator.next()).readableBytesView)
        }
    }

    /// A server the tests start (a cluster's Redis, Postgres through pg_ctl) holds none of the
    /// test process's hundreds of sockets: they would count against its own descriptor limit.
    @Test func aCommandTheTestsRunInheritsOnlyItsStandardDescriptors() async throws {
        let open = try await TestCommand.run(["sh", "-c", "ls /proc/$$/fd"])
        #expect(open.split(separator: "\n").sorted() == ["0", "1", "2"], "\(open)")
    }

    @Test func redisAnswersPing() async throws {
        guard let url = Self.environment["VITRINE_TEST_REDIS_URL"] else {
            if Self.inCI { Issue.record("VITRINE_TEST_REDIS_URL is not set: run the tests with `make test`") }
            return
        }
        let reply = try await Self.exchange(url, Array("*1\r\n$4\r\nPING\r\n".utf8))
        #expect(String(decoding: reply, as: UTF8.self) == "+PONG\r\n")
    }

    @Test func postgresAnswersTheSSLProbe() async throws {
        guard let url = Self.environment["VITRINE_TEST_POSTGRES_URL"] else {
            if Self.inCI { Issue.record("VITRINE_TEST_POSTGRES_URL is not set: run the tests with `make test`") }
            return
        }
        // SSLRequest (length 8, code 80877103): a Postgres server answers one byte, 'S' or 'N'.
        let reply = try await Self.exchange(url, [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F])
        #expect(reply == [UInt8(ascii: "N")] || reply == [UInt8(ascii: "S")])
    }
}

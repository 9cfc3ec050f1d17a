import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import VitrineRedis

/// Against the real redis-server that `make test` starts (`VITRINE_TEST_REDIS_URL`). In CI a
/// missing server is a failure.
@Suite(.timeLimit(.minutes(1)))
struct RedisServerTests {
    static func url() -> RedisURL? {
        guard let text = ProcessInfo.processInfo.environment["VITRINE_TEST_REDIS_URL"] else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("VITRINE_TEST_REDIS_URL is not set: run the tests with `make test`")
            }
            return nil
        }
        return try? RedisURL(parsing: text)
    }

    static var loop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }

    @Test func setGetAndErrors() async throws {
        guard let url = Self.url() else { return }
        let connection = try await RedisConnection.connect(to: url, on: Self.loop)
        let key = "vitrine-test:\(UUID().uuidString)"
        #expect(try await connection.send(["SET", .string(key), "value", "PX", "60000"]).get() == .simpleString("OK"))
        #expect(try await connection.send(["GET", .string(key)]).get().string == "value")
        #expect(try await connection.send(["GET", .string(key + ":missing")]).get() == .null)
        await #expect(throws: RedisError.self) { try await connection.send(["INCR", .string(key)]).get() }
        // The connection is still usable after an error reply.
        #expect(try await connection.send(["DEL", .string(key)]).get() == .integer(1))
        await connection.close()
    }

    @Test func tenThousandCommandsInFlightComeBackInOrder() async throws {
        guard let url = Self.url() else { return }
        // A loop of its own, so that 10,000 commands do not hold up the tests sharing the
        // singleton's loops.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let loop = group.next()
        let connection = try await RedisConnection.connect(to: url, on: loop)
        let prefix = "vitrine-test:\(UUID().uuidString):"
        // One pipeline of 10,000, its replies together.
        let sets = try await connection.pipeline(
            (0..<10_000).map { ["SET", .string(prefix + String($0)), .string("v\($0)"), "PX", "60000"] }).get()
        #expect(sets.count == 10_000 && sets.allSatisfy { $0 == .simpleString("OK") })
        // One command at a time, each with its own future, all sent in one turn of the loop
        // (before any reply is read): each future gets its own key's value.
        let gets = try await loop.submit {
            (0..<10_000).map { connection.send(["GET", .string(prefix + String($0))]) }
        }.get()
        let replies = try await EventLoopFuture.whenAllComplete(gets, on: loop).get()
        for (index, reply) in replies.enumerated() where (try? reply.get())?.string != "v\(index)" {
            Issue.record("reply \(index) was \(reply)")
            break
        }
        await connection.close()
    }

    @Test func aCommandOnAClosedConnectionFailsAtOnce() async throws {
        guard let url = Self.url() else { return }
        let connection = try await RedisConnection.connect(to: url, on: Self.loop)
        await connection.close()
        // Its handler is gone with the channel: nothing would ever answer or time it out.
        await #expect(throws: RedisError.connectionClosed) { try await connection.send(["PING"], timeout: nil).get() }
        await #expect(throws: RedisError.connectionClosed) { try await connection.pipeline([["PING"]]).get() }
        let onTheLoop = try await Self.loop.submit { connection.send(["PING"]) }.get()
        await #expect(throws: RedisError.connectionClosed) { try await onTheLoop.get() }
    }

    @Test func selectsTheDatabaseFromTheURL() async throws {
        guard var url = Self.url() else { return }
        url.database = 3
        let connection = try await RedisConnection.connect(to: url, on: Self.loop)
        let key = "vitrine-test:db:\(UUID().uuidString)"
        _ = try await connection.send(["SET", .string(key), "3", "PX", "60000"]).get()
        url.database = 0
        let other = try await RedisConnection.connect(to: url, on: Self.loop)
        #expect(try await other.send(["GET", .string(key)]).get() == .null)
        #expect(try await connection.send(["GET", .string(key)]).get().string == "3")
        await connection.close()
        await other.close()
    }

    @Test func publishedMessagesReachSubscribers() async throws {
        guard let url = Self.url() else { return }
        let channelName = "vitrine-test:\(UUID().uuidString)"
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let subscription = try await RedisSubscription.subscribe(to: [channelName], url: url, on: Self.loop) { _, payload in
            continuation.yield(String(buffer: payload))
        }
        let publisher = try await RedisConnection.connect(to: url, on: Self.loop)
        // The subscription is confirmed asynchronously: publish until someone listens.
        var receivers: Int64 = 0
        for _ in 0..<100 where receivers == 0 {
            receivers = try await publisher.send(["PUBLISH", .string(channelName), "hello"]).get().integer ?? 0
            if receivers == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        _ = try await publisher.send(["PUBLISH", .string(channelName), "world"]).get()
        var iterator = stream.makeAsyncIterator()
        #expect(await iterator.next() == "hello")
        #expect(await iterator.next() == "world")
        await subscription.close()
        await publisher.close()
    }
}

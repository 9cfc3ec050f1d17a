import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import VitrineRedis
import VitrineTestSupport

/// A redis-server of the test's own, killed and restarted under a client. Serialized: its tests pick free ports and start servers, which must not race each other.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct RedisRecoveryTests {
    /// Starts `redis-server` on `port` and waits until it answers; nil (and an issue in CI) when
    /// it is not installed. A server that exits at once (the port still held a moment after a
    /// kill, on a loaded machine) is started again; the last one's log is quoted in the failure.
    /// `arguments` follow (and override) the defaults; `probe` is the URL the server must answer
    /// PING on (for a TLS server, its `rediss://` URL).
    static func startServer(port: Int, arguments: [String] = [], probe: RedisURL? = nil, in servers: Servers) async throws -> Process? {
        let paths = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let path = paths.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("redis-server is not installed") }
            return nil
        }
        let url = probe ?? RedisURL(host: "127.0.0.1", port: port)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let deadline = ContinuousClock.now + .seconds(10)
        var attempts = 0
        while true {
            attempts += 1
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-redis-\(port)-\(UUID().uuidString).log").path
            defer { try? FileManager.default.removeItem(atPath: log) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", log,
            ] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            servers.started.append(process)
            while process.isRunning && ContinuousClock.now < deadline {
                // A PONG, not just a connection: something else could hold the port a moment.
                if let probe = try? await RedisConnection.connect(to: url, on: loop) {
                    let reply = try? await probe.send(["PING"], timeout: .seconds(1)).get()
                    await probe.close()
                    if reply?.string == "PONG" { return process }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            if ContinuousClock.now >= deadline {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log)"
                Glibc.kill(process.processIdentifier, SIGKILL)
                throw ServerDidNotStart(port: port, attempts: attempts, log: text)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The servers a test started, killed when the test ends however it ends: a failing test
    /// throws past its own kills, and a server left behind outlives the run (it ignores SIGTERM,
    /// blocked in the test runner whose signal mask it inherits).
    final class Servers {
        var started: [Process] = []

        func killAll() {
            // A process still running is not reaped yet: its pid is still its own.
            for process in started where process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        }
    }

    struct ServerDidNotStart: Error, CustomStringConvertible {
        let port: Int
        let attempts: Int
        let log: String
        var description: String { "redis-server on port \(port) did not answer in 10 s (\(attempts) starts); the last one's log:\n\(log)" }
    }

    /// SIGKILL, as a crash would: SIGTERM may be blocked in the child, and `waitUntilExit` spins.
    static func kill(_ process: Process) async throws {
        Glibc.kill(process.processIdentifier, SIGKILL)
        for _ in 0..<300 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// Polls `condition` for up to 10 s: a loaded machine (the whole suite at once) is slow to
    /// start servers and to reconnect.
    static func waitUntil(_ condition: () async -> Bool) async throws -> Bool {
        for _ in 0..<1_000 {
            if await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func clientSurvivesRedisDyingAndComingBack() async throws {
        let port = TestPorts.unused()
        let servers = Servers()
        defer { servers.killAll() }
        guard let first = try await Self.startServer(port: port, in: servers) else { return }
        let url = RedisURL(host: "127.0.0.1", port: port)
        let group = MultiThreadedEventLoopGroup.singleton
        // A timeout a loaded machine (the whole suite at once) cannot miss by accident; calls still
        // fail at once while Redis is gone, as the connection is closed.
        let client = RedisClient(url: url, group: group, commandTimeout: .seconds(1))
        client.warmUp()
        #expect(try await Self.waitUntil { client.state == .up })
        let loop = group.next()
        // `up` is any loop's connection; this loop's may come a moment later on a loaded machine.
        #expect(try await Self.waitUntil { (try? await client.send(["PING"], on: loop))?.string == "PONG" })
        #expect(try await client.send(["SET", "k", "1"], on: loop).string == "OK")

        try await Self.kill(first)
        #expect(try await Self.waitUntil { client.state == .down })
        // While Redis is gone, calls fail fast instead of hanging.
        let started = ContinuousClock.now
        for _ in 0..<20 {
            await #expect(throws: RedisError.self) { try await client.send(["GET", "k"], on: loop) }
        }
        #expect(ContinuousClock.now - started < .seconds(3), "a generous bound: each call fails at once")

        guard let second = try await Self.startServer(port: port, in: servers) else { return }
        #expect(try await Self.waitUntil { client.state == .up }, "the client reconnects by itself")
        #expect(try await Self.waitUntil { (try? await client.send(["PING"], on: loop))?.string == "PONG" })
        await client.shutdown()
        try await Self.kill(second)
    }

    @Test func subscriberResubscribesAfterARestart() async throws {
        let port = TestPorts.unused()
        let servers = Servers()
        defer { servers.killAll() }
        guard let first = try await Self.startServer(port: port, in: servers) else { return }
        let url = RedisURL(host: "127.0.0.1", port: port)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let received = Mutex<[String]>([])
        let restored = Atomic<Int>(0)
        var logger = Logger(label: "vitrine.redis.subscriber-test")
        logger.logLevel = .debug
        let subscriber = RedisSubscriber(
            url: url, channels: ["purges"], eventLoop: loop, logger: logger,
            onMessage: { _, payload in received.withLock { $0.append(String(buffer: payload)) } },
            onResubscribed: { restored.add(1, ordering: .relaxed) })
        subscriber.start()
        #expect(try await Self.waitUntil { subscriber.isSubscribed })
        try await Self.kill(first)
        #expect(try await Self.waitUntil { !subscriber.isSubscribed })
        guard let second = try await Self.startServer(port: port, in: servers) else { return }
        #expect(try await Self.waitUntil { subscriber.isSubscribed && restored.load(ordering: .relaxed) == 1 })
        let publisher = try await RedisConnection.connect(to: url, on: loop)
        #expect(try await Self.waitUntil {
            _ = try? await publisher.send(["PUBLISH", "purges", "after-restart"]).get()
            return received.withLock { $0.contains("after-restart") }
        })
        await publisher.close()
        await subscriber.shutdown()
        try await Self.kill(second)
    }
}

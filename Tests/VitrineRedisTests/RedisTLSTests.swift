import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import VitrineRedis
import VitrineTestSupport

/// `rediss://` against a redis-server of the test's own, listening with TLS only, its certificate
/// signed by a CA made for the test.
@Suite(.timeLimit(.minutes(1)))
struct RedisTLSTests {
    typealias Certificates = TestCertificates

    /// Starts a TLS-only server; returns its `rediss://` URL (trusting the test's CA).
    static func startTLSServer(_ certificates: Certificates, in servers: RedisRecoveryTests.Servers) async throws -> RedisURL? {
        let port = TestPorts.unused()
        let url = RedisURL(host: "127.0.0.1", port: port, tls: true, caCertificatesFile: certificates.ca)
        let arguments = [
            "--port", "0", "--tls-port", String(port), "--tls-cert-file", certificates.certificate, "--tls-key-file", certificates.key,
            "--tls-ca-cert-file", certificates.ca, "--tls-auth-clients", "no",
            // Also on an address the certificate does not name.
            "--bind", "127.0.0.1", "127.0.0.2",
        ]
        guard try await RedisRecoveryTests.startServer(port: port, arguments: arguments, probe: url, in: servers) != nil else { return nil }
        return url
    }

    /// Runs `body` with a TLS server of its own (nothing, and an issue in CI, without redis-server).
    static func withTLSServer(_ body: (RedisURL, any EventLoop) async throws -> Void) async throws {
        let certificates = try await Certificates.make()
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }
        let servers = RedisRecoveryTests.Servers()
        defer { servers.killAll() }
        guard let url = try await startTLSServer(certificates, in: servers) else { return }
        try await body(url, MultiThreadedEventLoopGroup.singleton.next())
    }

    @Test func commandsAndPubSubOverTLS() async throws {
        try await Self.withTLSServer { url, loop in
            // Commands, and a pipeline, on a TLS connection.
            let connection = try await RedisConnection.connect(to: url, on: loop)
            #expect(try await connection.send(["SET", "tls:key", "secret value"]).get() == .simpleString("OK"))
            #expect(try await connection.pipeline([["GET", "tls:key"], ["STRLEN", "tls:key"]]).get() == [.bulkString(ByteBuffer(string: "secret value")), .integer(12)])

            // By name: the name is sent (SNI) and checked against the certificate.
            var byName = url
            byName.host = "localhost"
            let named = try await RedisConnection.connect(to: byName, on: loop)
            #expect(try await named.send(["GET", "tls:key"]).get().string == "secret value")
            await named.close()

            // The client and the subscriber, as a node uses them: one context for all connections.
            let tls = try RedisTLS.context(for: url)
            let client = RedisClient(url: url, group: MultiThreadedEventLoopGroup.singleton, commandTimeout: .seconds(2), tls: tls)
            client.warmUp()
            #expect(try await RedisRecoveryTests.waitUntil { client.state == .up })
            // `up` is any loop's connection: this loop's is waited for too.
            #expect(try await RedisRecoveryTests.waitUntil { (try? await client.send(["PING"], on: loop))?.string == "PONG" })
            #expect(try await client.send(["GET", "tls:key"], on: loop).string == "secret value")
            let received = Mutex<[String]>([])
            let subscriber = RedisSubscriber(
                url: url, channels: ["tls-purges"], eventLoop: loop, tls: tls,
                onMessage: { _, payload in received.withLock { $0.append(String(buffer: payload)) } })
            subscriber.start()
            #expect(try await RedisRecoveryTests.waitUntil { subscriber.isSubscribed })
            #expect(try await RedisRecoveryTests.waitUntil {
                _ = try? await connection.send(["PUBLISH", "tls-purges", "over tls"]).get()
                return received.withLock { $0.contains("over tls") }
            })
            await subscriber.shutdown()
            await client.shutdown()
            await connection.close()
        }
    }

    @Test func anUntrustedOrPlainConnectionIsRefused() async throws {
        try await Self.withTLSServer { url, loop in
            // The system's roots do not know the test's CA: the handshake fails, no command runs.
            var untrusted = url
            untrusted.caCertificatesFile = nil
            await #expect(throws: (any Error).self) {
                let connection = try await RedisConnection.connect(to: untrusted, on: loop)
                _ = try await connection.send(["PING"], timeout: .seconds(2)).get()
            }
            // An address the certificate does not carry (the server listens there too).
            var wrongName = url
            wrongName.host = "127.0.0.2"
            await #expect(throws: (any Error).self) {
                let connection = try await RedisConnection.connect(to: wrongName, on: loop)
                _ = try await connection.send(["PING"], timeout: .seconds(2)).get()
            }
            // Plain RESP to a TLS port gets no answer.
            var plain = url
            plain.tls = false
            plain.caCertificatesFile = nil
            await #expect(throws: (any Error).self) {
                let connection = try await RedisConnection.connect(to: plain, on: loop, commandTimeout: .milliseconds(500))
                _ = try await connection.send(["PING"], timeout: .milliseconds(500)).get()
            }
        }
    }
}

import Foundation
import NIOSSL
import Synchronization
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineNode
@testable import VitrineProxy

/// The TLS listener: handshakes, SNI, versions and suites, certificate reloads, and requests
/// over it going through the same request path and cache as cleartext ones.
@Suite(.timeLimit(.minutes(1)))
struct TLSListenerTests {
    static func withTLS(
        _ settings: TLSSettings, reload: ConfigReloader? = nil,
        _ body: (ProxyFixture, EchoOrigin, Int) async throws -> Void
    ) async throws {
        try await OperateTests.withEcho(reload: reload, configure: { $0.tls = settings }) { fixture, echo in
            try await body(fixture, echo, try #require(fixture.tlsPort))
        }
    }

    /// The names on the certificate the listener on `port` presents for `serverName`.
    static func presented(_ port: Int, _ serverName: String?) async throws -> [String] {
        TestCertificates.names(try await TestCertificates.handshake(port: port, serverName: serverName).certificate)
    }

    /// A returning client resumes its session (a TLS 1.3 ticket, a TLS 1.2 session), with no
    /// full handshake: `openssl s_client` saves the session of a first connection and offers it
    /// on a second, and says whether the server took it.
    @Test(arguments: ["-tls1_3", "-tls1_2"])
    func aReturningClientResumesItsSession(version: String) async throws {
        try await Self.withTLS(TestCertificates.listener("shop")) { _, _, port in
            let session = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-session-\(UUID().uuidString).pem").path
            defer { try? FileManager.default.removeItem(atPath: session) }
            // One request each, answered before the server closes: in TLS 1.3 the tickets come
            // after the handshake, ahead of the answer.
            let first = try Self.openSSL(["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "shop.example", version, "-ign_eof", "-sess_out", session])
            #expect(first.contains("New, TLSv1"), "a full handshake first")
            let second = try Self.openSSL(["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "shop.example", version, "-ign_eof", "-sess_in", session])
            #expect(second.contains("Reused, TLSv1"), "resumed: \(second.split(separator: "\n").filter { $0.contains("TLSv1") })")
        }
    }

    /// Runs `openssl` with a request that closes the connection on its standard input; its output.
    static func openSSL(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data("GET /nowhere HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n".utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func aRequestOverTLSIsServedAndTheOriginHearsHTTPS() async throws {
        try await Self.withTLS(TestCertificates.listener("shop")) { fixture, echo, port in
            let client = try TestCertificates.client()
            let (first, second) = try await WireConnection.with(port: port, tls: (client, "shop.example")) { connection in
                (try await connection.request("GET", "/echo/tls"), try await connection.request("GET", "/echo/tls"))
            }
            #expect(first.status == 200)
            #expect(first.text.contains("\nx-forwarded-proto: https\n"))
            #expect(second.header("X-Cache") == "HIT", "the same cache serves TLS connections")
            let clear = try await fixture.get("/echo/clear")
            #expect(clear.text.contains("\nx-forwarded-proto: http\n"))
            #expect(echo.requests == 2)
        }
    }

    @Test func whatWasFetchedForHTTPIsNotServedOverHTTPSNorTheOtherWayRound() async throws {
        // The origin was told `X-Forwarded-Proto: http`: its answer (a redirect to https, say)
        // may be wrong for a TLS client. The scheme is part of the key, as nginx's default
        // `$scheme$proxy_host$request_uri` and CDNs' keys have it.
        try await Self.withTLS(TestCertificates.listener("shop")) { fixture, echo, port in
            let client = try TestCertificates.client()
            let clear = try await fixture.get("/echo/both")
            #expect(clear.text.contains("\nx-forwarded-proto: http\n"))
            let secure = try await WireConnection.with(port: port, tls: (client, "shop.example")) { try await $0.request("GET", "/echo/both") }
            #expect(secure.text.contains("\nx-forwarded-proto: https\n"), "fetched for https, not served from the http entry")
            #expect(echo.requests == 2)
            #expect(try await fixture.get("/echo/both").header("X-Cache") == "HIT")
            let again = try await WireConnection.with(port: port, tls: (client, "shop.example")) { try await $0.request("GET", "/echo/both") }
            #expect(again.header("X-Cache") == "HIT" && again.text.contains("\nx-forwarded-proto: https\n"))
            #expect(echo.requests == 2)
            // One purge of the URL purges both.
            let purge = try await fixture.admin("POST", "/purge", body: #"{"keys":["/echo/both"]}"#)
            #expect(purge.status == 200)
            #expect(try await fixture.get("/echo/both").header("X-Cache") != "HIT")
            let afterPurge = try await WireConnection.with(port: port, tls: (client, "shop.example")) { try await $0.request("GET", "/echo/both") }
            #expect(afterPurge.header("X-Cache") != "HIT", "the https entry is purged with its URL")
            #expect(echo.requests == 4)
        }
    }

    @Test func sniPicksTheCertificateByNameAndTheFirstOneOtherwise() async throws {
        try await Self.withTLS(TestCertificates.listener("shop", "other")) { _, _, port in
            try #expect(await Self.presented(port, "www.shop.example").contains("shop.example"))
            try #expect(await Self.presented(port, "other.example").contains("other.example"))
            try #expect(await Self.presented(port, "eu.other.example").contains("*.other.example"))
            // No name, or a name no certificate claims: the first certificate answers.
            try #expect(await Self.presented(port, nil).contains("shop.example"))
            await #expect(throws: (any Error).self, "unknown.example gets shop's certificate, which the client refuses") {
                try await TestCertificates.handshake(port: port, serverName: "unknown.example")
            }
        }
    }

    @Test func aClientRefusesAWrongNameOrAnExpiredCertificate() async throws {
        try await Self.withTLS(TestCertificates.listener("shop")) { _, _, port in
            await #expect(throws: NIOSSLExtraError.self) { try await TestCertificates.handshake(port: port, serverName: "other.example") }
            // The listener carries on after a refused handshake.
            let client = try TestCertificates.client(applicationProtocols: ["http/1.1"])
            let alpn = try await TestCertificates.handshake(port: port, serverName: "shop.example", context: client).alpn
            #expect(alpn == "http/1.1")
        }
        try await Self.withTLS(TestCertificates.listener("expired")) { _, _, port in
            await #expect(throws: NIOSSLError.self) { try await TestCertificates.handshake(port: port, serverName: "expired.example") }
        }
    }

    @Test func oldVersionsAndSuitesWithoutForwardSecrecyAreRefused() async throws {
        var settings = TestCertificates.listener("shop")
        try await Self.withTLS(settings) { _, _, port in
            // TLS 1.2 with ECDHE and AES-GCM is fine; RSA key exchange or CBC are not offered.
            let modern = try TestCertificates.client(maximumVersion: .tlsv12, cipherSuites: "ECDHE-RSA-AES128-GCM-SHA256")
            _ = try await TestCertificates.handshake(port: port, serverName: "shop.example", context: modern)
            for suite in ["AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"] {
                let old = try TestCertificates.client(maximumVersion: .tlsv12, cipherSuites: suite)
                await #expect(throws: (any Error).self, "\(suite)") { try await TestCertificates.handshake(port: port, serverName: "shop.example", context: old) }
            }
            let tls11 = try TestCertificates.client(maximumVersion: .tlsv11)
            await #expect(throws: (any Error).self) { try await TestCertificates.handshake(port: port, serverName: "shop.example", context: tls11) }
        }
        settings.minimumVersion = .tls13
        try await Self.withTLS(settings) { _, _, port in
            let tls12 = try TestCertificates.client(maximumVersion: .tlsv12)
            await #expect(throws: (any Error).self) { try await TestCertificates.handshake(port: port, serverName: "shop.example", context: tls12) }
            _ = try await TestCertificates.handshake(port: port, serverName: "shop.example")
        }
    }

    @Test func certificatesAreReadAgainWhenTheirFilesChange() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        /// Puts `name`'s certificate and key in place as a renewal tool does: written aside, renamed in.
        func install(_ name: String) throws {
            for (source, target) in [(TestCertificates.files(name).certificate, "cert.pem"), (TestCertificates.files(name).key, "key.pem")] {
                try? FileManager.default.removeItem(atPath: "\(directory)/\(target).new")
                try FileManager.default.copyItem(atPath: source, toPath: "\(directory)/\(target).new")
                _ = rename("\(directory)/\(target).new", "\(directory)/\(target)")
            }
        }
        try install("shop")
        var settings = TLSSettings(
            listen: ListenAddress(host: "127.0.0.1", port: 0),
            certificates: [CertificateFiles(certificate: "\(directory)/cert.pem", key: "\(directory)/key.pem")])
        settings.checkInterval = .milliseconds(100)
        try await Self.withTLS(settings) { _, _, port in
            try #expect(await Self.presented(port, nil).contains("shop.example"))
            try install("other")
            try await ListingsTests.waitUntil(seconds: 5) { try await Self.presented(port, nil).contains("other.example") }
            // A half-written renewal (a certificate without its key) does not load: the
            // running certificate keeps serving.
            try Data("not a key".utf8).write(to: URL(fileURLWithPath: "\(directory)/key.pem"))
            try await Task.sleep(for: .milliseconds(400))
            try #expect(await Self.presented(port, "other.example").contains("other.example"))
        }
    }

    @Test func aConfigReloadSwapsCertificatesAndRefusesOnesThatDoNotLoad() async throws {
        let next = Mutex<TLSSettings>(TestCertificates.listener("shop"))
        let base = Mutex<VitrineConfiguration?>(nil)
        let reloader = ConfigReloader {
            var configuration = base.withLock { $0 }!
            configuration.tls = next.withLock { $0 }
            return configuration
        }
        try await OperateTests.withEcho(reload: reloader, configure: { configuration in
            configuration.tls = TestCertificates.listener("shop")
            base.withLock { $0 = configuration }
        }) { fixture, _ in
            let port = try #require(fixture.tlsPort)
            next.withLock { $0 = TestCertificates.listener("other") }
            let applied = fixture.node.reload()
            #expect(applied.applied && applied.changed == ["tls"])
            try #expect(await Self.presented(port, nil).contains("other.example"))
            next.withLock { $0 = TLSSettings(listen: $0.listen, certificates: [CertificateFiles(certificate: TestCertificates.files("shop").certificate, key: TestCertificates.files("other").key)]) }
            let refused = fixture.node.reload()
            #expect(!refused.applied)
            #expect(refused.error?.contains("tls.certificates") == true)
            try #expect(await Self.presented(port, nil).contains("other.example"))
        }
    }

    @Test func aClientThatNeverFinishesItsHandshakeIsCutOff() async throws {
        // Without a bound, a TLS connection that never sends (or never ends) its hello would be
        // held forever: the request path's timeouts start only once the handshake is done.
        try await OperateTests.withEcho(configure: { configuration in
            configuration.tls = TestCertificates.listener("shop")
            // Two seconds: a handshake on a machine running every suite at once has taken more
            // than half a second (the last check below then failed on a closed channel).
            configuration.timeouts.clientHeader = .seconds(2)
        }) { fixture, _ in
            let port = try #require(fixture.tlsPort)
            let silent = try await RawClient.connect(port: port)
            let halfHello = try await RawClient.connect(port: port)
            halfHello.send("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}")
            let started = ContinuousClock.now
            try await ListingsTests.waitUntil(seconds: 10) { silent.isClosed && halfHello.isClosed }
            #expect(ContinuousClock.now - started < .seconds(6))
            // A client that completes its handshake is not cut off by it.
            let client = try TestCertificates.client()
            let answer = try await WireConnection.with(port: port, tls: (client, "shop.example")) { connection in
                try await Task.sleep(for: .milliseconds(2500))
                return try await connection.request("GET", "/echo/after-handshake")
            }
            #expect(answer.status == 200)
        }
    }

    @Test func aCertificateThatDoesNotLoadStopsTheNodeFromStarting() async throws {
        var settings = TestCertificates.listener("shop")
        settings.certificates[0].key = TestCertificates.files("other").key
        await #expect(throws: ConfigError.self) {
            try await OperateTests.withEcho(configure: { $0.tls = settings }) { _, _ in }
        }
    }
}

import NIOSSL
import Testing
import VitrineConfig
@testable import VitrineNode
@testable import VitrineProxy

/// `https://` origins: verified against the system's roots or the origin's CA, for the name it
/// is reached by, over pooled keep-alive connections.
@Suite(.timeLimit(.minutes(1)))
struct HTTPSOriginTests {
    /// An echo origin speaking HTTPS with the test `shop` certificate (shop.example, localhost).
    static func withHTTPSEcho(
        url: @escaping (Int) -> String, configure: @escaping (inout OriginSettings) -> Void = { _ in },
        _ body: (ProxyFixture, EchoOrigin) async throws -> Void
    ) async throws {
        let files = TestCertificates.files("shop")
        let context = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(files.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.key, format: .pem))))
        try await OperateTests.withEcho(echoTLS: context, configure: { configuration in
            let port = configuration.origins["catalog"]!.url.port
            var settings = OriginSettings(url: OriginURL(parsing: url(port))!)
            settings.firstByteTimeout = .seconds(5)
            configure(&settings)
            configuration.origins["catalog"] = settings
        }, body)
    }

    /// Origin settings that trust the test CA, and reach the origin by `serverName` if given.
    static func trustingTestCA(serverName: String? = nil) -> (inout OriginSettings) -> Void {
        { settings in
            settings.caFile = TestCertificates.files("ca").certificate
            settings.serverName = serverName
        }
    }

    @Test func anHTTPSOriginIsVerifiedAgainstItsCAAndItsConnectionIsReused() async throws {
        try await Self.withHTTPSEcho(url: { "https://localhost:\($0)" }, configure: Self.trustingTestCA()) {
            fixture, echo in
            let first = try await fixture.get("/echo/one")
            #expect(first.status == 200)
            #expect(first.text.hasPrefix("GET /echo/one\n"))
            #expect(first.text.contains("\nhost: localhost:\(echo.port)\n"))
            #expect(first.text.contains("\nx-forwarded-proto: http\n"), "what the client used, not how the origin is reached")
            // Origin connections are pooled per event loop: one client connection, one loop.
            let before = echo.connections
            let statuses = try await WireConnection.with(port: fixture.proxyPort) { connection in
                var statuses: [Int] = []
                for target in ["/echo/two", "/echo/three", "/echo/four"] { statuses.append(try await connection.request("GET", target).status) }
                return statuses
            }
            #expect(statuses == [200, 200, 200])
            #expect(echo.requests == 4)
            #expect(echo.connections - before <= 1, "one TLS connection, kept alive and reused")
            let again = try await fixture.get("/echo/one")
            #expect(again.header("X-Cache") == "HIT")
        }
    }

    @Test func anAddressIsReachedByTheConfiguredServerName() async throws {
        try await Self.withHTTPSEcho(url: { "https://127.0.0.1:\($0)" }, configure: Self.trustingTestCA(serverName: "shop.example")) { fixture, echo in
            let named = try await fixture.get("/echo/named")
            #expect(named.status == 200)
            #expect(echo.requests == 1)
        }
    }

    @Test func anOriginWhoseCertificateDoesNotVerifyIsNeverSentTheRequest() async throws {
        // The system's roots do not know the test CA.
        try await Self.withHTTPSEcho(url: { "https://localhost:\($0)" }) { fixture, echo in
            let answer = try await fixture.get("/echo/untrusted")
            #expect(answer.status == 502)
            #expect(echo.requests == 0)
        }
        // The right CA, the wrong name.
        try await Self.withHTTPSEcho(url: { "https://localhost:\($0)" }, configure: Self.trustingTestCA(serverName: "other.example")) { fixture, echo in
            let wrongName = try await fixture.get("/echo/wrong-name")
            #expect(wrongName.status == 502)
            #expect(echo.requests == 0)
        }
    }

    @Test func aCAFileThatDoesNotLoadStopsTheNodeFromStarting() async throws {
        await #expect(throws: ConfigError.self) {
            try await Self.withHTTPSEcho(url: { "https://localhost:\($0)" }, configure: { $0.caFile = "/nonexistent/ca.pem" }) { _, _ in }
        }
    }
}

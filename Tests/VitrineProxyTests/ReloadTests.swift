import Foundation
import NIOPosix
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineNode
@testable import VitrineProxy

/// `SIGHUP` and `POST /reload`: the file is read again and its routes, origins and listings are
/// put in place for new requests, without losing L1 or connections; a bad file changes nothing.
@Suite(.timeLimit(.minutes(1)))
struct ReloadTests {
    /// A config file of the test's own, and the configuration a node is started from with it (the
    /// listeners and token as the fixture has them, as `serve`'s command line overrides a file).
    final class ConfigFileOnDisk: Sendable {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-reload-\(UUID().uuidString).yaml").path

        func write(_ text: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }

        func load(over base: VitrineConfiguration) throws -> VitrineConfiguration {
            var configuration = try VitrineConfiguration.load(path: path, environment: [:])
            configuration.listen = base.listen
            configuration.admin = base.admin
            return configuration
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func file(origin: Int, echoTTL: String = "60s", extraRoute: Bool = false, memory: String = "64MiB") -> String {
        """
        origins:
          catalog:
            url: http://127.0.0.1:\(origin)
        routes:
          - prefix: /echo/
            origin: catalog
            default_ttl: \(echoTTL)
        \(extraRoute ? "  - prefix: /extra/\n    origin: catalog\n    default_ttl: 10s\n" : "")
        cache:
          memory: \(memory)
        """
    }

    static func withReloadableNode(
        _ body: (ProxyFixture, EchoOrigin, ConfigFileOnDisk) async throws -> Void
    ) async throws {
        let echo = try await EchoOrigin.start()
        let file = ConfigFileOnDisk()
        try file.write(Self.file(origin: echo.port))
        let base = VitrineConfiguration.demo(
            origin: OriginURL(parsing: "http://127.0.0.1:\(echo.port)")!, port: 0, adminPort: 0, token: ProxyFixture.token)
        let started = try file.load(over: base)
        do {
            try await ProxyFixture.with(
                originURL: "http://127.0.0.1:\(echo.port)", reload: ConfigReloader { try file.load(over: base) },
                configure: { configuration in
                    let listen = configuration.listen
                    let admin = configuration.admin
                    configuration = started
                    configuration.listen = listen
                    configuration.admin = admin
                }
            ) { fixture in
                try await body(fixture, echo, file)
            }
            await echo.stop()
        } catch {
            await echo.stop()
            throw error
        }
    }

    @Test func aReloadSwapsRoutesAndKeepsTheCache() async throws {
        try await Self.withReloadableNode { fixture, echo, file in
            #expect(try await fixture.get("/echo/a").header("x-cache") == "MISS")
            #expect(try await fixture.get("/echo/a").header("x-cache") == "HIT")
            #expect(try await fixture.get("/extra/x").status == 404)
            try file.write(Self.file(origin: echo.port, echoTTL: "120s", extraRoute: true))
            let reload = try await fixture.admin("POST", "/reload")
            #expect(reload.status == 200, "\(reload.text)")
            #expect(reload.text.contains("\"applied\":true"))
            #expect(reload.text.contains("\"changed\":[\"routes\"]"))
            #expect(reload.text.contains("\"needs_restart\":[]"))
            #expect(reload.text.contains("\"generation\":2"))
            // L1 survived; the new route answers; the new TTL applies to what is fetched now.
            #expect(try await fixture.get("/echo/a").header("x-cache") == "HIT")
            #expect(try await fixture.get("/extra/x").status == 200)
            let fresh = try await fixture.get("/echo/b")
            #expect(fresh.header("cache-status")?.contains("ttl=120") == true || fresh.header("x-cache") == "MISS")
            #expect(try await fixture.get("/echo/b").header("cache-status")?.contains("ttl=1") == true)
            let metrics = try await fixture.admin("GET", "/metrics").text
            #expect(metrics.contains(#"vitrine_config_reloads_total{outcome="applied"} 1"#))
            #expect(metrics.contains("vitrine_config_generation 2"))
        }
    }

    @Test(arguments: ["routes:\n  - prefix: /echo/\n    origin: nowhere\n", "origins: [", "routes:\n  - prefix: /echo/\n    origin: catalog\n    default_tll: 5s\n"])
    func aBadFileChangesNothing(_ text: String) async throws {
        try await Self.withReloadableNode { fixture, echo, file in
            #expect(try await fixture.get("/echo/kept").status == 200)
            try file.write(Self.file(origin: echo.port) + "\n" + text)
            let reload = try await fixture.admin("POST", "/reload")
            #expect(reload.status == 422)
            #expect(reload.text.contains("\"applied\":false"))
            #expect(reload.text.contains("\"error\":"))
            // Nothing changed: the old routes and the cache answer.
            #expect(try await fixture.get("/echo/kept").header("x-cache") == "HIT")
            let metrics = try await fixture.admin("GET", "/metrics").text
            #expect(metrics.contains(#"vitrine_config_reloads_total{outcome="rejected"} 1"#))
            #expect(metrics.contains("vitrine_config_generation 1"))
        }
    }

    @Test func settingsThatNeedARestartAreReportedAndKept() async throws {
        try await Self.withReloadableNode { fixture, echo, file in
            try file.write(Self.file(origin: echo.port, memory: "128MiB"))
            let reload = try await fixture.admin("POST", "/reload")
            #expect(reload.status == 200)
            #expect(reload.text.contains("\"changed\":[]"))
            #expect(reload.text.contains("\"needs_restart\":[\"cache\"]"))
        }
    }

    @Test func anOriginChangeReachesNewRequestsOnly() async throws {
        let other = try await EchoOrigin.start()
        defer { Task { await other.stop() } }
        try await Self.withReloadableNode { fixture, echo, file in
            #expect(try await fixture.get("/echo/before").status == 200)
            let before = echo.requests
            try file.write(Self.file(origin: other.port))
            #expect(try await fixture.admin("POST", "/reload").status == 200)
            #expect(try await fixture.get("/echo/after").status == 200)
            #expect(other.requests == 1)
            #expect(echo.requests == before)
            // What the old origin answered is still in L1.
            #expect(try await fixture.get("/echo/before").header("x-cache") == "HIT")
        }
    }

    @Test func aNodeWithoutAFileHasNothingToReload() async throws {
        try await ProxyFixture.with { fixture in
            let reload = try await fixture.admin("POST", "/reload")
            #expect(reload.status == 404)
            let unauthorized = try await fixture.admin("POST", "/reload", authorized: false)
            #expect(unauthorized.status == 401)
        }
    }

    @Test func originsWhoseSettingsDidNotChangeKeepTheirPools() throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var configuration = VitrineConfiguration.demo(
            origin: OriginURL(parsing: "http://127.0.0.1:1")!, port: 0, adminPort: 0, token: ProxyFixture.token)
        let first = Router(configuration: configuration, group: group)
        configuration.routes[0].defaultTTL = .seconds(5)
        configuration.origins["search"]?.url = OriginURL(parsing: "http://127.0.0.1:2")!
        let second = Router(configuration: configuration, group: group, reusing: first)
        #expect(second.origins["catalog"] === first.origins["catalog"])
        #expect(second.origins["search"] !== first.origins["search"])
        #expect(first.originsDropped(by: second).map(\.name) == ["search"])
        #expect(second.route(for: "/catalog/x")?.origin === first.origins["catalog"])
    }

    @Test func whatChangesIsSortedIntoLiveAndRestart() throws {
        let base = VitrineConfiguration.demo(origin: OriginURL(parsing: "http://127.0.0.1:1")!, port: 0, adminPort: 0, token: ProxyFixture.token)
        var next = base
        next.routes[0].defaultTTL = .seconds(5)
        next.listen = ListenAddress(host: "127.0.0.1", port: 9)
        next.timeouts.keepalive = .seconds(1)
        let change = ConfigurationChange(from: base, to: next)
        #expect(change.applied == ["routes"])
        #expect(change.needsRestart == ["listen", "timeouts"])
        let merged = ConfigurationChange.merged(running: base, loaded: next)
        #expect(merged.routes == next.routes)
        #expect(merged.listen == base.listen)
        #expect(merged.timeouts == base.timeouts)
    }
}

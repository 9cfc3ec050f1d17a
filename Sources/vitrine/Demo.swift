import ArgumentParser
import Foundation
import ServiceLifecycle
import VitrineConfig
import VitrineDemoOrigin
import VitrineNode
import VitrineProxy

/// `vitrine demo`: the demo origin with the proxy in front, and a few lines to try.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the demo: embedded origin with the proxy in front.")

    @Option(help: "Proxy port (127.0.0.1).") var port: Int = 8080
    @Option(help: "Admin API port (127.0.0.1).") var adminPort: Int = 8081
    @Option(help: "Demo origin port (0: any free port).") var originPort: Int = 0
    @Option(help: "Products to generate.") var products: Int = 10_000
    @Option(help: "Redis URL for the shared tier.") var redis: String?
    @Option(help: "Postgres URL for the catalog and the change feed.") var postgres: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        let group = makeEventLoopGroup(threads: 0)
        let (catalog, pool) = try await makeCatalog(postgres: postgres, products: products, logger: logger)
        let origin = DemoOrigin(port: originPort, catalog: catalog, group: group, logger: logger)
        let originAddress = try await origin.start()

        let originURL = OriginURL(parsing: "http://127.0.0.1:\(originAddress.port!)")!
        let environmentToken = ProcessInfo.processInfo.environment["VITRINE_ADMIN_TOKEN"]
        let token = environmentToken ?? randomToken()
        var configuration = VitrineConfiguration.demo(origin: originURL, port: port, adminPort: adminPort, token: token)
        if let redis { configuration.redis = RedisSettings(url: redis) }
        if let postgres {
            // The change feed on the same database; its cursor kept across demo restarts.
            var settings = PostgresSettings(url: postgres)
            settings.cursorFile = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-demo-\(port).cursor").path
            configuration.postgres = settings
        }
        // The node is let go (end of this block) before its event loops shut down.
        do {
            let node = try ProxyNode(configuration: configuration, group: group, logger: logger)
            try await node.start()
            // Written unbuffered: the banner must show even when stdout is a file or a pipe.
            FileHandle.standardOutput.write(
                Data((Self.banner(port: port, adminPort: adminPort, origin: originURL, token: environmentToken == nil ? token : nil, postgres: postgres) + "\n").utf8))

            let services = ServiceGroup(
                configuration: .init(
                    services: [.init(service: StopOnShutdown { await node.drain(); await node.stop(); await origin.stop() })],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await services.run()
        }
        pool?.cancel()
        try await group.shutdownGracefully()
    }

    static func banner(port: Int, adminPort: Int, origin: OriginURL, token: String?, postgres: String? = nil) -> String {
        let proxy = "http://127.0.0.1:\(port)"
        let admin = "http://127.0.0.1:\(adminPort)"
        let tokenLine = token.map { "  admin token:  \($0)   (set VITRINE_ADMIN_TOKEN to choose it)" } ?? "  admin token:  from VITRINE_ADMIN_TOKEN"
        let shownToken = token ?? "$VITRINE_ADMIN_TOKEN"
        // With the catalog in Postgres: a change committed there purges through the change feed.
        let postgresLines = postgres.map { url in
            "\n  psql '\(url)' -c 'UPDATE products SET price_cents = 2499 WHERE id = 42'"
                + "\n  curl -s \(proxy)/catalog/products/42 | grep -o '\"price_cents\":[0-9]*'   # 2499, through the change feed"
        } ?? ""
        return """

            Vitrine demo is running.
              proxy:        \(proxy)
              admin API:    \(admin)
              demo origin:  \(origin)
            \(tokenLine)

            Try:
              curl -si \(proxy)/catalog/products/42 | grep -iE '^(x-cache|cache-status|age):'   # MISS, then HIT
              curl -s -X POST -H "Authorization: Bearer \(shownToken)" -d '{"tags":["product:42"]}' \(admin)/purge
              curl -s -X PATCH -d '{"price_cents": 1999}' \(proxy)/catalog/products/42
              curl -s \(proxy)/catalog/products/42 | head -c 200; echo
              curl -s \(proxy)/catalog/categories/3/products?sort=price_asc | head -c 200; echo
              curl -s '\(proxy)/search/products?q=merino+jacket' | head -c 200; echo
              curl -s -H "Authorization: Bearer \(shownToken)" \(admin)/stats; echo\(postgresLines)

            Ctrl-C stops it.
            """
    }
}

/// Waits for graceful shutdown, then runs `onShutdown`.
struct StopOnShutdown: Service {
    let onShutdown: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await onShutdown()
    }
}

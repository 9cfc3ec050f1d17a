import ArgumentParser
import ServiceLifecycle
import VitrineConfig
import VitrineDemoOrigin

/// `vitrine origin`: the demo origin alone.
struct Origin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the demo origin (catalog, search, writes) alone.")

    @Option(help: "Port to listen on (127.0.0.1).") var port: Int = 9000
    @Option(help: "Products to generate (fixed seed).") var products: Int = 10_000
    @Option(help: "Postgres URL to keep the catalog in (tables created and seeded when empty).") var postgres: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        let group = makeEventLoopGroup(threads: 0)
        let (catalog, pool) = try await makeCatalog(postgres: postgres, products: products, logger: logger)
        let origin = DemoOrigin(port: port, catalog: catalog, group: group, logger: logger)
        let services = ServiceGroup(
            configuration: .init(services: [.init(service: origin)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        pool?.cancel()
        try await group.shutdownGracefully()
    }
}

import ArgumentParser
import ServiceLifecycle
import VitrineConfig
import VitrineDemoOrigin

/// `vitrine origin`: the demo origin alone.
struct Origin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the demo origin (catalog, search, writes) alone.")

    @Option(help: "Port to listen on (127.0.0.1).") var port: Int = 9000
    @Option(help: "Products to generate (fixed seed).") var products: Int = 10_000
    @Option(help: "Postgres URL to keep the catalog in.") var postgres: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        do { try refuseUnavailable(postgres: postgres) } catch { throw failConfiguration(error) }
        let group = makeEventLoopGroup(threads: 0)
        let origin = DemoOrigin(port: port, productCount: products, group: group, logger: logger)
        let services = ServiceGroup(
            configuration: .init(services: [.init(service: origin)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await group.shutdownGracefully()
    }
}

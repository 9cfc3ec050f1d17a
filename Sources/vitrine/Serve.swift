import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import VitrineConfig
import VitrineNode
import VitrineProxy

/// `vitrine serve`: the production entry point.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy from a config file, or in front of one origin (as varnishd -b does).")

    @Option(help: "YAML config file.") var config: String?
    @Option(help: "Origin URL (http://host:port): one default route, everything to it.") var origin: String?
    @Option(help: "Proxy listen address (host:port).") var listen: String?
    @Option(help: "Admin API listen address (host:port).") var adminListen: String?
    @Option(help: "Probe listener (host:port): /healthz, /readyz and /metrics without a token.") var probeListen: String?
    @Option(help: "TLS listener (host:port), with --tls-certificate and --tls-key (or the file's tls section).") var tlsListen: String?
    @Option(help: "TLS certificate chain (PEM, leaf first) for --tls-listen.") var tlsCertificate: String?
    @Option(help: "TLS private key (PEM) for --tls-certificate.") var tlsKey: String?
    @Option(help: "Admin bearer token (default: $VITRINE_ADMIN_TOKEN, then the file's admin.token).") var adminToken: String?
    @Option(help: "Redis URL for the shared tier.") var redis: String?
    @Option(help: "Postgres URL for the change feed.") var postgres: String?
    @Option(help: "L1 byte budget, e.g. 512MiB.") var memory: String?
    @Option(help: "Event loops (threads) serving connections; 0 for one per core the process may use (affinity, cgroup quota).") var eventLoops: Int?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        let configuration: VitrineConfiguration
        do {
            configuration = try resolveConfiguration()
        } catch {
            throw failConfiguration(error)
        }
        let group = makeEventLoopGroup(threads: configuration.server.eventLoops)
        // The node is let go before its event loops shut down: what it holds (the quiescing
        // helper's promise) completes on them when released.
        do {
            let node: ProxyNode
            do {
                // With a file, SIGHUP and POST /reload read it again, with this command line's overrides.
                let source = self.source
                var reload: (@Sendable () throws -> VitrineConfiguration)?
                if config != nil { reload = { try source.resolve() } }
                node = try ProxyNode(configuration: configuration, group: group, logger: logger, reload: reload)
            } catch {
                throw failConfiguration(error)
            }
            let services = ServiceGroup(
                configuration: .init(services: [.init(service: node)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await services.run()
        }
        try await group.shutdownGracefully()
    }

    /// What the command line says about the configuration (a reload applies it again).
    var source: ConfigurationSource {
        ConfigurationSource(
            config: config, origin: origin, listen: listen, adminListen: adminListen, probeListen: probeListen,
            tlsListen: tlsListen, tlsCertificate: tlsCertificate, tlsKey: tlsKey, adminToken: adminToken, redis: redis, postgres: postgres, memory: memory, eventLoops: eventLoops)
    }

    func resolveConfiguration() throws -> VitrineConfiguration {
        try source.resolve()
    }
}

/// The configuration as `serve`'s options give it: the file (or `--origin`), then each option
/// over it. Kept as values, so that a reload reads the file again with the same overrides.
struct ConfigurationSource: Sendable {
    let config: String?
    let origin: String?
    let listen: String?
    let adminListen: String?
    let probeListen: String?
    let tlsListen: String?
    let tlsCertificate: String?
    let tlsKey: String?
    let adminToken: String?
    let redis: String?
    let postgres: String?
    let memory: String?
    let eventLoops: Int?

    func resolve() throws -> VitrineConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var configuration: VitrineConfiguration
        if let config {
            configuration = try VitrineConfiguration.load(path: config, environment: environment)
        } else if let origin {
            guard let url = OriginURL(parsing: origin) else {
                throw ConfigError(key: "--origin", "'\(origin)' is not an http:// or https://host:port URL")
            }
            configuration = .singleOrigin(url)
        } else {
            throw ConfigError(key: "--config", "give --config FILE or --origin URL")
        }
        if let listen {
            guard let address = ListenAddress(parsing: listen) else { throw ConfigError(key: "--listen", "'\(listen)' is not host:port") }
            configuration.listen = address
        }
        if let adminListen {
            guard let address = ListenAddress(parsing: adminListen) else {
                throw ConfigError(key: "--admin-listen", "'\(adminListen)' is not host:port")
            }
            configuration.admin.listen = address
        }
        if let probeListen {
            guard let address = ListenAddress(parsing: probeListen) else {
                throw ConfigError(key: "--probe-listen", "'\(probeListen)' is not host:port")
            }
            configuration.probes = ProbeSettings(listen: address)
        }
        if tlsCertificate != nil || tlsKey != nil {
            guard let tlsCertificate, let tlsKey else { throw ConfigError(key: "--tls-certificate", "give both --tls-certificate and --tls-key") }
            let files = CertificateFiles(certificate: tlsCertificate, key: tlsKey)
            if configuration.tls == nil {
                guard tlsListen != nil else { throw ConfigError(key: "--tls-listen", "needed with --tls-certificate (no tls section in a file)") }
                configuration.tls = TLSSettings(listen: configuration.listen, certificates: [files])
            } else {
                configuration.tls?.certificates = [files]
            }
        }
        if let tlsListen {
            guard let address = ListenAddress(parsing: tlsListen) else { throw ConfigError(key: "--tls-listen", "'\(tlsListen)' is not host:port") }
            guard configuration.tls != nil else { throw ConfigError(key: "--tls-listen", "needs --tls-certificate and --tls-key (or a tls section in the file)") }
            configuration.tls?.listen = address
        }
        if let token = adminToken ?? environment["VITRINE_ADMIN_TOKEN"] { configuration.admin.token = token }
        if let redis { configuration.redis = RedisSettings(url: redis) }
        if let postgres { configuration.postgres = PostgresSettings(url: postgres) }
        if let memory {
            guard let bytes = ByteSize.parse(memory) else { throw ConfigError(key: "--memory", "'\(memory)' is not a size") }
            configuration.cache.memory = ByteSize(bytes)
        }
        if let eventLoops {
            guard eventLoops >= 0 else { throw ConfigError(key: "--event-loops", "must be 0 (one per core) or more") }
            configuration.server.eventLoops = eventLoops
        }
        try configuration.validate()
        return configuration
    }
}

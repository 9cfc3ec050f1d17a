import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import VitrineConfig
import VitrineCore
import VitrineDeadline
import VitrineDemoOrigin
import VitrineFeed
import VitrineNode

/// Options every command shares.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["VITRINE_LOG_LEVEL"] ?? "info"
    @Option(help: "Log format: text (for people) or json (one object per line, for log pipelines).")
    var logFormat: String = ProcessInfo.processInfo.environment["VITRINE_LOG_FORMAT"] ?? "text"

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level '\(logLevel)' is not a level") }
    }

    func bootstrap() -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "vitrine")
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Prints a configuration problem the way `check-config` does and exits with status 2.
func failConfiguration(_ error: any Error) -> ExitCode {
    let message = (error as? ConfigError)?.description ?? "\(error)"
    FileHandle.standardError.write(Data("vitrine: \(message)\n".utf8))
    return ExitCode(2)
}

func makeEventLoopGroup(threads: Int) -> MultiThreadedEventLoopGroup {
    MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : UsableCores.count)
}

/// The demo origin's catalog: in Postgres at `postgres` (with its pool's task, to cancel on
/// shutdown), else generated in memory.
func makeCatalog(postgres: String?, products: Int, logger: Logger) async throws -> (any CatalogStore, Task<Void, Never>?) {
    guard let postgres else { return (DemoCatalog(productCount: products), nil) }
    do { return try await openPostgresCatalog(url: postgres, products: products, logger: logger) } catch { throw failConfiguration(error) }
}

/// The demo catalog in Postgres at `url`: its pool running, tables, outbox and triggers
/// installed, seeded with `products` generated products when empty. Throws a `ConfigError` naming
/// `postgres.url` when the URL is wrong or the server cannot be reached in time.
func openPostgresCatalog(url text: String, products: Int, logger: Logger) async throws -> (PostgresCatalog, Task<Void, Never>) {
    let url: PostgresURL
    do { url = try PostgresURL(parsing: text) } catch { throw ConfigError(key: "postgres.url", "\(error)") }
    let catalog: PostgresCatalog
    do {
        catalog = PostgresCatalog(configuration: try url.clientConfiguration(), logger: logger)
    } catch {
        throw ConfigError(key: "postgres.url", "\(error)")
    }
    let pool = Task { await catalog.run() }
    do {
        let count = try await withDeadline(.seconds(20)) {
            try await catalog.prepare(seed: { DemoCatalog(productCount: products) })
        }
        logger.info("demo catalog in Postgres", metadata: ["postgres": "\(url)", "products": "\(count)"])
        return (catalog, pool)
    } catch {
        pool.cancel()
        throw ConfigError(key: "postgres.url", "cannot prepare the demo catalog at \(url): \(String(reflecting: error))")
    }
}

/// A random admin token (hex), for the demo when none is given.
func randomToken() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
}

import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import VitrineConfig

/// Options every command shares.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["VITRINE_LOG_LEVEL"] ?? "info"

    func bootstrap() -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "vitrine")
    }
}

/// Prints a configuration problem the way `check-config` does and exits with status 2.
func failConfiguration(_ error: any Error) -> ExitCode {
    let message = (error as? ConfigError)?.description ?? "\(error)"
    FileHandle.standardError.write(Data("vitrine: \(message)\n".utf8))
    return ExitCode(2)
}

func makeEventLoopGroup(threads: Int) -> MultiThreadedEventLoopGroup {
    MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : System.coreCount)
}

/// Features whose flags the contract names but that this build does not have yet.
func refuseUnavailable(postgres: String?) throws {
    if postgres != nil {
        throw ConfigError(
            key: "postgres.url",
            "the Postgres-backed demo catalog is not in this build yet; use `vitrine serve --postgres` for the change feed")
    }
}

/// A random admin token (hex), for the demo when none is given.
func randomToken() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The Postgres server `make test` starts (`VITRINE_TEST_POSTGRES_URL`), psql, and servers of a
/// test's own for tests that restart one. Shared by the test targets.
public enum TestPostgres {
    /// The server's URL; nil when the tests run without `make test`, which in CI is recorded as
    /// a failure: a missing server is never a skip there.
    public static var server: String? {
        guard let url = ProcessInfo.processInfo.environment["VITRINE_TEST_POSTGRES_URL"] else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("VITRINE_TEST_POSTGRES_URL is not set: run the tests with `make test`")
            }
            return nil
        }
        return url
    }

    /// A new, empty database on `server`; its URL.
    public static func freshDatabase(_ name: String, on server: String) async throws -> String {
        try await psql(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        try await psql(server, "CREATE DATABASE \(name)")
        return server.replacingOccurrences(of: "/postgres", with: "/\(name)")
    }

    /// Runs `sql` (or the file) through psql; returns its output, unaligned, tuples only.
    @discardableResult
    public static func psql(_ url: String, _ sql: String? = nil, file: String? = nil) async throws -> String {
        try await TestCommand.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-At"] + (file.map { ["-f", $0] } ?? ["-c", sql!]))
    }

    /// `config/postgres/NAME`.
    public static func sqlFile(_ name: String) -> String {
        repository.appendingPathComponent("config/postgres/\(name)").path
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    /// A Postgres server of one test's own (`scripts/test-services.sh postgres`): restarting the
    /// shared one would break the tests running beside.
    public final class Server: Sendable {
        public let url: String
        private let directory: String

        /// - Parameter tls: when given, the server accepts TLS connections only, with this certificate.
        public init(tls: TestCertificates? = nil) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-pg-\(UUID().uuidString)").path
            if let tls {
                url = try await TestCommand.run([TestPostgres.script, "postgres-tls", directory, tls.certificate, tls.key])
            } else {
                url = try await TestCommand.run([TestPostgres.script, "postgres", directory])
            }
        }

        /// Stops the server at once (as a crash would) and starts it again on the same port.
        public func restart() async throws {
            try await TestCommand.run([TestPostgres.script, "postgres-restart", directory])
        }

        public func stop() {
            _ = try? TestCommand.runBlocking([TestPostgres.script, "stop", directory])
        }
    }

    static var script: String { repository.appendingPathComponent("scripts/test-services.sh").path }
}

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
        try await run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-At"] + (file.map { ["-f", $0] } ?? ["-c", sql!]))
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

        public init() async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-pg-\(UUID().uuidString)").path
            url = try await TestPostgres.run([TestPostgres.script, "postgres", directory])
        }

        /// Stops the server at once (as a crash would) and starts it again on the same port.
        public func restart() async throws {
            try await TestPostgres.run([TestPostgres.script, "postgres-restart", directory])
        }

        public func stop() {
            _ = try? TestPostgres.runBlocking([TestPostgres.script, "stop", directory])
        }
    }

    static var script: String { repository.appendingPathComponent("scripts/test-services.sh").path }

    public struct CommandFailure: Error, CustomStringConvertible {
        public let output: String
        public var description: String { "command failed: \(output)" }
    }

    /// Runs a command to its end on a thread of its own; returns its output (stdout and stderr).
    /// Waiting for it on a thread of Swift's cooperative pool (two threads on two cores) would
    /// stall every other test for as long as an initdb takes.
    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try runBlocking(arguments) }) }
        }
    }

    /// `run`, waiting on the caller's thread (for a `defer`). Not Foundation's `Process`: its
    /// `waitUntilExit` was seen never to return for a script that starts a daemon. The child gets
    /// an empty signal mask (the test runner's blocked signals are not inherited).
    @discardableResult
    static func runBlocking(_ arguments: [String]) throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-cmd-\(UUID().uuidString).out").path
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw CommandFailure(output: "cannot start \(arguments[0]): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // Exited normally (no signal) with status 0.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else { throw CommandFailure(output: output) }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

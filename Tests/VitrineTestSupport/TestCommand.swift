import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Commands the tests run to their end (psql, pg_ctl, openssl), each waited for on a thread of
/// its own.
public enum TestCommand {
    public struct CommandFailure: Error, CustomStringConvertible {
        public let output: String
        public var description: String { "command failed: \(output)" }
    }

    /// Runs a command to its end on a thread of its own; returns its output (stdout and stderr).
    /// Waiting for it on a thread of Swift's cooperative pool (two threads on two cores) would
    /// stall every other test for as long as an initdb takes.
    @discardableResult
    public static func run(_ arguments: [String]) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try runBlocking(arguments) }) }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which its headers
    /// declare only for `_GNU_SOURCE`: found at run time.
    private static func closeFrom(_ first: Int32, _ actions: inout posix_spawn_file_actions_t) {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, first)
    }

    /// `run`, waiting on the caller's thread (for a `defer`). Not Foundation's `Process`: its
    /// `waitUntilExit` was seen never to return for a script that starts a daemon. The child gets
    /// an empty signal mask (the test runner's blocked signals are not inherited), and no descriptor
    /// but its standard ones.
    @discardableResult
    public static func runBlocking(_ arguments: [String]) throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-cmd-\(UUID().uuidString).out").path
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the test process: it holds hundreds of sockets at a time, and a server
        // started from here (pg_ctl's Postgres, a Redis) would keep them open, and count them
        // against its own descriptor limit (Postgres then refuses to start).
        closeFrom(3, &actions)
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

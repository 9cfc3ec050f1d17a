import Foundation

/// Where the feed's cursor survives restarts. It stores the text of a `SavedCursor`; the feed
/// decides what a text that does not decode means.
public protocol CursorStore: Sendable {
    /// The saved text; nil when there is none (this node's first start).
    func load() async throws -> String?
    func save(_ cursor: String) async
}

/// The cursor in a small file, written atomically (write to a temporary file, then rename). The
/// directory is created if missing.
public struct FileCursorStore: CursorStore {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func load() async throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        // A file that exists and cannot be read is an error (retried), not "no cursor".
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    public func save(_ cursor: String) async {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let temporary = path + ".tmp"
        do {
            try (cursor + "\n").write(toFile: temporary, atomically: false, encoding: .utf8)
            _ = rename(temporary, path)
        } catch {
            // Best effort: a lost cursor means a replay from an older position, never a lost purge.
        }
    }
}

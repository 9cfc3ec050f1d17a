import Foundation

/// Where the feed's cursor survives restarts.
public protocol CursorStore: Sendable {
    /// The saved position; nil when there is none (this node's first start).
    func load() async throws -> Int64?
    func save(_ position: Int64) async
}

/// The cursor in a small file, written atomically (write to a temporary file, then rename).
public struct FileCursorStore: CursorStore {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func load() async throws -> Int64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func save(_ position: Int64) async {
        let temporary = path + ".tmp"
        do {
            try String(position).write(toFile: temporary, atomically: false, encoding: .utf8)
            _ = rename(temporary, path)
        } catch {
            // Best effort: a lost cursor means a replay from an older position, never a lost purge.
        }
    }
}

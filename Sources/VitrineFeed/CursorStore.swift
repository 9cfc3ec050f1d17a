import Foundation

/// Where the feed's cursor survives restarts.
public protocol CursorStore: Sendable {
    func load() -> Int64?
    func save(_ position: Int64)
}

/// The cursor in a small file, written atomically (write to a temporary file, then rename).
public struct FileCursorStore: CursorStore {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func load() -> Int64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func save(_ position: Int64) {
        let temporary = path + ".tmp"
        do {
            try String(position).write(toFile: temporary, atomically: false, encoding: .utf8)
            _ = rename(temporary, path)
        } catch {
            // Best effort: a lost cursor means a replay from an older position, never a lost purge.
        }
    }
}

import Foundation
import Logging
import VitrineCore

/// `--log-format json`: one JSON object per line on standard error, for log pipelines that parse
/// (Loki, Elasticsearch, CloudWatch): `time`, `level`, `logger`, `message`, then the metadata.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.timestamp()), ("level", event.level.rawValue), ("logger", label), ("message", "\(event.message)"),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() where !["time", "level", "logger", "message"].contains(key) {
            fields.append((key, merged[key].map { "\($0)" } ?? ""))
        }
        let body = fields.map { "\(Self.quoted($0.0)):\(Self.quoted($0.1))" }.joined(separator: ",")
        write("{" + body + "}\n")
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.jsonEscaped + "\""
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

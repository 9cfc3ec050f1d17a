/// A duration written as `500ms`, `30s`, `5m`, `1h`, `2d`, or a bare number of seconds.
public struct ConfigDuration: Decodable, Sendable, Equatable {
    public let duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            guard seconds >= 0 else { throw ConfigError(key: keyPath(decoder.codingPath), "a duration cannot be negative") }
            guard let parsed = Self.milliseconds(seconds, unit: 1000) else {
                throw ConfigError(key: keyPath(decoder.codingPath), "\(seconds) seconds is longer than 100 years")
            }
            duration = parsed
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = Self.parse(text) else {
            throw ConfigError(key: keyPath(decoder.codingPath), "'\(text)' is not a duration (e.g. 500ms, 30s, 5m, 1h)")
        }
        duration = parsed
    }

    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, milliseconds) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            guard let value = Double(number), value >= 0 else { continue }
            return Self.milliseconds(value, unit: milliseconds)
        }
        if let seconds = Double(trimmed), seconds >= 0 { return Self.milliseconds(seconds, unit: 1000) }
        return nil
    }

    /// The longest duration accepted: 100 years, so that no sum of configured durations overflows.
    static let maxMilliseconds: Double = 100 * 365 * 86_400_000

    /// `value` units of `unit` milliseconds, or nil when not finite, negative or over the maximum.
    private static func milliseconds(_ value: Double, unit: Int64) -> Duration? {
        let total = value * Double(unit)
        guard total.isFinite, total >= 0, total <= maxMilliseconds else { return nil }
        return .milliseconds(Int64(total))
    }
}

/// A size in bytes written as `256MiB`, `64MB`, `512k`, `1G`, or a bare number of bytes.
/// Decimal and binary suffixes are both read as binary (1 MB = 1 MiB), as nginx does.
public struct ByteSize: Decodable, Sendable, Equatable {
    public let bytes: Int

    public init(_ bytes: Int) { self.bytes = bytes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            guard number >= 0 else { throw ConfigError(key: keyPath(decoder.codingPath), "a size cannot be negative") }
            bytes = number
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = Self.parse(text) else {
            throw ConfigError(key: keyPath(decoder.codingPath), "'\(text)' is not a size (e.g. 256MiB, 64MB, 512KB)")
        }
        bytes = parsed
    }

    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace().lowercased()
        let units: [(String, Int)] = [
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30),
            ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30),
            ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1),
        ]
        for (suffix, multiplier) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count).trimmingWhitespace()), value >= 0 else { return nil }
            let total = value * Double(multiplier)
            // 1 PiB at most: no byte budget is larger, and the conversion cannot trap.
            guard total.isFinite, total <= Double(1 << 50) else { return nil }
            return Int(total)
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }
}

/// A listen address, `host:port` (IPv6 as `[::1]:8080`).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or `:port` (all interfaces).
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the address only accepts connections from this machine.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// An `http://host:port` origin URL.
public struct OriginURL: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// Path prefix prepended to forwarded request paths ("" for none).
    public let basePath: String
    /// `https://`: the connection to the origin is TLS (its certificate verified).
    public let tls: Bool

    public init?(parsing text: String) {
        let rest: Substring
        if text.hasPrefix("http://") {
            tls = false
            rest = text.dropFirst("http://".count)
        } else if text.hasPrefix("https://") {
            tls = true
            rest = text.dropFirst("https://".count)
        } else {
            return nil
        }
        let defaultPort = tls ? 443 : 80
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        while path.hasSuffix("/") { path.removeLast() }
        guard !authority.isEmpty else { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty { port = defaultPort } else if after.first == ":", let parsed = Int(after.dropFirst()) { port = parsed } else { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let parsed = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = parsed
        } else {
            host = String(authority)
            port = defaultPort
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        basePath = path
    }

    public var scheme: String { tls ? "https" : "http" }

    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(hostPart):\(port)\(basePath)"
    }

    /// The `Host` field value for requests to this origin (the port only when not the scheme's).
    public var hostField: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? hostPart : "\(hostPart):\(port)"
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var slice = self[...]
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}

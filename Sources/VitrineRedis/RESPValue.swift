import NIOCore

/// A Redis reply.
public enum RESPValue: Sendable, Equatable, CustomStringConvertible {
    /// A status reply (`+OK`).
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    case array([RESPValue])
    /// A nil bulk string or nil array.
    case null

    /// The reply as text, for status and bulk strings.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let buffer): return String(buffer: buffer)
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var buffer: ByteBuffer? {
        if case .bulkString(let buffer) = self { return buffer }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var description: String {
        switch self {
        case .simpleString(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .bulkString(let buffer): return "$\(buffer.readableBytes) \(String(buffer: buffer).prefix(64))"
        case .array(let values): return "[\(values.map(\.description).joined(separator: ", "))]"
        case .null: return "nil"
        }
    }
}

/// One argument of a command: text or bytes.
public enum RESPArgument: Sendable, ExpressibleByStringLiteral {
    case string(String)
    /// Part of a larger string: several arguments cut from one string cost one allocation.
    case substring(Substring)
    case bytes(ByteBuffer)

    public init(stringLiteral value: String) { self = .string(value) }

    var byteCount: Int {
        switch self {
        case .string(let text): return text.utf8.count
        case .substring(let text): return text.utf8.count
        case .bytes(let buffer): return buffer.readableBytes
        }
    }
}

/// An error reply or a failure to talk to Redis.
public enum RedisError: Error, Sendable, Equatable {
    /// Redis answered `-ERR ...`.
    case server(String)
    /// The reply stream was not valid RESP.
    case protocolError(String)
    /// No reply within the command timeout.
    case timeout
    /// The connection closed (or was never made).
    case connectionClosed
    /// The circuit breaker is open: Redis failed recently, commands fail fast until it recovers.
    case unavailable
    case invalidURL(String)
}

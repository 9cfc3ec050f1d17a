import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 response heads straight into bytes. The proxy does not run NIO's response
/// encoder: cache hits write a head encoded once, when the response was stored. Public for the
/// micro-benchmarks (`Benchmarks/`), which measure them as the proxy uses them.
extension ByteBuffer {
    /// `HTTP/1.1 200 OK\r\n`.
    public mutating func writeStatusLine(_ status: HTTPResponseStatus) {
        writeStaticString("HTTP/1.1 ")
        writeDecimal(Int(status.code))
        writeInteger(UInt8(ascii: " "))
        writeString(status.reasonPhrase)
        writeStaticString("\r\n")
    }

    /// `name: value\r\n`.
    public mutating func writeHeader(_ name: String, _ value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// `name: 123\r\n`, the number written without going through `String`.
    public mutating func writeHeader(_ name: StaticString, decimal value: Int) {
        writeStaticString(name)
        writeStaticString(": ")
        writeDecimal(value)
        writeStaticString("\r\n")
    }

    /// Writes a non-negative integer in decimal without going through `String`.
    public mutating func writeDecimal(_ value: Int) {
        var value = max(value, 0)
        if value < 10 {
            writeInteger(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let count = withUnsafeMutableBytes(of: &digits) { raw -> Int in
            var index = raw.count
            while value > 0 {
                index -= 1
                raw[index] = UInt8(ascii: "0") &+ UInt8(value % 10)
                value /= 10
            }
            return raw.count - index
        }
        withUnsafeBytes(of: &digits) { raw in
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: raw[(raw.count - count)...]))
        }
    }

    /// The `Connection` field a client needs for the connection to do what `keepAlive` says
    /// (HTTP/1.1 keeps it open unless told; HTTP/1.0 closes it unless told), then the head's end.
    public mutating func writeConnectionFieldAndEnd(keepAlive: Bool, isHTTP10: Bool) {
        if !keepAlive {
            writeStaticString("Connection: close\r\n")
        } else if isHTTP10 {
            writeStaticString("Connection: keep-alive\r\n")
        }
        writeStaticString("\r\n")
    }

    /// What follows a stored head on each hit: `Age`, the verdict's `Cache-Status` and `X-Cache`,
    /// and the `Connection` field and end of the head.
    public mutating func writeHitFields(age: Int, verdict: CacheVerdict, keepAlive: Bool, isHTTP10: Bool) {
        writeHeader("Age", decimal: age)
        verdict.write(into: &self)
        writeConnectionFieldAndEnd(keepAlive: keepAlive, isHTTP10: isHTTP10)
    }

    mutating func writeChunkHeader(size: Int) {
        writeString(String(size, radix: 16))
        writeStaticString("\r\n")
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1): meaningful for one connection only, never forwarded.
enum HopByHop {
    static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Fields a `Connection` token can never remove: they frame, route or decide the message,
    /// and are end to end by definition. A client naming them in `Connection` is trying to make
    /// the next hop see a different message than this one did.
    static let protected: Set<String> = [
        "host", "content-length", "transfer-encoding", "authorization", "cookie", "cache-control", "pragma", "range",
        "if-none-match", "if-modified-since", "accept-encoding", "content-type", "content-encoding", "vary", "date",
        "expires", "age", "etag", "last-modified", "set-cookie", "location", "content-location",
    ]

    /// Whether a field (its name already lower-cased) is dropped: a standard hop-by-hop field, or
    /// one the message's `Connection` field names.
    static func isHopByHop(lowercased name: String, connectionTokens: [String]) -> Bool {
        names.contains(name) || connectionTokens.contains(name)
    }

    /// The field names the `Connection` field lists, less those that can never be hop-by-hop.
    static func connectionTokens(_ headers: HTTPHeaders) -> [String] {
        headers[canonicalForm: "connection"].map { $0.lowercased() }.filter { !protected.contains($0) }
    }
}

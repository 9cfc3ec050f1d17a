import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 response heads straight into bytes. The proxy does not run NIO's response
/// encoder: cache hits write a head encoded once, when the response was stored. Public for the
/// micro-benchmarks (`Benchmarks/`), which measure them as the proxy uses them.
extension ByteBuffer {
    // Each is one `HeadWriter` pass, so that a head written piece by piece and one written whole
    // (`writeHead`, a stored response's) are the same bytes by construction.

    /// `HTTP/1.1 200 OK\r\n`.
    public mutating func writeStatusLine(_ status: HTTPResponseStatus) {
        // Every standard reason fits; a longer custom one is written into twice the room.
        writeHead(capacity: 64) { $0.statusLine(status) }
    }

    /// `name: value\r\n`.
    public mutating func writeHeader(_ name: String, _ value: String) {
        writeHead(capacity: name.utf8.count + value.utf8.count + 4) { $0.header(name, value) }
    }

    /// `name: 123\r\n`, the number written without going through `String`.
    public mutating func writeHeader(_ name: StaticString, decimal value: Int) {
        writeHead(capacity: name.utf8CodeUnitCount + 24) { $0.header(name, decimal: value) }
    }

    /// Writes a non-negative integer in decimal without going through `String`.
    public mutating func writeDecimal(_ value: Int) {
        writeHead(capacity: 20) { $0.putDecimal(value) }
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

/// Writes a head's pieces through one pointer into bytes reserved once (`ByteBuffer.writeHead`):
/// a head is dozens of small writes, each of which costs a `ByteBuffer` a capacity and
/// uniqueness check. A write that does not fit is dropped and remembered (`overflowed`), never
/// made past the end.
package struct HeadWriter {
    private let bytes: UnsafeMutableRawBufferPointer
    package private(set) var count = 0
    package private(set) var overflowed = false

    package init(_ bytes: UnsafeMutableRawBufferPointer) {
        self.bytes = bytes
    }

    package mutating func put(_ raw: UnsafeRawBufferPointer) {
        guard !overflowed, raw.count <= bytes.count - count else {
            overflowed = true
            return
        }
        if let source = raw.baseAddress, let target = bytes.baseAddress { (target + count).copyMemory(from: source, byteCount: raw.count) }
        count += raw.count
    }

    package mutating func put(_ text: StaticString) {
        put(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    package mutating func put(_ text: String) {
        var text = text
        text.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }

    mutating func put(byte: UInt8) {
        withUnsafeBytes(of: byte) { put($0) }
    }

    /// A non-negative integer in decimal.
    mutating func putDecimal(_ value: Int) {
        var value = max(value, 0)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let count = withUnsafeMutableBytes(of: &digits) { raw -> Int in
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(ascii: "0") &+ UInt8(value % 10)
                value /= 10
            } while value > 0
            return raw.count - index
        }
        withUnsafeBytes(of: &digits) { raw in put(UnsafeRawBufferPointer(rebasing: raw[(raw.count - count)...])) }
    }

    /// `HTTP/1.1 200 OK\r\n`.
    mutating func statusLine(_ status: HTTPResponseStatus) {
        put("HTTP/1.1 ")
        putDecimal(Int(status.code))
        put(byte: UInt8(ascii: " "))
        put(status.reasonPhrase)
        put("\r\n")
    }

    /// `name: value\r\n`.
    mutating func header(_ name: String, _ value: String) {
        put(name)
        put(": ")
        put(value)
        put("\r\n")
    }

    /// `name: 123\r\n`.
    mutating func header(_ name: StaticString, decimal value: Int) {
        put(name)
        put(": ")
        putDecimal(value)
        put("\r\n")
    }
}

extension ByteBuffer {
    /// Writes what `body` writes through one `HeadWriter` into `capacity` bytes reserved at once;
    /// when that was too little, again into twice as many, until it fits.
    package mutating func writeHead(capacity: Int, _ body: (inout HeadWriter) -> Void) {
        var capacity = max(capacity, 1)
        while true {
            var fitted = false
            writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
                var writer = HeadWriter(raw)
                body(&writer)
                fitted = !writer.overflowed
                return fitted ? writer.count : 0
            }
            if fitted { return }
            capacity *= 2
        }
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1): meaningful for one connection only, never forwarded.
enum HopByHop {
    /// Whether `name` (lower case) is a standard hop-by-hop field: a switch, not a set, as it is
    /// asked of every field of every request (hashing each name cost more than the rest).
    static func isStandard(lowercased name: String) -> Bool {
        switch name.utf8.count {
        case 2, 7, 10, 16, 17, 18, 19:
            switch name {
            case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                "proxy-authenticate", "proxy-authorization":
                return true
            default:
                return false
            }
        default:
            return false
        }
    }

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
        isStandard(lowercased: name) || connectionTokens.contains(name)
    }

    /// The field names the `Connection` field lists, less those that can never be hop-by-hop.
    static func connectionTokens(_ headers: HTTPHeaders) -> [String] {
        headers[canonicalForm: "connection"].map { $0.lowercased() }.filter { !protected.contains($0) }
    }
}

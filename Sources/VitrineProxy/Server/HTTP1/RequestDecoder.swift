import NIOCore
import NIOHTTP1
import VitrineConfig
import VitrineCore

/// HTTP/1.1 request framing (RFC 9112) as a plain value: bytes in, request parts out. No
/// channel, no event loop; `ClientConnectionHandler` feeds it what the socket read.
///
/// It is strict where leniency is what request smuggling is made of: lines end in CRLF, field
/// names are tokens with the colon right after them, no line folding, no control characters
/// in values, one `Content-Length` of digits only, `Transfer-Encoding` only as `chunked` and
/// never together with a length. It also refuses what a reverse proxy cannot serve: a target
/// that is not a path, a missing or repeated `Host` (RFC 9112 §3.2), a declared body over the
/// limit. Anything else is an error, after which it yields nothing more (the connection is
/// answered and closed).
///
/// Bodies are handed out as slices of the bytes read: never copied. Public for the
/// micro-benchmarks (`Benchmarks/`).
public struct RequestDecoder {
    private enum State {
        case head
        case body(remaining: Int)
        /// The message is complete: `.end` is next.
        case messageEnd
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case failed
    }

    /// Longest chunk-size line (size and extensions) accepted.
    static let maxChunkLine = 4096

    private let limits: LimitSettings
    private var state = State.head
    private var buffer = ByteBuffer()
    /// How far into `buffer` the end of the head has been looked for already, so that a head
    /// arriving a byte at a time is scanned once, not once per byte.
    private var headScanned = 0

    public init(limits: LimitSettings = LimitSettings()) {
        self.limits = limits
    }

    /// Whether bytes have arrived that are not yet handed out: between requests, the start of a
    /// head.
    public var hasBufferedBytes: Bool { buffer.readableBytes > 0 }

    /// Adds bytes read from the connection.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes  // the common case: no copy
        } else {
            buffer.writeImmutableBuffer(bytes)
        }
    }

    /// The next request part, or nil when more bytes are needed.
    /// - Throws: the error to answer with, when the bytes are not an acceptable HTTP/1.1 request.
    public mutating func next() throws(ProxyError) -> HTTPServerRequestPart? {
        switch state {
        case .head:
            return try nextHead().map { .head($0) }
        case .body(let remaining):
            guard let (slice, left) = nextBodySlice(remaining) else { return nil }
            state = left == 0 ? .messageEnd : .body(remaining: left)
            return .body(slice)
        case .messageEnd:
            state = .head
            return .end(nil)
        case .chunkSize:
            guard let size = try nextChunkSize() else { return nil }
            state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            return try next()
        case .chunkData(let remaining):
            guard let (slice, left) = nextBodySlice(remaining) else { return nil }
            state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
            return .body(slice)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt16.self) == Self.crlf else { throw fail(.badRequest("chunk data not followed by CRLF")) }
            state = .chunkSize
            return try next()
        case .trailers(let bytes):
            // Trailer fields are read and dropped: nothing downstream uses them.
            guard let line = try nextLine(limit: limits.maxHeaderBytes - bytes) else { return nil }
            if line.readableBytes == 0 {
                state = .head
                return .end(nil)
            }
            state = .trailers(bytes: bytes + line.readableBytes + 2)
            return try next()
        case .failed:
            return nil
        }
    }

    private static let crlf = UInt16(0x0D0A)

    /// Up to `remaining` body bytes that have arrived (a slice, not a copy), and how many are
    /// left after them; nil when none have arrived.
    private mutating func nextBodySlice(_ remaining: Int) -> (ByteBuffer, left: Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
        return (slice, remaining - slice.readableBytes)
    }

    private mutating func fail(_ error: ProxyError) -> ProxyError {
        state = .failed
        buffer = ByteBuffer()
        return error
    }

    // MARK: Head

    private mutating func nextHead() throws(ProxyError) -> HTTPRequestHead? {
        // RFC 9112 §2.2: empty lines before a request line are ignored (some clients send CRLF
        // after a body).
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == Self.crlf {
            buffer.moveReaderIndex(forwardBy: 2)
            headScanned = 0
        }
        let headLength: Int
        switch findEndOfHead() {
        case .complete(let length):
            headLength = length
        case .incomplete:
            try checkIncompleteHead()
            return nil
        case .bareLineFeed:
            throw fail(.badRequest("a line of the head does not end in CRLF"))
        }
        headScanned = 0
        let limits = limits
        let result = buffer.withUnsafeReadableBytes { bytes in
            HeadParser(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<headLength]), limits: limits).parse()
        }
        buffer.moveReaderIndex(forwardBy: headLength + 4)
        switch result {
        case .failure(let error):
            throw fail(error)
        case .success(let parsed):
            switch parsed.framing {
            case .none: state = .messageEnd
            case .length(let length): state = .body(remaining: length)
            case .chunked: state = .chunkSize
            }
            return parsed.head
        }
    }

    private enum HeadScan {
        /// The head's length up to its final CRLF CRLF (exclusive).
        case complete(Int)
        case incomplete
        case bareLineFeed
    }

    /// Looks for the end of the head, checking on the way that every LF follows a CR.
    private mutating func findEndOfHead() -> HeadScan {
        let scanned = headScanned
        let scan: HeadScan = buffer.withUnsafeReadableBytes { bytes in
            var index = scanned
            while index < bytes.count {
                if bytes[index] == 0x0A {
                    guard index > 0, bytes[index - 1] == 0x0D else { return .bareLineFeed }
                    if index >= 3 && bytes[index - 2] == 0x0A { return .complete(index - 3) }
                }
                index += 1
            }
            return .incomplete
        }
        if case .incomplete = scan { headScanned = buffer.readableBytes }
        return scan
    }

    /// An incomplete head that can no longer fit the limits is refused without waiting for more.
    private mutating func checkIncompleteHead() throws(ProxyError) {
        let readable = buffer.readableBytes
        guard readable > limits.maxRequestLine else { return }
        let lineEnd = buffer.withUnsafeReadableBytes { $0.firstIndex(of: 0x0A) }
        guard let lineEnd else { throw fail(.requestLineTooLong) }
        if readable - lineEnd > limits.maxHeaderBytes + 2 { throw fail(.headersTooLarge) }
    }

    // MARK: Chunks

    /// Reads a line and returns it without its CRLF, or nil when it has not all arrived.
    private mutating func nextLine(limit: Int) throws(ProxyError) -> ByteBuffer? {
        let lineEnd = buffer.withUnsafeReadableBytes { $0.firstIndex(of: 0x0A) }
        guard let lineEnd else {
            if buffer.readableBytes > limit { throw fail(.headersTooLarge) }
            return nil
        }
        let valid = buffer.withUnsafeReadableBytes { bytes in
            guard lineEnd > 0, bytes[lineEnd - 1] == 0x0D else { return false }
            return !bytes[..<(lineEnd - 1)].contains(where: FieldSyntax.isControl)
        }
        guard valid else { throw fail(.badRequest("malformed line in a chunked body")) }
        if lineEnd - 1 > limit { throw fail(.headersTooLarge) }
        let line = buffer.readSlice(length: lineEnd - 1)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    private mutating func nextChunkSize() throws(ProxyError) -> Int? {
        guard let line = try nextLine(limit: Self.maxChunkLine) else { return nil }
        let size: Int? = line.withUnsafeReadableBytes { bytes in
            var size = 0
            var digits = 0
            for byte in bytes {
                guard let value = Self.hexValue(byte) else {
                    // chunk-ext: `;` after the size (optionally after whitespace), never before it.
                    return digits > 0 && (byte == UInt8(ascii: ";") || byte == 0x20 || byte == 0x09) ? size : nil
                }
                digits += 1
                guard digits <= 15 else { return nil }  // fits an Int without overflow
                size = size << 4 | Int(value)
            }
            return digits > 0 ? size : nil
        }
        guard let size else { throw fail(.badRequest("invalid chunk size")) }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: Parsing a complete head

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    private struct ParsedHead {
        let head: HTTPRequestHead
        let framing: Framing
    }

    /// Parses a head known to be complete (request line and fields, without the final CRLF CRLF).
    /// Whether `host` is a valid `Host` (or HTTP/2 `:authority`): a name, IPv4 or bracketed
    /// IPv6 address, and an optional port; the same rule for both protocols.
    static func isValidHost(_ host: String) -> Bool {
        var host = host
        return host.withUTF8 { HeadParser.isValidHost(UnsafeRawBufferPointer($0)) }
    }

    private struct HeadParser {
        let bytes: UnsafeRawBufferPointer
        let limits: LimitSettings

        func parse() -> Result<ParsedHead, ProxyError> {
            // Request line: method SP target SP HTTP/1.x
            let lineEnd = lineEnd(from: 0)
            guard endsInCRLF(lineEnd) else { return .failure(.badRequest("malformed request line")) }
            guard let methodEnd = bytes[..<lineEnd].firstIndex(of: 0x20), methodEnd > 0,
                bytes[..<methodEnd].allSatisfy(FieldSyntax.isTokenByte)
            else { return .failure(.badRequest("malformed request line")) }
            guard let targetEnd = bytes[(methodEnd + 1)..<lineEnd].firstIndex(of: 0x20) else {
                return .failure(.badRequest("malformed request line"))
            }
            let target = UnsafeRawBufferPointer(rebasing: bytes[(methodEnd + 1)..<targetEnd])
            if target.count > limits.maxRequestLine { return .failure(.requestLineTooLong) }
            // Visible ASCII only: a target that is not valid UTF-8 would be repaired into a
            // String, and two different requests could then share a cache key.
            guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                return .failure(.badRequest("invalid request target"))
            }
            // Origin form only: a reverse proxy is not asked for absolute URLs, CONNECT or `*`.
            guard target[0] == UInt8(ascii: "/") else { return .failure(.badRequest("the request target must be a path")) }
            let version = UnsafeRawBufferPointer(rebasing: bytes[(targetEnd + 1)..<lineEnd])
            guard version.count == 8, version.starts(with: "HTTP/".utf8), version[6] == UInt8(ascii: "."),
                Self.isDigit(version[5]), Self.isDigit(version[7])
            else { return .failure(.badRequest("malformed request line")) }
            guard version[5] == UInt8(ascii: "1"), version[7] <= UInt8(ascii: "1") else {
                return .failure(.httpVersionNotSupported)
            }
            let minor = Int(version[7] - UInt8(ascii: "0"))

            // Fields.
            if bytes.count - lineEnd > limits.maxHeaderBytes + 2 { return .failure(.headersTooLarge) }
            var fields: [(String, String)] = []
            fields.reserveCapacity(8)
            var contentLength: Int?
            var lengthCount = 0
            var chunked = false
            var encodingCount = 0
            var hostCount = 0
            var start = lineEnd + 2
            while start < bytes.count {
                let end = self.lineEnd(from: start)
                if fields.count == limits.maxHeaders { return .failure(.headersTooLarge) }
                guard let field = parseField(start, end) else { return .failure(.badRequest("malformed header field")) }
                let name = UnsafeRawBufferPointer(rebasing: bytes[start..<field.nameEnd])
                let value = UnsafeRawBufferPointer(rebasing: bytes[field.valueStart..<field.valueEnd])
                if Self.equalsLowercased(name, "content-length") {
                    lengthCount += 1
                    guard let length = Self.decimal(value) else { return .failure(.badRequest("invalid Content-Length")) }
                    contentLength = length
                } else if Self.equalsLowercased(name, "transfer-encoding") {
                    encodingCount += 1
                    chunked = Self.equalsLowercased(value, "chunked")
                } else if Self.equalsLowercased(name, "host") {
                    hostCount += 1
                    guard Self.isValidHost(value) else { return .failure(.badRequest("invalid Host")) }
                }
                fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
                start = end + 2
            }
            if lengthCount > 0 && encodingCount > 0 { return .failure(.badRequest("both Content-Length and Transfer-Encoding")) }
            if lengthCount > 1 { return .failure(.badRequest("more than one Content-Length")) }
            if encodingCount > 0 {
                // RFC 9112 §6.1: a 1.0 message with Transfer-Encoding has faulty framing.
                if minor == 0 { return .failure(.badRequest("Transfer-Encoding in an HTTP/1.0 request")) }
                guard encodingCount == 1, chunked else { return .failure(.unsupportedTransferEncoding) }
            }
            if let contentLength, contentLength > limits.maxBody.bytes { return .failure(.bodyTooLarge) }
            if hostCount > 1 { return .failure(.badRequest("more than one Host")) }
            if hostCount == 0 && minor == 1 { return .failure(.badRequest("missing Host")) }

            let method = HTTPMethod(rawValue: String(decoding: bytes[..<methodEnd], as: UTF8.self))
            let head = HTTPRequestHead(
                version: HTTPVersion(major: 1, minor: minor), method: method, uri: String(decoding: target, as: UTF8.self),
                headers: HTTPHeaders(fields))
            let framing: Framing = chunked ? .chunked : (contentLength ?? 0) > 0 ? .length(contentLength!) : .none
            return .success(ParsedHead(head: head, framing: framing))
        }

        /// The index of the CR ending the line that starts at `start` (the head's end if last).
        /// Every line but the last ends in CRLF: `findEndOfHead` found the first CRLF CRLF, and
        /// a bare LF inside is caught here.
        private func lineEnd(from start: Int) -> Int {
            var index = start
            while index < bytes.count {
                if bytes[index] == 0x0D || bytes[index] == 0x0A { return index }
                index += 1
            }
            return bytes.count
        }

        /// Whether the line ending at `end` (from `lineEnd(from:)`) ends in CRLF, or is the head's
        /// last: a line ended by a bare CR or LF is malformed.
        private func endsInCRLF(_ end: Int) -> Bool {
            end == bytes.count || (bytes[end] == 0x0D && end + 1 < bytes.count && bytes[end + 1] == 0x0A)
        }

        private struct Field {
            let nameEnd: Int
            let valueStart: Int
            let valueEnd: Int
        }

        /// `name: OWS value OWS` in `start..<end`, or nil when malformed.
        private func parseField(_ start: Int, _ end: Int) -> Field? {
            guard endsInCRLF(end) else { return nil }
            guard let colon = bytes[start..<end].firstIndex(of: UInt8(ascii: ":")), colon > start,
                bytes[start..<colon].allSatisfy(FieldSyntax.isTokenByte)
            else { return nil }
            var valueStart = colon + 1
            var valueEnd = end
            while valueStart < valueEnd && Self.isWhitespace(bytes[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart && Self.isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }
            if bytes[valueStart..<valueEnd].contains(where: FieldSyntax.isControl) { return nil }
            return Field(nameEnd: colon, valueStart: valueStart, valueEnd: valueEnd)
        }

        private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        /// Whether `bytes`, ASCII-lowercased, are `lowercase`.
        private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
            guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
            let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
            for index in 0..<bytes.count {
                let byte = bytes[index]
                let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
                if lowered != expected[index] { return false }
            }
            return true
        }

        /// `Host` (RFC 9110 §7.2): a host name (letters, digits, `-`, `.`, `_`), an IPv4 address or
        /// a bracketed IPv6 address, then an optional `:port` of up to five digits. Nothing else:
        /// no user info, no path, no spaces, no second host, so that what reaches the origin (or
        /// the cache key) is one plain authority.
        static func isValidHost(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard !bytes.isEmpty else { return false }
            var index = 0
            if bytes[0] == UInt8(ascii: "[") {
                guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
                let isAddressByte = { (byte: UInt8) in Self.hexDigit(byte) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") }
                guard bytes[1..<close].allSatisfy(isAddressByte) else { return false }
                index = close + 1
            } else {
                while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
                    let byte = bytes[index]
                    guard Self.isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                    else { return false }
                    index += 1
                }
                guard index > 0 else { return false }
            }
            if index == bytes.count { return true }
            guard bytes[index] == UInt8(ascii: ":") else { return false }
            let port = bytes[(index + 1)...]
            return !port.isEmpty && port.count <= 5 && port.allSatisfy(isDigit)
        }

        private static func isAlphanumeric(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
        }

        private static func hexDigit(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
        }

        /// Digits only, no sign, no list: `Content-Length: 3, 3` is refused, not deduplicated.
        private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
            guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
            var value = 0
            for byte in bytes {
                guard isDigit(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
    }
}

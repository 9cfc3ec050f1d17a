import CompressNIO
import NIOCore
import NIOHPACK
import NIOHTTP1
import Synchronization
import VitrineCore

/// A response held by the L1 store, kept in the form it is written to a socket: a hit writes
/// `head`, a few dynamic lines (`Age`, `Cache-Status`, `X-Cache`) and `body`, with no encoding
/// and no copy of the body.
package final class CachedResponse: CacheCosted, Sendable {
    let status: HTTPResponseStatus
    /// Status line and stored header fields (with `Content-Length`), without the blank line.
    let head: ByteBuffer
    /// The head of a 304 answer to a matching conditional request (RFC 9110 §15.4.5 fields).
    let notModifiedHead: ByteBuffer
    let body: ByteBuffer
    /// The gzip representation, for clients that accept it: its head (with `Content-Encoding`,
    /// `Content-Length` and a weak ETag) and body. Nil when the response is not worth compressing.
    let gzip: (head: ByteBuffer, body: ByteBuffer)?
    /// The same heads as HTTP/2 fields, made by the first h2 hit and kept (`http2Fields(gzip:)`):
    /// a node without an h2 listener, and an L2 hit that builds a response per request, never
    /// pay for them.
    private let http2Heads = Mutex<HTTP2Heads>(HTTP2Heads())
    let etag: String?
    let lastModified: String?
    /// Seconds of age the response had when it arrived (RFC 9111 §4.2.3's corrected initial age).
    let initialAge: Int
    let tags: [String]
    /// The header fields as stored, to merge a 304's fields into on revalidation (§4.3.4).
    let headers: HTTPHeaders
    /// How long past expiry it may be served while one refresh runs, in nanoseconds.
    let staleWhileRevalidate: UInt64
    /// How long past expiry it may be served when the origin fails, in nanoseconds.
    let staleIfError: UInt64
    /// The request fields the response varies on (lower-cased), empty for none.
    let varyFields: [String]
    /// The normalised values of `varyFields` in the request it answered.
    let variantID: String
    /// A marker under a primary key: the real responses are under secondary keys.
    let isVaryMarker: Bool

    init(
        status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer, initialAge: Int, tags: [String],
        staleWhileRevalidate: Duration = .zero, staleIfError: Duration = .zero, varyFields: [String] = [],
        variantID: String = "", isVaryMarker: Bool = false, compress: Bool = false, precompressed: ByteBuffer? = nil
    ) {
        self.varyFields = varyFields
        self.variantID = variantID
        self.isVaryMarker = isVaryMarker
        self.status = status
        // A slice of a larger buffer (a Redis read, an L2 entry) would keep all of it alive for as
        // long as this entry lives: one copy now, at store time, never on a hit.
        let body = body.compacted()
        self.body = body
        self.initialAge = initialAge
        self.tags = tags
        self.headers = headers
        self.etag = headers.first(name: "etag")
        self.lastModified = headers.first(name: "last-modified")
        self.staleWhileRevalidate = staleWhileRevalidate.nanoseconds
        self.staleIfError = staleIfError.nanoseconds

        var gzipBody: ByteBuffer? = compress ? precompressed : nil
        if gzipBody == nil && compress && status == .ok
            && !varyFields.contains("accept-encoding")
            && Compressibility.isCompressible(
                contentType: headers.first(name: "content-type"), contentEncoding: headers.first(name: "content-encoding"),
                size: body.readableBytes)
        {
            var source = body
            if let compressed = try? source.compress(with: .gzip(), allocator: ByteBufferAllocator()),
                compressed.readableBytes < body.readableBytes
            {
                gzipBody = compressed
            }
        }
        // The compressor's output buffer is sized for the worst case, not for what it wrote.
        gzipBody = gzipBody?.compacted()

        // The heads (full, 304, gzip) are written one after the other into one buffer and kept as
        // slices of it: one allocation, not three, and written through one pointer (an L2 hit
        // builds them per request).
        let fieldBytes = headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        var heads = ByteBuffer()
        var headEnd = 0
        var notModifiedEnd = 0
        // At most: three times the fields; two status lines of this status and one 304's (15
        // bytes and the reason each), three `Vary` (23), two `Content-Length` (38), one
        // `Content-Encoding` (24) and one `W/`. (Were it too little, writeHead doubles it.)
        let bound = 3 * fieldBytes + 2 * (15 + status.reasonPhrase.utf8.count) + 27 + 3 * 23 + 2 * 38 + 24 + 2
        heads.writeHead(capacity: bound) { head in
            head.statusLine(status)
            for (name, value) in headers { head.header(name, value) }
            // Both representations say they vary on Accept-Encoding, for caches further down.
            if gzipBody != nil { head.put("Vary: Accept-Encoding\r\n") }
            head.header("Content-Length", decimal: body.readableBytes)
            headEnd = head.count

            head.statusLine(.notModified)
            for (name, value) in headers where Self.notModifiedFields.contains(where: name.caseInsensitiveEquals) {
                head.header(name, value)
            }
            if gzipBody != nil { head.put("Vary: Accept-Encoding\r\n") }
            notModifiedEnd = head.count

            if let gzipBody {
                head.statusLine(status)
                for (name, value) in headers {
                    // A different content coding is a different representation: its strong ETag is
                    // weakened (as nginx does) so that it never matches the identity bytes strongly.
                    if name.caseInsensitiveEquals("etag"), !value.hasPrefix("W/") {
                        head.put(name)
                        head.put(": W/")
                        head.put(value)
                        head.put("\r\n")
                    } else {
                        head.header(name, value)
                    }
                }
                head.put("Vary: Accept-Encoding\r\n")
                head.put("Content-Encoding: gzip\r\n")
                head.header("Content-Length", decimal: gzipBody.readableBytes)
            }
        }
        self.head = heads.getSlice(at: 0, length: headEnd) ?? ByteBuffer()
        self.notModifiedHead = heads.getSlice(at: headEnd, length: notModifiedEnd - headEnd) ?? ByteBuffer()
        if let gzipBody {
            self.gzip = (heads.getSlice(at: notModifiedEnd, length: heads.writerIndex - notModifiedEnd) ?? ByteBuffer(), gzipBody)
        } else {
            self.gzip = nil
        }
        // The heads' one storage counts once.
        var cost = Self.objectOverhead + heads.storageCapacity + body.storageCapacity
        if let gzip { cost += gzip.body.storageCapacity }
        // Each field is in `headers` and once or twice more as an HTTP/2 field (its value shared),
        // charged whether or not an h2 hit has made them yet: the budget holds either way.
        let representations = gzipBody == nil ? 2 : 3
        for (name, value) in headers { cost += name.utf8.count + value.utf8.count + Self.fieldOverhead * representations }
        for text in tags { cost += text.utf8.count + Self.fieldOverhead / 2 }
        for text in varyFields { cost += text.utf8.count + Self.fieldOverhead / 2 }
        cost += variantID.utf8.count + Self.fieldOverhead / 2
        self.cost = cost
    }

    /// The HTTP/2 fields made once, on the first h2 hit of each representation.
    private struct HTTP2Heads: Sendable {
        var identity: HPACKHeaders?
        var gzip: HPACKHeaders?
    }

    /// The stored head as HTTP/2 fields (`:status` first, names in lower case), for the identity
    /// or the gzip representation: an h2 hit adds its own few fields to a copy and writes HEADERS.
    /// Made by the first h2 hit and kept.
    func http2Fields(gzip wantsGzip: Bool) -> HPACKHeaders {
        let useGzip = wantsGzip && gzip != nil
        if let made = http2Heads.withLock({ useGzip ? $0.gzip : $0.identity }) { return made }
        let fields = Self.http2Fields(
            status: status, headers: headers, varies: gzip != nil, length: useGzip ? gzip?.body.readableBytes ?? 0 : body.readableBytes,
            gzip: useGzip)
        http2Heads.withLock { heads in
            if useGzip { heads.gzip = fields } else { heads.identity = fields }
        }
        return fields
    }

    /// A stored response's fields for HTTP/2: `:status`, the stored fields with their names in
    /// lower case (RFC 9113 §8.2.1; connection-specific ones were never stored), `vary` when a
    /// gzip representation exists, and the representation's length; for gzip, a weak ETag and
    /// `content-encoding`.
    static func http2Fields(status: HTTPResponseStatus, headers: HTTPHeaders, varies: Bool, length: Int, gzip: Bool) -> HPACKHeaders {
        var fields = HPACKHeaders()
        fields.reserveCapacity(headers.count + 8)
        fields.add(name: ":status", value: String(status.code))
        for (name, value) in headers {
            let lower = name.lowercased()
            if gzip, lower == "etag", !value.hasPrefix("W/") {
                fields.add(name: lower, value: "W/" + value)
            } else {
                fields.add(name: lower, value: value)
            }
        }
        if varies { fields.add(name: "vary", value: "Accept-Encoding") }
        if gzip { fields.add(name: "content-encoding", value: "gzip") }
        fields.add(name: "content-length", value: String(length))
        return fields
    }

    /// The object, its buffers' headers and its small strings.
    static let objectOverhead = 384
    /// One stored header field beyond its bytes: its pair in `headers`, and its strings' heap
    /// allocations.
    static let fieldOverhead = 64

    /// Fields a 304 repeats from the full response (compared without case, and without
    /// lower-casing each name: an L2 hit builds a response per request).
    static let notModifiedFields = [
        "cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified",
    ]

    /// What this response keeps alive, in bytes: the storage its buffers hold (ByteBuffer rounds
    /// every allocation up to a power of two, so that is up to twice what they carry), the
    /// header fields kept for revalidation, its strings and the object itself. The L1 budget is
    /// charged this, so that the budget is a bound on memory, not on bytes carried.
    package let cost: Int

    /// The marker stored under a primary key whose responses vary on `fields`.
    static func varyMarker(fields: [String]) -> CachedResponse {
        CachedResponse(status: .ok, headers: HTTPHeaders(), body: ByteBuffer(), initialAge: 0, tags: [], varyFields: fields, isVaryMarker: true)
    }

    /// Whether a conditional request can be answered with 304 (RFC 9110 §13.2.2: `If-None-Match`
    /// when present, else `If-Modified-Since` against `Last-Modified`).
    func isNotModified(for request: HTTPHeaders) -> Bool {
        if let ifNoneMatch = request.first(name: "if-none-match") { return matches(ifNoneMatch: ifNoneMatch) }
        guard let since = request.first(name: "if-modified-since").flatMap({ HTTPDate.parse($0) }),
            let modified = lastModified.flatMap({ HTTPDate.parse($0) })
        else { return false }
        return modified <= since
    }

    /// Whether a `Range` may be applied (RFC 9110 §13.1.5): always without `If-Range`; with one,
    /// only when it names this representation: its ETag, strong comparison (weak tags never
    /// match), or its `Last-Modified` date exactly.
    func rangeApplies(ifRange value: String?) -> Bool {
        guard let value = value?.trimmingCharacters(in: " \t") else { return true }
        if value.hasPrefix("\"") || value.hasPrefix("W/") {
            guard let etag, !etag.hasPrefix("W/"), !value.hasPrefix("W/") else { return false }
            return etag == value
        }
        guard let date = HTTPDate.parse(value), let modified = lastModified.flatMap({ HTTPDate.parse($0) }) else { return false }
        return date == modified
    }

    /// Whether an `If-None-Match` field value matches this response's ETag (weak comparison,
    /// RFC 9110 §13.1.2).
    func matches(ifNoneMatch value: String) -> Bool {
        guard let etag else { return false }
        let ours = Self.opaqueTag(etag)
        for candidate in value.split(separator: ",") {
            let trimmed = candidate.trimmingCharacters(in: " \t")
            if trimmed == "*" { return true }
            if Self.opaqueTag(trimmed) == ours { return true }
        }
        return false
    }

    private static func opaqueTag<S: StringProtocol>(_ tag: S) -> Substring {
        let text = Substring(tag)
        return text.hasPrefix("W/") ? text.dropFirst(2) : text
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> Substring {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return Substring(slice)
    }
}

extension ByteBuffer {
    /// These readable bytes in storage of their own, when the storage they are in is larger
    /// than the smallest that could hold them (a slice of a larger read or entry, or a buffer
    /// sized for more than was written); the buffer itself otherwise.
    func compacted() -> ByteBuffer {
        let needed = readableBytes == 0 ? 0 : 1 << (Int.bitWidth - (readableBytes - 1).leadingZeroBitCount)
        guard storageCapacity > needed else { return self }
        var copy = ByteBufferAllocator().buffer(capacity: readableBytes)
        copy.writeImmutableBuffer(self)
        return copy
    }
}

/// The L1 store of responses.
package typealias ResponseStore = L1Store<CachedResponse>

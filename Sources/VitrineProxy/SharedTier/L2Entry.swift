import NIOCore
import NIOHTTP1
import VitrineCore

/// A response as kept in the shared tier: what another node needs to serve it as its own.
package struct L2Entry {
    var isVaryMarker: Bool
    var status: HTTPResponseStatus
    var initialAge: Int
    /// Wall-clock seconds when it was stored.
    var storedAt: Int
    var ttlMilliseconds: UInt64
    var retentionMilliseconds: UInt64
    var staleWhileRevalidateMilliseconds: UInt64
    var staleIfErrorMilliseconds: UInt64
    var varyFields: [String]
    var variantID: String
    package var tags: [String]
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// The gzip copy, when the storing node made one: an L2 hit then costs no compression.
    var gzipBody: ByteBuffer? = nil
}

/// The entry's bytes: a magic, a version, then fixed fields and length-prefixed strings. An entry
/// of another version, or damaged, decodes as nil: a miss, never a crash.
package enum L2EntryCodec {
    static let magic: UInt32 = 0x5654_4C32  // "VTL2"
    static let version: UInt8 = 1
    /// The latest `storedAt` accepted: 9999-12-31T23:59:59Z.
    static let maxStoredAt: Int64 = 253_402_300_799
    /// The longest lifetime accepted, in milliseconds: four times RFC 9111's 2^31 seconds, room
    /// for freshness plus grace plus keep.
    static let maxMilliseconds = UInt64(DeltaSeconds.maximum) * 4000

    package static func encode(_ entry: L2Entry, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 128 + entry.body.readableBytes + entry.headers.count * 48)
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(UInt8(entry.isVaryMarker ? 1 : 0))
        buffer.writeInteger(UInt16(entry.status.code))
        buffer.writeInteger(UInt32(clamping: entry.initialAge))
        buffer.writeInteger(Int64(entry.storedAt))
        buffer.writeInteger(entry.ttlMilliseconds)
        buffer.writeInteger(entry.retentionMilliseconds)
        buffer.writeInteger(entry.staleWhileRevalidateMilliseconds)
        buffer.writeInteger(entry.staleIfErrorMilliseconds)
        writeStrings(entry.varyFields, into: &buffer)
        writeString(entry.variantID, into: &buffer)
        writeStrings(entry.tags, into: &buffer)
        buffer.writeInteger(UInt16(clamping: entry.headers.count))
        for (name, value) in entry.headers.prefix(Int(UInt16.max)) {
            writeString(name, into: &buffer)
            writeString(value, into: &buffer)
        }
        buffer.writeInteger(UInt32(entry.body.readableBytes))
        buffer.writeImmutableBuffer(entry.body)
        buffer.writeInteger(UInt32(entry.gzipBody?.readableBytes ?? 0))
        if let gzip = entry.gzipBody { buffer.writeImmutableBuffer(gzip) }
        return buffer
    }

    package static func decode(_ bytes: ByteBuffer) -> L2Entry? {
        var buffer = bytes
        guard buffer.readInteger(as: UInt32.self) == magic, buffer.readInteger(as: UInt8.self) == version,
            let kind = buffer.readInteger(as: UInt8.self), let status = buffer.readInteger(as: UInt16.self),
            let initialAge = buffer.readInteger(as: UInt32.self), let storedAt = buffer.readInteger(as: Int64.self),
            let ttl = buffer.readInteger(as: UInt64.self), let retention = buffer.readInteger(as: UInt64.self),
            let staleWhileRevalidate = buffer.readInteger(as: UInt64.self), let staleIfError = buffer.readInteger(as: UInt64.self),
            let varyFields = readStrings(&buffer), let variantID = readString(&buffer), let tags = readStrings(&buffer),
            let headerCount = buffer.readInteger(as: UInt16.self),
            // Bounds that keep every later sum and conversion in range: an entry outside them
            // was not written by this codec, and is a miss.
            (0...maxStoredAt).contains(storedAt),
            [ttl, retention, staleWhileRevalidate, staleIfError].allSatisfy({ $0 <= maxMilliseconds })
        else { return nil }
        var headers = HTTPHeaders()
        // Each field takes at least its two lengths: a count the bytes cannot hold reserves no more
        // than they could.
        headers.reserveCapacity(min(Int(headerCount), buffer.readableBytes / 8))
        for _ in 0..<headerCount {
            // What another node (or anything else that can write to Redis) stored becomes bytes
            // on a client's socket: a name that is not a token, or a value with a control
            // character (CR LF above all), is a damaged entry, never a header.
            guard let name = readString(&buffer), let value = readString(&buffer), FieldSyntax.isToken(name), FieldSyntax.isFieldValue(value) else {
                return nil
            }
            headers.add(name: name, value: value)
        }
        guard let length = buffer.readInteger(as: UInt32.self), let body = buffer.readSlice(length: Int(length)),
            let gzipLength = buffer.readInteger(as: UInt32.self), let gzip = buffer.readSlice(length: Int(gzipLength)),
            buffer.readableBytes == 0
        else { return nil }
        return L2Entry(
            isVaryMarker: kind == 1, status: HTTPResponseStatus(statusCode: Int(status)), initialAge: Int(initialAge),
            storedAt: Int(storedAt), ttlMilliseconds: ttl, retentionMilliseconds: retention,
            staleWhileRevalidateMilliseconds: staleWhileRevalidate, staleIfErrorMilliseconds: staleIfError,
            varyFields: varyFields, variantID: variantID, tags: tags, headers: headers, body: body,
            gzipBody: gzipLength == 0 ? nil : gzip)
    }

    private static func writeString(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
    }

    private static func writeStrings(_ texts: [String], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(texts.count))
        for text in texts { writeString(text, into: &buffer) }
    }

    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt32.self), Int(length) <= buffer.readableBytes else { return nil }
        return buffer.readString(length: Int(length))
    }

    private static func readStrings(_ buffer: inout ByteBuffer) -> [String]? {
        guard let count = buffer.readInteger(as: UInt32.self), Int(count) <= buffer.readableBytes else { return nil }
        var texts: [String] = []
        texts.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let text = readString(&buffer) else { return nil }
            texts.append(text)
        }
        return texts
    }
}

extension L2Entry {
    /// The entry for a stored response.
    init(_ response: CachedResponse, plan: StoragePlan, storedAt: Int) {
        self.init(
            isVaryMarker: response.isVaryMarker, status: response.status, initialAge: response.initialAge, storedAt: storedAt,
            ttlMilliseconds: plan.ttl.milliseconds, retentionMilliseconds: plan.retention.milliseconds,
            staleWhileRevalidateMilliseconds: response.staleWhileRevalidate / 1_000_000,
            staleIfErrorMilliseconds: response.staleIfError / 1_000_000, varyFields: response.varyFields,
            variantID: response.variantID, tags: response.tags, headers: response.headers, body: response.body,
            gzipBody: response.gzip?.body)
    }

    /// What this node stores in its L1 for it, `now` wall seconds: the response (aged by the time
    /// it spent in L2), its remaining freshness and retention; nil once it is past both.
    /// Whether it is still fresh at `now` (Unix seconds): what `localCopy` would keep with a TTL.
    package func isFresh(now: Int) -> Bool {
        UInt64(max(0, now - storedAt)) * 1000 < ttlMilliseconds
    }

    func localCopy(now: Int, compress: Bool) -> (response: CachedResponse, ttl: Duration, retention: Duration)? {
        let elapsed = UInt64(max(0, now - storedAt)) * 1000
        guard elapsed < ttlMilliseconds + retentionMilliseconds else { return nil }
        let ttl = ttlMilliseconds > elapsed ? ttlMilliseconds - elapsed : 0
        let retention = ttl > 0 ? retentionMilliseconds : retentionMilliseconds - (elapsed - ttlMilliseconds)
        let response: CachedResponse
        if isVaryMarker {
            response = .varyMarker(fields: varyFields)
        } else {
            response = CachedResponse(
                status: status, headers: headers, body: body, initialAge: initialAge + Int(elapsed / 1000), tags: tags,
                staleWhileRevalidate: .milliseconds(Int64(staleWhileRevalidateMilliseconds)),
                staleIfError: .milliseconds(Int64(staleIfErrorMilliseconds)), varyFields: varyFields, variantID: variantID,
                compress: compress, precompressed: gzipBody)
        }
        return (response, .milliseconds(Int64(ttl)), .milliseconds(Int64(retention)))
    }
}

extension Duration {
    package var milliseconds: UInt64 { nanoseconds / 1_000_000 }
}

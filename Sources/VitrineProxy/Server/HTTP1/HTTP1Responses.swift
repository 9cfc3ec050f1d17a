import NIOCore
import NIOHTTP1
import VitrineCore

/// How answers are written on an HTTP/1.1 connection: the only place the request path's answers
/// become HTTP/1.1 bytes. A stored response's head was encoded when it was stored; a hit copies
/// it with `Age`, `Cache-Status`, `X-Cache` and `Connection` into one small buffer, and its body
/// goes out as the stored bytes, never copied.
extension ClientConnectionHandler {
    func sendStored(_ answer: StoredAnswer, age: Int, verdict: CacheVerdict, for request: HTTPRequestHead, keepAlive: Bool) {
        let isHTTP10 = request.version.minor == 0
        switch answer {
        case .full(let response, let gzip, _):
            writeStoredHead(gzip ? response.gzip?.head ?? response.head : response.head, age: age, verdict: verdict, keepAlive: keepAlive, isHTTP10: isHTTP10)
        case .notModified(let response):
            writeStoredHead(response.notModifiedHead, age: age, verdict: verdict, keepAlive: keepAlive, isHTTP10: isHTTP10)
        case .partial(let response, let first, let last):
            // Built field by field: ranges are rare enough not to keep an encoded head for them.
            var head = headBuffer(capacity: 512)
            head.writeStaticString("HTTP/1.1 206 Partial Content\r\n")
            for (name, value) in response.headers where !name.caseInsensitiveEquals("content-length") {
                head.writeHeader(name, value)
            }
            head.writeHeader("Content-Range", "bytes \(first)-\(last)/\(response.body.readableBytes)")
            head.writeHeader("Content-Length", decimal: last - first + 1)
            head.writeHitFields(age: age, verdict: verdict, keepAlive: keepAlive, isHTTP10: isHTTP10)
            writeHead(head)
        case .unsatisfiable(let response):
            var head = headBuffer(capacity: 256)
            head.writeStaticString("HTTP/1.1 416 Range Not Satisfiable\r\n")
            head.writeHeader("Content-Range", "bytes */\(response.body.readableBytes)")
            head.writeStaticString("Content-Length: 0\r\n")
            head.writeHitFields(age: age, verdict: verdict, keepAlive: keepAlive, isHTTP10: isHTTP10)
            writeHead(head)
        }
        if let body = answer.body { write(body) }
    }

    /// A head kept at store time, copied (a few hundred bytes) into the buffer of this hit's own
    /// fields: one buffer less for the channel to queue and for `writev` to gather.
    private func writeStoredHead(_ storedHead: ByteBuffer, age: Int, verdict: CacheVerdict, keepAlive: Bool, isHTTP10: Bool) {
        var head = headBuffer(capacity: storedHead.readableBytes + 128)
        head.writeImmutableBuffer(storedHead)
        head.writeHitFields(age: age, verdict: verdict, keepAlive: keepAlive, isHTTP10: isHTTP10)
        writeHead(head)
    }

    func sendHead(
        _ status: HTTPResponseStatus, fields: HTTPHeaders, body: StreamedBody, purge: String?, verdict: CacheVerdict,
        for request: HTTPRequestHead, keepAlive: Bool
    ) {
        // A body of unknown length: chunks to an HTTP/1.1 client; to an HTTP/1.0 one, the
        // connection's close ends it.
        chunkedBody = body == .unsized && request.version.minor >= 1
        let closeDelimited = body == .unsized && request.version.minor == 0
        if closeDelimited { connection.closeAfterAnswer() }
        var buffer = allocator.buffer(capacity: 512)
        buffer.writeStatusLine(status)
        for (name, value) in fields { buffer.writeHeader(name, value) }
        if chunkedBody { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        verdict.write(into: &buffer)
        if let purge { buffer.writeHeader("Vitrine-Purge", purge) }
        buffer.writeConnectionFieldAndEnd(keepAlive: keepAlive && !closeDelimited, isHTTP10: request.version.minor == 0)
        write(buffer)
    }

    /// An interim response, to an HTTP/1.1 client only (an HTTP/1.0 one would take it for the
    /// answer).
    func sendInterim(_ status: HTTPResponseStatus, fields: HTTPHeaders, for request: HTTPRequestHead) {
        guard request.version.minor >= 1 else { return }
        if status == .continue, fields.isEmpty {
            write(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n"))
            return
        }
        var buffer = allocator.buffer(capacity: 256)
        // The origin's reason phrase is not kept by the decoder for statuses NIO does not name.
        let code = Int(status.code)
        let phrase = code == 103 ? "Early Hints" : code == 102 ? "Processing" : status.reasonPhrase
        buffer.writeString("HTTP/1.1 \(code) \(phrase)\r\n")
        for (name, value) in fields { buffer.writeHeader(name, value) }
        buffer.writeStaticString("\r\n")
        write(buffer)
    }

    func sendBodyPart(_ buffer: ByteBuffer) {
        guard chunkedBody else { return write(buffer) }
        var header = allocator.buffer(capacity: 16)
        header.writeChunkHeader(size: buffer.readableBytes)
        write(header)
        write(buffer)
        write(ByteBuffer(staticString: "\r\n"))
    }

    func sendBodyEnd() {
        if chunkedBody { write(ByteBuffer(staticString: "0\r\n\r\n")) }
        chunkedBody = false
    }

    /// The bytes of an error answer.
    func sendError(_ error: ProxyError, keepAlive: Bool) {
        let keepAlive = keepAlive && !error.closesConnection
        let body = error.jsonBody
        var buffer = allocator.buffer(capacity: 192 + body.utf8.count)
        buffer.writeStatusLine(error.status)
        buffer.writeStaticString("Content-Type: application/json\r\nCache-Control: no-store\r\n")
        buffer.writeHeader("Content-Length", decimal: body.utf8.count)
        if !keepAlive { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        buffer.writeString(body)
        write(buffer)
    }
}

import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import VitrineCore

/// Carries one HTTP/2 stream through the request path that serves HTTP/1.1, unchanged: the
/// stream's request is handed to its `ClientConnectionHandler` as HTTP/1.1 bytes, which the same
/// `RequestDecoder` reads with the same rules and limits, and the answer the handler writes as
/// HTTP/1.1 is sent back as HEADERS and DATA frames. So a request over h2 is received, looked up,
/// fetched and delivered by the one request path, through the one cache.
///
/// What crosses is checked on the way: a field name or value holding CR, LF or NUL (which
/// HTTP/2 may carry, RFC 9113 §8.2.1) resets the stream rather than reach the HTTP/1.1 bytes,
/// where it would be a line break; the request's framing is the stream's own (its end, or
/// DATA frames counted against `content-length` by swift-nio-http2), never a field the client
/// chose. Connection-specific fields are dropped from the answer (§8.2.2).
///
/// A stored body is sent as DATA frames that are slices of the stored buffer: no copy.
final class HTTP2StreamAdapter: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// Where the request is: nothing yet, its body (chunked when it has no length), or done.
    private enum RequestState {
        case awaitingHead
        case body(chunked: Bool)
        case ended
    }

    /// Where the answer is, as the handler writes it.
    private enum ResponseState {
        /// Bytes of a head, until its blank line.
        case head(ByteBuffer)
        /// A body of a known length: the bytes still to come.
        case body(remaining: Int)
        /// A chunked body (`Transfer-Encoding: chunked`), parsed to frames.
        case chunked(ChunkedBodyState)
        /// A body that ends when the handler closes (no length and not chunked).
        case untilClose
        /// Written whole; END_STREAM waits for `AnswerComplete` (or the handler's close).
        case complete
        /// Sent whole (END_STREAM), or reset: what else is written is dropped.
        case done
    }

    /// The handler's word that it is done with the answer (and with the fetch that made it):
    /// the stream may end. Sent as an outbound user event.
    struct AnswerComplete {}

    private var request = RequestState.awaitingHead
    /// The final head went out: from then on, a close before the answer is whole resets.
    private var headSent = false
    private var response = ResponseState.head(ByteBuffer())
    /// The request's method: a HEAD's answer has no body whatever its length says.
    private var method = ""
    /// The PROXY protocol header the connection began with: given to the handler, whose
    /// connection this stream is, as it would be on HTTP/1.1.
    private let proxyHeader: ProxyProtocolHeader?

    init(proxyHeader: ProxyProtocolHeader?) {
        self.proxyHeader = proxyHeader
    }

    private var proxyHeaderGiven = false

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { giveProxyHeader(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        giveProxyHeader(context: context)
        context.fireChannelActive()
    }

    private func giveProxyHeader(context: ChannelHandlerContext) {
        guard let proxyHeader, !proxyHeaderGiven else { return }
        proxyHeaderGiven = true
        context.fireUserInboundEventTriggered(proxyHeader)
    }

    // MARK: Request: frames to HTTP/1.1 bytes

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            switch request {
            case .awaitingHead:
                guard let head = Self.http1Head(headers.headers, endStream: headers.endStream, allocator: context.channel.allocator) else {
                    reset(context: context, code: .protocolError)
                    return
                }
                method = head.method
                request = head.body.map { .body(chunked: $0 == .chunked) } ?? .ended
                context.fireChannelRead(wrapInboundOut(head.bytes))
            case .body(let chunked):
                // Trailers: not forwarded (the origin gets the body, which is what is keyed and
                // framed); they end the request.
                guard headers.endStream else { return }
                request = .ended
                if chunked { context.fireChannelRead(wrapInboundOut(ByteBuffer(staticString: "0\r\n\r\n"))) }
            case .ended:
                break
            }
        case .data(let frame):
            guard case .body(let chunked) = request, case .byteBuffer(let bytes) = frame.data else { return }
            if bytes.readableBytes > 0 {
                if chunked {
                    var size = context.channel.allocator.buffer(capacity: 18)
                    size.writeString(String(bytes.readableBytes, radix: 16))
                    size.writeStaticString("\r\n")
                    context.fireChannelRead(wrapInboundOut(size))
                    context.fireChannelRead(wrapInboundOut(bytes))
                    context.fireChannelRead(wrapInboundOut(ByteBuffer(staticString: "\r\n")))
                } else {
                    context.fireChannelRead(wrapInboundOut(bytes))
                }
            }
            if frame.endStream {
                request = .ended
                if chunked { context.fireChannelRead(wrapInboundOut(ByteBuffer(staticString: "0\r\n\r\n"))) }
            }
        case .rstStream:
            context.close(promise: nil)
        default:
            break
        }
    }

    /// How the body that follows a head is framed for the request path.
    enum BodyFraming: Equatable {
        /// As it comes: its `content-length` says how much (swift-nio-http2 counts the DATA).
        case sized
        /// Chunked by the adapter, one chunk per DATA frame, ended with the stream.
        case chunked
    }

    /// The HTTP/1.1 head for a stream's HEADERS, its method, and how a body follows (nil: none,
    /// the stream ended with its HEADERS); nil when they cannot make one (no method or path,
    /// CONNECT, a byte that would break a line). A plain function of untrusted fields: fuzzed.
    static func http1Head(
        _ headers: HPACKHeaders, endStream: Bool, allocator: ByteBufferAllocator
    ) -> (bytes: ByteBuffer, method: String, body: BodyFraming?)? {
        var method: String?
        var path: String?
        var authority: String?
        var hasLength = false
        var cookies: [String] = []
        for (name, value, _) in headers {
            // swift-nio-http2 checks names already (lower-case tokens); checked again here, as
            // this is where a name would become part of an HTTP/1.1 line.
            guard isClean(value), name.hasPrefix(":") || isToken(name) else { return nil }
            switch name {
            // Each pseudo-header once (RFC 9113 §8.3): a second would be a second request line.
            case ":method":
                guard method == nil else { return nil }
                method = value
            case ":path":
                guard path == nil else { return nil }
                path = value
            case ":authority":
                guard authority == nil else { return nil }
                authority = value
            case ":scheme", ":protocol": break
            case _ where name.hasPrefix(":"): return nil
            case "content-length": hasLength = true
            case "cookie": cookies.append(value)
            default: break
            }
        }
        guard let method, let path, !method.isEmpty, !path.isEmpty, method != "CONNECT",
            method.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        var head = allocator.buffer(capacity: 256)
        head.writeString(method)
        head.writeStaticString(" ")
        head.writeString(path)
        head.writeStaticString(" HTTP/1.1\r\n")
        // `:authority` is the request's host (RFC 9113 §8.3.1); a `host` field beside it is
        // dropped rather than make two.
        if let authority {
            head.writeStaticString("host: ")
            head.writeString(authority)
            head.writeStaticString("\r\n")
        }
        for (name, value, _) in headers where !name.hasPrefix(":") {
            switch name {
            case "cookie", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te":
                continue
            case "host" where authority != nil:
                continue
            default:
                head.writeString(name)
                head.writeStaticString(": ")
                head.writeString(value)
                head.writeStaticString("\r\n")
            }
        }
        // HTTP/2 may split cookies across fields; HTTP/1.1 has them in one (RFC 9113 §8.2.3).
        if !cookies.isEmpty {
            head.writeStaticString("cookie: ")
            head.writeString(cookies.joined(separator: "; "))
            head.writeStaticString("\r\n")
        }
        let body: BodyFraming?
        if endStream {
            body = nil
        } else if hasLength {
            body = .sized
        } else {
            head.writeStaticString("transfer-encoding: chunked\r\n")
            body = .chunked
        }
        head.writeStaticString("\r\n")
        return (head, method, body)
    }

    /// No CR, LF or NUL: what HTTP/2 may carry in a field value but HTTP/1.1 cannot.
    private static func isClean(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    /// A field name as HTTP/2 allows it: a token in lower case (RFC 9110 §5.6.2, RFC 9113 §8.2.1).
    private static func isToken(_ name: String) -> Bool {
        FieldSyntax.isToken(name) && !name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    // MARK: Response: HTTP/1.1 bytes to frames

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // A write that makes no frame of its own is done at once: what it carried goes out with a
        // later frame.
        var bytes = unwrapOutboundIn(data)
        while true {
            switch response {
            case .head(var pending):
                if pending.readableBytes == 0 {
                    pending = bytes
                } else {
                    pending.writeBuffer(&bytes)
                }
                bytes = ByteBuffer()
                guard let end = Self.headEnd(in: pending) else {
                    response = .head(pending)
                    guard pending.readableBytes <= 64 << 10 else { return fail(context: context, promise: promise) }
                    promise?.succeed()
                    return
                }
                guard let head = pending.readSlice(length: end), let parsed = Self.responseHeaders(head) else {
                    return fail(context: context, promise: promise)
                }
                bytes = pending
                let status = parsed.status
                if status >= 100 && status < 200 {
                    // Interim (103 Early Hints): its own HEADERS, then the final head.
                    response = .head(ByteBuffer())
                    context.write(wrapOutboundOut(.headers(.init(headers: parsed.headers))), promise: nil)
                    continue
                }
                let bodyless = method == "HEAD" || status == 204 || status == 304
                headSent = true
                if bodyless || parsed.length == 0 {
                    response = .complete
                    context.write(wrapOutboundOut(.headers(.init(headers: parsed.headers))), promise: promise)
                    return
                }
                response = parsed.chunked ? .chunked(ChunkedBodyState()) : parsed.length.map { .body(remaining: $0) } ?? .untilClose
                context.write(wrapOutboundOut(.headers(.init(headers: parsed.headers))), promise: nil)
                if bytes.readableBytes == 0 {
                    promise?.succeed()
                    return
                }
            case .body(let remaining):
                let slice = bytes.readSlice(length: min(remaining, bytes.readableBytes)) ?? ByteBuffer()
                let left = remaining - slice.readableBytes
                response = left == 0 ? .complete : .body(remaining: left)
                context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(slice)))), promise: promise)
                return
            case .chunked(var state):
                while let piece = state.next(from: &bytes) {
                    switch piece {
                    case .data(let slice):
                        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(slice)))), promise: nil)
                    case .end:
                        response = .complete
                        promise?.succeed()
                        return
                    case .malformed:
                        return fail(context: context, promise: promise)
                    }
                }
                response = .chunked(state)
                promise?.succeed()
                return
            case .untilClose:
                context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
                return
            case .complete, .done:
                promise?.succeed()
                return
            }
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is AnswerComplete else { return context.triggerUserOutboundEvent(event, promise: promise) }
        endStream(context: context)
        promise?.succeed()
    }

    /// Sends END_STREAM if the answer is whole: true when it did (or had).
    @discardableResult
    private func endStream(context: ChannelHandlerContext) -> Bool {
        switch response {
        case .complete, .untilClose:
            response = .done
            context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
            return true
        case .done:
            return true
        case .head, .body, .chunked:
            return false
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // A whole answer (or one that ran until the close) ends the stream; one cut short is
        // reset, so that the client does not take a truncated body for the whole of it.
        // (With nothing of an answer written, closing the stream resets it anyway.)
        if !endStream(context: context) && headSent {
            response = .done
            context.writeAndFlush(wrapOutboundOut(.rstStream(.internalError)), promise: nil)
        }
        // Half-closing a stream's output is its END_STREAM, sent above: nothing more to do.
        if mode == .output {
            promise?.succeed()
            return
        }
        context.close(mode: mode, promise: promise)
    }

    /// The handler wrote something that is not an HTTP/1.1 answer: the stream is reset.
    private func fail(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        response = .done
        promise?.fail(HTTP2StreamAdapterError.malformedResponse)
        reset(context: context, code: .internalError)
    }

    private func reset(context: ChannelHandlerContext, code: HTTP2ErrorCode) {
        request = .ended
        context.writeAndFlush(wrapOutboundOut(.rstStream(code)), promise: nil)
        context.close(promise: nil)
    }

    /// The length of the head in `buffer` up to and including its blank line, if it is there.
    static func headEnd(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= 4 else { return nil }
            var index = 0
            while index + 3 < bytes.count {
                if bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
                    return index + 4
                }
                index += 1
            }
            return nil
        }
    }

    /// An HTTP/1.1 response head as HTTP/2 fields: `:status`, the fields with their names in
    /// lower case, without connection-specific ones; and how its body is framed.
    static func responseHeaders(_ head: ByteBuffer) -> (status: Int, headers: HPACKHeaders, length: Int?, chunked: Bool)? {
        // Byte by byte, not through `String`'s characters: this runs for every answer, and
        // splitting the head as text cost more than the rest of an h2 hit together.
        head.withUnsafeReadableBytes { bytes -> (status: Int, headers: HPACKHeaders, length: Int?, chunked: Bool)? in
            let count = bytes.count
            /// The end of the line starting at `start` (the index of its CR, or of its LF).
            func lineEnd(from start: Int) -> Int {
                var index = start
                while index < count && bytes[index] != 0x0A { index &+= 1 }
                return index > start && bytes[index &- 1] == 0x0D ? index &- 1 : index
            }
            func next(after end: Int) -> Int {
                var index = end
                if index < count && bytes[index] == 0x0D { index &+= 1 }
                if index < count && bytes[index] == 0x0A { index &+= 1 }
                return index
            }
            // `HTTP/1.x NNN reason`
            let statusEnd = lineEnd(from: 0)
            guard statusEnd >= 12, bytes[0] == UInt8(ascii: "H"), bytes[5] == UInt8(ascii: "1"), bytes[8] == 0x20 else { return nil }
            var status = 0
            for index in 9..<12 {
                let digit = bytes[index] &- 0x30
                guard digit <= 9 else { return nil }
                status = status &* 10 &+ Int(digit)
            }
            guard status >= 100 else { return nil }
            var headers = HPACKHeaders()
            headers.reserveCapacity(16)
            headers.add(name: ":status", value: String(status))
            var length: Int?
            var chunked = false
            var start = next(after: statusEnd)
            while start < count {
                let end = lineEnd(from: start)
                if end == start { break }  // the blank line
                var colon = start
                while colon < end && bytes[colon] != UInt8(ascii: ":") { colon &+= 1 }
                guard colon < end, colon > start else { return nil }
                var valueStart = colon &+ 1
                while valueStart < end && (bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09) { valueStart &+= 1 }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<colon]).lazy.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<end]), as: UTF8.self)
                start = next(after: end)
                switch name {
                case "connection", "keep-alive", "proxy-connection", "upgrade":
                    continue
                case "transfer-encoding":
                    chunked = value.lowercased().contains("chunked")
                    continue
                case "content-length":
                    guard let parsed = Int(value), parsed >= 0 else { return nil }
                    length = parsed
                default:
                    break
                }
                headers.add(name: name, value: value)
            }
            return (status, headers, chunked ? nil : length, chunked)
        }
    }
}

enum HTTP2StreamAdapterError: Error {
    case malformedResponse
}

/// Reads a chunked body (RFC 9112 §7.1) as the handler writes it, in whatever pieces: each
/// chunk's data as slices of what was written (no copy), then the end.
struct ChunkedBodyState {
    enum Piece {
        case data(ByteBuffer)
        case end
        case malformed
    }

    private enum Step {
        /// A chunk-size line (and extensions), up to its CRLF.
        case size(line: [UInt8])
        case data(remaining: Int)
        /// The CRLF after a chunk's data.
        case dataEnd(seen: Int)
        /// Trailer lines after the last chunk, up to the blank line.
        case trailers(line: [UInt8])
    }

    private var step = Step.size(line: [])

    /// The next piece from `bytes` (consuming what it read); nil when `bytes` holds no more.
    mutating func next(from bytes: inout ByteBuffer) -> Piece? {
        while bytes.readableBytes > 0 {
            switch step {
            case .size(var line):
                guard let byte = bytes.readInteger(as: UInt8.self) else { return nil }
                if byte == 0x0A {
                    if line.last == 0x0D { line.removeLast() }
                    let digits = line.prefix { $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: " ") }
                    guard !digits.isEmpty, digits.count <= 15, let size = Int(String(decoding: digits, as: UTF8.self), radix: 16) else {
                        return .malformed
                    }
                    step = size == 0 ? .trailers(line: []) : .data(remaining: size)
                } else {
                    guard line.count < 1024 else { return .malformed }
                    line.append(byte)
                    step = .size(line: line)
                }
            case .data(let remaining):
                guard let slice = bytes.readSlice(length: min(remaining, bytes.readableBytes)) else { return nil }
                let left = remaining - slice.readableBytes
                step = left == 0 ? .dataEnd(seen: 0) : .data(remaining: left)
                return .data(slice)
            case .dataEnd(let seen):
                guard let byte = bytes.readInteger(as: UInt8.self) else { return nil }
                guard byte == (seen == 0 ? 0x0D : 0x0A) else { return .malformed }
                step = seen == 0 ? .dataEnd(seen: 1) : .size(line: [])
            case .trailers(var line):
                guard let byte = bytes.readInteger(as: UInt8.self) else { return nil }
                if byte == 0x0A {
                    if line.last == 0x0D { line.removeLast() }
                    if line.isEmpty { return .end }
                    step = .trailers(line: [])
                } else {
                    guard line.count < 8192 else { return .malformed }
                    line.append(byte)
                    step = .trailers(line: line)
                }
            }
        }
        return nil
    }
}

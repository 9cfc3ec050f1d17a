import NIOCore

/// One keep-alive connection of the load: writes a request, reads its response (a minimal
/// HTTP/1.1 parser: status, `Content-Length` or chunked, `X-Cache`), tells the run, and sends the
/// next when the run says so. One request in flight per connection.
final class LoadConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    struct InFlight {
        let kind: RequestMix.Kind
        /// When it was meant to go (open loop) or went (closed loop): latency counts from here.
        let since: UInt64
    }

    let index: Int
    private let run: LoadRun
    private var context: ChannelHandlerContext?
    private var input: ByteBuffer?
    private(set) var inFlight: InFlight?
    /// Open loop: when the next request is meant to go.
    var nextIntended: UInt64 = 0

    init(index: Int, run: LoadRun) {
        self.index = index
        self.run = run
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        run.connectionReady(self)
        context.fireChannelActive()
    }

    func send(_ request: RequestMix.Request, since: UInt64) {
        guard let context else { return }
        inFlight = InFlight(kind: request.kind, since: since)
        context.writeAndFlush(NIOAny(request.bytes), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if input == nil { input = bytes } else { input!.writeBuffer(&bytes) }
        while let response = parseResponse() {
            guard let request = inFlight else {
                run.failed(self, .protocolError)
                context.close(promise: nil)
                return
            }
            inFlight = nil
            run.completed(self, request: request, status: response.status, cacheResult: response.cacheResult)
        }
        if let input, input.readableBytes == 0 { self.input = nil }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        run.failed(self, inFlight == nil ? .closedIdle : .closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    struct Response {
        let status: Int
        let cacheResult: UInt8?
    }

    /// A complete response from the front of the input, consumed; nil until one is complete.
    private func parseResponse() -> Response? {
        guard var buffer = input else { return nil }
        guard let headLength = buffer.withUnsafeReadableBytes(Self.headLength) else { return nil }
        var status = 0
        var contentLength = 0
        var chunked = false
        var cacheResult: UInt8?
        buffer.withUnsafeReadableBytes { raw in
            let head = UnsafeRawBufferPointer(rebasing: raw[..<headLength])
            if head.count > 12 {
                status = Int(head[9] &- 48) * 100 + Int(head[10] &- 48) * 10 + Int(head[11] &- 48)
            }
            var lineStart = 0
            // The head ends without a line feed (the blank line is not part of it): the last line
            // ends at the end.
            for index in 0...head.count where index == head.count || head[index] == 10 {
                guard index > lineStart else { continue }
                let line = UnsafeRawBufferPointer(rebasing: head[lineStart..<index])
                lineStart = index + 1
                guard let colon = line.firstIndex(of: 58) else { continue }
                let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
                var value = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...])
                while let first = value.first, first == 32 { value = UnsafeRawBufferPointer(rebasing: value.dropFirst()) }
                if Self.equalsIgnoringCase(name, "content-length") {
                    contentLength = value.reduce(0) { $1 >= 48 && $1 <= 57 ? $0 * 10 + Int($1 - 48) : $0 }
                } else if Self.equalsIgnoringCase(name, "x-cache") {
                    cacheResult = value.first
                } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                    chunked = value.contains(99) // 'c'hunked
                }
            }
        }
        let bodyStart = headLength + 4
        if chunked {
            guard let consumed = Self.chunkedLength(buffer.readableBytesView.dropFirst(bodyStart)) else { return nil }
            buffer.moveReaderIndex(forwardBy: bodyStart + consumed)
        } else {
            guard buffer.readableBytes >= bodyStart + contentLength else { return nil }
            buffer.moveReaderIndex(forwardBy: bodyStart + contentLength)
        }
        input = buffer
        return Response(status: status, cacheResult: cacheResult)
    }

    /// The head's length up to its CRLF CRLF, if it has all arrived: the load generator must
    /// not be the bottleneck, so it looks at the raw bytes, stepping over four at a time where it can.
    private static func headLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 3
        while index < bytes.count {
            switch bytes[index] {
            case 10:
                if bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 { return index - 3 }
                index += 1
            case 13:
                index += 1
            default:
                index += 4  // no CR LF CR LF can end within the next three bytes: they all include this one
            }
        }
        return nil
    }

    /// The length of a complete chunked body at the start of `bytes`, trailer included; nil if incomplete.
    private static func chunkedLength(_ bytes: ByteBufferView.SubSequence) -> Int? {
        var index = bytes.startIndex
        while true {
            var size = 0
            var sawDigit = false
            while index < bytes.endIndex, bytes[index] != 13 {
                let byte = bytes[index] | 0x20
                if byte >= 48 && byte <= 57 { size = size * 16 + Int(byte - 48); sawDigit = true }
                else if byte >= 97 && byte <= 102 { size = size * 16 + Int(byte - 87); sawDigit = true }
                else if byte == 59 { break }  // chunk extension
                index += 1
            }
            while index < bytes.endIndex, bytes[index] != 10 { index += 1 }
            guard index < bytes.endIndex, sawDigit else { return nil }
            index += 1
            if size == 0 {
                // Trailer fields, then an empty line.
                while true {
                    guard let lineEnd = bytes[index...].firstIndex(of: 10) else { return nil }
                    let empty = lineEnd == index || (lineEnd == index + 1 && bytes[index] == 13)
                    index = lineEnd + 1
                    if empty { return index - bytes.startIndex }
                }
            }
            index += size + 2
            guard index <= bytes.endIndex else { return nil }
        }
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] { return false }
        return true
    }
}

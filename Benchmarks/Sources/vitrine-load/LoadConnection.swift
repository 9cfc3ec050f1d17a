import Glibc
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
        guard let head = buffer.withUnsafeReadableBytes(Self.parseHead) else { return nil }
        if head.chunked {
            guard let consumed = Self.chunkedLength(buffer.readableBytesView.dropFirst(head.length)) else { return nil }
            buffer.moveReaderIndex(forwardBy: head.length + consumed)
        } else {
            guard buffer.readableBytes >= head.length + head.contentLength else { return nil }
            buffer.moveReaderIndex(forwardBy: head.length + head.contentLength)
        }
        input = buffer
        return Response(status: head.status, cacheResult: head.cacheResult)
    }

    struct Head {
        /// Up to and including the blank line.
        var length = 0
        var status = 0
        var contentLength = 0
        var chunked = false
        var cacheResult: UInt8?
    }

    /// The response head at the start of `bytes`, if it has all arrived. The load generator must
    /// not be the bottleneck: one pass, a line at a time with `memchr`, and only lines whose first
    /// letter can start a field it reads are compared.
    private static func parseHead(_ bytes: UnsafeRawBufferPointer) -> Head? {
        guard let base = bytes.baseAddress, bytes.count > 12 else { return nil }
        var head = Head()
        head.status = Int(bytes[9] &- 48) * 100 + Int(bytes[10] &- 48) * 10 + Int(bytes[11] &- 48)
        var lineStart = 0
        while true {
            guard let found = memchr(base + lineStart, 10, bytes.count - lineStart) else { return nil }
            let lineEnd = base.distance(to: UnsafeRawPointer(found))  // the LF
            let line = UnsafeRawBufferPointer(start: base + lineStart, count: lineEnd - lineStart)
            lineStart = lineEnd + 1
            if line.isEmpty || (line.count == 1 && line[0] == 13) {  // the blank line
                head.length = lineStart
                return head
            }
            switch line[0] | 0x20 {
            case UInt8(ascii: "c"):
                if let value = value(of: "content-length:", in: line) {
                    head.contentLength = value.reduce(0) { $1 >= 48 && $1 <= 57 ? $0 * 10 + Int($1 - 48) : $0 }
                }
            case UInt8(ascii: "x"):
                if let value = value(of: "x-cache:", in: line) { head.cacheResult = value.first }
            case UInt8(ascii: "t"):
                if let value = value(of: "transfer-encoding:", in: line) { head.chunked = value.contains(99) }  // 'c'hunked
            default:
                break
            }
        }
    }

    /// The value of `line` (a field line, its CR included) without leading spaces or the CR, if its name and colon are `nameAndColon`.
    private static func value(of nameAndColon: StaticString, in line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer.SubSequence? {
        let count = nameAndColon.utf8CodeUnitCount
        guard line.count > count else { return nil }
        let expected = nameAndColon.utf8Start
        for index in 0..<count where line[index] | 0x20 != expected[index] { return nil }
        var value = line[count...]
        if value.last == 13 { value = value.dropLast() }
        while value.first == 32 { value = value.dropFirst() }
        return value
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
}

import NIOCore

/// Closes an HTTP/2 connection once swift-nio-http2 has sent GOAWAY for a connection error
/// (RFC 9113 §5.4.1: "after sending the GOAWAY frame for an error condition, the endpoint MUST
/// close the TCP connection"): a flood of resets, control, empty or CONTINUATION frames, a
/// malformed frame, an HPACK COMPRESSION_ERROR, a flow control violation. swift-nio-http2 writes
/// the GOAWAY and reports the error, but leaves the connection open, and it reports a stream's
/// own error the same way (unwrapped), so the error alone does not tell which it was. The
/// frames it writes do: this handler sits between TLS and `NIOHTTP2Handler`, follows the frames
/// it writes by their headers (`HTTP2GoAwayScanner`), and closes once a GOAWAY with an error
/// code has reached the socket. A graceful GOAWAY (NO_ERROR: idle, drain) is left to
/// `HTTP2Connection`, which closes when the open streams end.
final class HTTP2ConnectionErrorCloser: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var scanner = HTTP2GoAwayScanner()
    private var closing = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closing, case .byteBuffer(let bytes) = unwrapOutboundIn(data),
            bytes.withUnsafeReadableBytes({ scanner.scan($0) })
        else {
            context.write(data, promise: promise)
            return
        }
        // The GOAWAY is in these bytes: close once they are written (or could not be).
        closing = true
        let written = context.eventLoop.makePromise(of: Void.self)
        if let promise { written.futureResult.cascade(to: promise) }
        context.write(data, promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// Follows an HTTP/2 byte stream (the frames this server writes, in whatever pieces) by its
/// frame headers (RFC 9113 §4.1), and tells when a GOAWAY frame carrying an error code other
/// than NO_ERROR has been written whole. A plain value: bytes in, a yes or no out.
struct HTTP2GoAwayScanner {
    /// The bytes of the frame header being read (up to 9).
    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
    private var headerRead = 0
    /// The payload bytes of the current frame still to come.
    private var payloadLeft = 0
    /// Reading a GOAWAY's payload: how far into it, and its error code so far.
    private var goAwayOffset: Int?
    private var errorCode: UInt32 = 0

    /// Reads `bytes`: true when a GOAWAY with an error code ended within them.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        var found = false
        let count = bytes.count
        while index < count {
            if payloadLeft == 0 && headerRead < 9 {
                withUnsafeMutableBytes(of: &header) { $0[headerRead] = bytes[index] }
                headerRead &+= 1
                index &+= 1
                if headerRead == 9 { found = startPayload() || found }
                continue
            }
            if let offset = goAwayOffset {
                // Bytes 4 to 7 of a GOAWAY's payload are its error code.
                if offset >= 4 && offset < 8 { errorCode = errorCode << 8 | UInt32(bytes[index]) }
                goAwayOffset = offset &+ 1
                payloadLeft &-= 1
                index &+= 1
            } else {
                let step = min(payloadLeft, count &- index)
                payloadLeft &-= step
                index &+= step
            }
            if payloadLeft == 0 { found = endPayload() || found }
        }
        return found
    }

    /// A header was read whole: its payload follows (true when the frame, empty, ended here).
    private mutating func startPayload() -> Bool {
        let length = Int(header.0) << 16 | Int(header.1) << 8 | Int(header.2)
        payloadLeft = length
        goAwayOffset = header.3 == 0x7 ? 0 : nil
        errorCode = 0
        return length == 0 ? endPayload() : false
    }

    /// A frame's payload was read whole.
    private mutating func endPayload() -> Bool {
        headerRead = 0
        defer { goAwayOffset = nil }
        guard let offset = goAwayOffset, offset >= 8 else { return false }
        return errorCode != 0
    }
}

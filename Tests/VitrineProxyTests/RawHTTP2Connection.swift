import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// An HTTP/2 client that writes frames as bytes, for tests of what a real client would never
/// send (an HPACK table size above the one advertised, a connection that opens no stream): TLS
/// with ALPN `h2`, then whatever bytes the test writes. It reads the server's frames only as far
/// as their headers, noting each GOAWAY's error code, answers PINGs, and tells when the server
/// closes.
final class RawHTTP2Connection: Sendable {
    let channel: any Channel
    private let reader: FrameReader

    private init(channel: any Channel, reader: FrameReader) {
        self.channel = channel
        self.reader = reader
    }

    static func connect(port: Int, serverName: String = "shop.example") async throws -> RawHTTP2Connection {
        let tls = try TestCertificates.client(applicationProtocols: ["h2"])
        let reader = FrameReader()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHandler(reader)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTP2Connection(channel: channel, reader: reader)
    }

    /// The client preface, an empty SETTINGS frame, and the ACK of the server's.
    static let preface: [UInt8] =
        Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(type: 0x4, flags: 0, stream: 0, payload: [])
        + frame(type: 0x4, flags: 0x1, stream: 0, payload: [])

    /// One frame's bytes (RFC 9113 §4.1).
    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), type, flags]
            + [UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16), UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)]
            + payload
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Waits for the server to close the connection: true when it did within `limit`, false when
    /// the test had to close it then.
    func closedByServer(within limit: TimeAmount) async -> Bool {
        let closedByTheTest = Atomic(false)
        let channel = self.channel
        let closing = channel.eventLoop.scheduleTask(in: limit) {
            closedByTheTest.store(true, ordering: .relaxed)
            channel.close(promise: nil)
        }
        try? await channel.closeFuture.get()
        closing.cancel()
        return !closedByTheTest.load(ordering: .relaxed)
    }

    /// The error codes of the GOAWAY frames the server sent.
    var goAwayCodes: [UInt32] { reader.goAwayCodes.withLock { $0 } }
    /// The streams the server reset, with each reset's error code.
    var resets: [UInt32: UInt32] { reader.resets.withLock { $0 } }
    /// The streams the server answered with HEADERS.
    var answered: Set<UInt32> { reader.answered.withLock { $0 } }

    /// The bytes of a HEADERS frame for a GET of `path` on `stream` (END_HEADERS, END_STREAM),
    /// its fields as literals without indexing (RFC 7541 §6.2.2), never Huffman-coded.
    static func get(_ path: String, stream: UInt32, endStream: Bool = true) -> [UInt8] {
        let block = literal(":method", "GET") + literal(":path", path) + literal(":scheme", "https") + literal(":authority", "shop.example")
        return frame(type: 0x1, flags: endStream ? 0x5 : 0x4, stream: stream, payload: block)
    }

    /// A field as a literal without indexing, with a new name (lengths under 127).
    static func literal(_ name: String, _ value: String) -> [UInt8] {
        [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
    }

    func close() async {
        try? await channel.close()
    }

    /// Follows the server's frames by their headers.
    private final class FrameReader: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let goAwayCodes = Mutex<[UInt32]>([])
        let resets = Mutex<[UInt32: UInt32]>([:])
        let answered = Mutex<Set<UInt32>>([])
        private let pending = Mutex(ByteBuffer())

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            // A PING is answered, as any client does (a graceful GOAWAY waits for one).
            let pings = pending.withLock { pending -> [[UInt8]] in
                var pings: [[UInt8]] = []
                pending.writeBuffer(&bytes)
                while pending.readableBytes >= 9, let header = pending.getBytes(at: pending.readerIndex, length: 9) {
                    let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
                    guard pending.readableBytes >= 9 + length else { break }
                    pending.moveReaderIndex(forwardBy: 9)
                    let payload = pending.readBytes(length: length) ?? []
                    if header[3] == 0x7, payload.count >= 8 {
                        let code = UInt32(payload[4]) << 24 | UInt32(payload[5]) << 16 | UInt32(payload[6]) << 8 | UInt32(payload[7])
                        goAwayCodes.withLock { $0.append(code) }
                    }
                    if header[3] == 0x6, header[4] & 0x1 == 0 { pings.append(payload) }
                    let stream = (UInt32(header[5]) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8])) & 0x7FFF_FFFF
                    if header[3] == 0x3, payload.count >= 4 {
                        let code = UInt32(payload[0]) << 24 | UInt32(payload[1]) << 16 | UInt32(payload[2]) << 8 | UInt32(payload[3])
                        resets.withLock { $0[stream] = code }
                    }
                    if header[3] == 0x1 { answered.withLock { _ = $0.insert(stream) } }
                }
                pending.discardReadBytes()
                return pings
            }
            for ping in pings {
                context.writeAndFlush(NIOAny(ByteBuffer(bytes: RawHTTP2Connection.frame(type: 0x6, flags: 0x1, stream: 0, payload: ping))), promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

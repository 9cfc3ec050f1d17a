import NIOCore
import NIOPosix
import NIOSSL

/// A response as read off the wire.
struct WireResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

enum WireError: Error {
    case closedEarly(String)
    case malformed(String)
}

/// A raw HTTP/1.1 connection for tests: sends exactly the bytes given, so tests can pipeline,
/// send malformed requests and see whether the server closed the connection.
struct WireConnection {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()
    private(set) var closed = false

    /// Opens a connection to 127.0.0.1:`port` and runs `body` with it; over TLS with `tls` (a
    /// client context, and the server name to send and verify, if any).
    static func with<T: Sendable>(
        port: Int, tls: (context: NIOSSLContext, serverName: String?)? = nil, _ body: (inout WireConnection) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var connection = WireConnection(iterator: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&connection)
        }
    }

    mutating func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    mutating func send(bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Sends a request and reads its response.
    mutating func request(
        _ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> WireResponse {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: shop.test\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        try await send(text)
        return try await readResponse(method: method)
    }

    /// Reads one response. `method` tells whether a body follows (not for HEAD).
    mutating func readResponse(method: String = "GET") async throws -> WireResponse {
        while true {
            if let response = try parse(method: method) { return response }
            guard try await fill() else {
                throw WireError.closedEarly(String(buffer: buffer))
            }
        }
    }

    /// Reads until the server closes the connection; returns what arrived.
    mutating func readUntilClosed() async throws -> String {
        while try await fill() {}
        return String(buffer: buffer)
    }

    private mutating func fill() async throws -> Bool {
        guard !closed else { return false }
        if let chunk = try await iterator.next() {
            buffer.writeImmutableBuffer(chunk)
            return true
        }
        closed = true
        return false
    }

    private mutating func parse(method: String) throws -> WireResponse? {
        let bytes = Array(buffer.readableBytesView)
        guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let headText = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw WireError.malformed(headText) }
        let headers = lines.map { line -> (name: String, value: String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: [" "]))
        }
        var response = WireResponse(status: status, headers: headers, body: [])
        var offset = headEnd.upperBound
        if method == "HEAD" || status == 304 || status == 204 {
            // no body
        } else if let length = response.header("content-length").flatMap({ Int($0) }) {
            guard bytes.count - offset >= length else { return nil }
            response.body = Array(bytes[offset..<(offset + length)])
            offset += length
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            var body: [UInt8] = []
            while true {
                guard let lineEnd = bytes[offset...].firstRange(of: Array("\r\n".utf8)) else { return nil }
                guard let size = Int(String(decoding: bytes[offset..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else {
                    throw WireError.malformed("chunk size")
                }
                let start = lineEnd.upperBound
                guard bytes.count >= start + size + 2 else { return nil }
                body += bytes[start..<(start + size)]
                offset = start + size + 2
                if size == 0 { break }
            }
            response.body = body
        } else {
            // Delimited by close.
            guard closed else { return nil }
            response.body = Array(bytes[offset...])
            offset = bytes.count
        }
        buffer.moveReaderIndex(forwardBy: offset)
        buffer.discardReadBytes()
        return response
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

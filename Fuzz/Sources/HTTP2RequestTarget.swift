import NIOCore
import NIOHPACK
import NIOHTTP1
@testable import VitrineProxy

/// An HTTP/2 request's fields, as a client may send them (swift-nio-http2's own checks off), made
/// into the HTTP/1.1 head the request path reads. Besides never trapping: the decoder reads
/// exactly one head from it, with the stream's method and path, and no field the client did not
/// send (none smuggled in through a name or a value), framed as the stream said.
enum HTTP2RequestTarget {
    static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let endStream = first & 1 == 1
        var headers = HPACKHeaders()
        var names: Set<String> = ["host", "cookie", "transfer-encoding"]
        for line in String(decoding: bytes.dropFirst(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).prefix(32) {
            // `name=value`, so that names may hold colons (pseudo-headers, and attacks).
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : ""
            // HPACKHeaders holds ASCII names only (its precondition; what swift-nio-http2 decodes
            // from the wire is ASCII by then).
            guard name.utf8.allSatisfy({ $0 < 0x80 }) else { continue }
            headers.add(name: name, value: value)
            names.insert(name)
        }
        guard let head = HTTP2StreamAdapter.http1Head(headers, endStream: endStream, allocator: ByteBufferAllocator()) else { return }
        var decoder = RequestDecoder(limits: RequestDecoderTarget.limits)
        decoder.append(head.bytes)
        guard case .head(let decoded)? = try? decoder.next() else { return }  // refused: a 400
        precondition(decoded.method.rawValue == head.method, "method \(decoded.method.rawValue) is not \(head.method)")
        precondition(decoded.uri == headers.first(name: ":path"), "path \(decoded.uri)")
        for (name, _) in decoded.headers {
            precondition(names.contains(name.lowercased()), "a field the client did not send: \(name)")
        }
        let chunked = decoded.headers.first(name: "transfer-encoding") != nil
        precondition(chunked == (head.body == .chunked), "framing: chunked \(chunked), stream \(String(describing: head.body))")
        if head.body == nil {
            precondition(decoded.headers.first(name: "content-length") == nil || headers.first(name: "content-length") != nil)
        }
    }
}

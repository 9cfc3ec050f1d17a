import NIOCore
import NIOHPACK
import NIOHTTP1
@testable import VitrineProxy

/// An HTTP/2 request's fields, as a client may send them (swift-nio-http2's own checks off), made
/// into the request head the request path reads. Besides never trapping: the head has the
/// stream's method and path, no field the client did not send (none smuggled in through a name
/// or a value, no CR, LF or NUL anywhere), one host, and the framing the stream said.
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
        guard let head = HTTP2RequestFields.requestHead(headers, endStream: endStream, limits: RequestDecoderTarget.limits) else { return }
        precondition(head.method.rawValue == headers.first(name: ":method"), "method \(head.method.rawValue)")
        precondition(head.uri == headers.first(name: ":path"), "path \(head.uri)")
        precondition(head.uri.utf8.first == UInt8(ascii: "/"), "a path as target")
        precondition(head.headers["host"].count == 1, "one host")
        for (name, value) in head.headers {
            precondition(names.contains(name), "a field the client did not send: \(name)")
            precondition(!value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }, "a line break in \(name)")
        }
        let chunked = head.headers.first(name: "transfer-encoding") != nil
        let sized = head.headers.first(name: "content-length") != nil
        precondition(!(chunked && sized), "both framings")
        precondition(chunked == (!endStream && !sized), "framing: chunked \(chunked), end \(endStream)")
    }
}

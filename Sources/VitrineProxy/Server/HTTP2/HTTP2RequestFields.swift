import NIOHPACK
import NIOHTTP1
import VitrineConfig
import VitrineCore

/// An HTTP/2 stream's request fields (RFC 9113 §8.3) made into the request head the request path
/// reads: the same head, with the same rules, that `RequestDecoder` makes of HTTP/1.1 bytes. A
/// plain function of untrusted fields: fuzzed (`Fuzz/Sources/HTTP2RequestTarget.swift`).
///
/// Nothing becomes text to be parsed again: each pseudo-header once, `:authority` as the host
/// (a `host` field beside it is dropped), cookies split across fields joined (§8.2.3),
/// connection-specific fields dropped (§8.2.2). A field whose name is not a lower-case token, or
/// whose value holds CR, LF or NUL, makes the request malformed, as does a path that is not
/// origin form, CONNECT, or an invalid authority. The body's framing is the stream's own: a
/// `content-length` (its DATA counted by swift-nio-http2), else the stream's end, which the head
/// says as `transfer-encoding: chunked` (what the request path reads as "a body of unknown
/// length", and frames to the origin itself).
enum HTTP2RequestFields {
    /// The head for a stream's HEADERS (`endStream`: no body follows); nil when it is malformed.
    static func requestHead(_ fields: HPACKHeaders, endStream: Bool, limits: LimitSettings) -> HTTPRequestHead? {
        var method: String?
        var path: String?
        var authority: String?
        var contentLength: String?
        var cookies: [String] = []
        var headers: [(String, String)] = []
        headers.reserveCapacity(fields.count + 1)
        var count = 0
        for (name, value, _) in fields {
            count &+= 1
            guard count <= limits.maxHeaders, isClean(value) else { return nil }
            if name.utf8.first == UInt8(ascii: ":") {
                // Each pseudo-header once, before the others (§8.3).
                guard headers.isEmpty, cookies.isEmpty, contentLength == nil else { return nil }
                switch name {
                case ":method":
                    guard method == nil else { return nil }
                    method = value
                case ":path":
                    guard path == nil else { return nil }
                    path = value
                case ":authority":
                    guard authority == nil else { return nil }
                    authority = value
                case ":scheme": break
                default: return nil
                }
                continue
            }
            guard isLowerCaseToken(name) else { return nil }
            // Connection-specific fields (RFC 9113 §8.2.2; swift-nio-http2 refuses most already):
            // the one hop-by-hop table, as for HTTP/1.1.
            if HopByHop.isStandard(lowercased: name) { continue }
            switch name {
            case "cookie":
                cookies.append(value)
            case "content-length":
                guard contentLength == nil, !value.isEmpty, value.utf8.count <= 18, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
                else { return nil }
                contentLength = value
                headers.append((name, value))
            case "host" where authority != nil:
                continue
            default:
                headers.append((name, value))
            }
        }
        guard let method, let path, !method.isEmpty, method != "CONNECT", method.utf8.allSatisfy(FieldSyntax.isTokenByte),
            path.utf8.first == UInt8(ascii: "/"), path.utf8.count <= limits.maxRequestLine,
            path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        if let authority {
            guard RequestDecoder.isValidHost(authority) else { return nil }
            headers.insert(("host", authority), at: 0)
        } else if let host = headers.first(where: { $0.0 == "host" })?.1 {
            guard RequestDecoder.isValidHost(host) else { return nil }
        } else {
            return nil
        }
        if !cookies.isEmpty { headers.append(("cookie", cookies.joined(separator: "; "))) }
        if !endStream && contentLength == nil { headers.append(("transfer-encoding", "chunked")) }
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: HTTPHeaders(headers))
    }

    /// No CR, LF or NUL: what HTTP/2 may carry in a field value but no request may hold.
    private static func isClean(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    /// A field name as HTTP/2 allows it: a token in lower case (RFC 9110 §5.6.2, RFC 9113 §8.2.1).
    private static func isLowerCaseToken(_ name: String) -> Bool {
        FieldSyntax.isToken(name) && !name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }
}

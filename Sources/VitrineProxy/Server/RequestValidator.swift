import NIOHTTP1
import VitrineConfig

/// Checks a request head against the limits and the framing rules before anything else reads it.
/// Ambiguous framing is what request smuggling is made of: it is refused, never interpreted.
enum RequestValidator {
    /// Returns the error to answer with, or nil when the head is acceptable.
    static func validate(_ head: HTTPRequestHead, limits: LimitSettings) -> ProxyError? {
        if head.uri.utf8.count > limits.maxRequestLine { return .requestLineTooLong }
        guard head.uri.hasPrefix("/") else { return .badRequest("the request target must be a path") }
        if head.headers.count > limits.maxHeaders { return .headersTooLarge }
        var headerBytes = 0
        for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count + 4 }
        if headerBytes > limits.maxHeaderBytes { return .headersTooLarge }

        let lengths = head.headers[canonicalForm: "content-length"]
        let encodings = head.headers[canonicalForm: "transfer-encoding"]
        if !lengths.isEmpty && !encodings.isEmpty {
            return .badRequest("both Content-Length and Transfer-Encoding")
        }
        if lengths.count > 1 { return .badRequest("more than one Content-Length") }
        if let length = lengths.first {
            guard let value = Int(length), value >= 0 else { return .badRequest("invalid Content-Length") }
            if value > limits.maxBody.bytes { return .bodyTooLarge }
        }
        if !encodings.isEmpty {
            guard encodings.count == 1, encodings[0].lowercased() == "chunked" else { return .unsupportedTransferEncoding }
        }
        let hosts = head.headers["host"]
        if hosts.count > 1 { return .badRequest("more than one Host") }
        if hosts.isEmpty && head.version.minor >= 1 && head.version.major == 1 { return .badRequest("missing Host") }
        return nil
    }
}

import NIOHTTP1
import VitrineConfig

/// Checks a framed request head for what framing does not cover: the target's form, the body's
/// size and the `Host` field. Framing itself (lengths, encodings, line syntax, head limits) is
/// `RequestDecoder`'s: a head that reaches here was framed unambiguously.
enum RequestValidator {
    /// Returns the error to answer with, or nil when the head is acceptable.
    static func validate(_ head: HTTPRequestHead, limits: LimitSettings) -> ProxyError? {
        guard head.uri.utf8.first == UInt8(ascii: "/") else { return .badRequest("the request target must be a path") }
        var hosts = 0
        for (name, value) in head.headers {
            if name.utf8.count == 4 && name.lowercased() == "host" {
                hosts += 1
            } else if name.utf8.count == 14 && name.lowercased() == "content-length", let length = Int(value), length > limits.maxBody.bytes {
                return .bodyTooLarge
            }
        }
        if hosts > 1 { return .badRequest("more than one Host") }
        if hosts == 0 && head.version.minor >= 1 && head.version.major == 1 { return .badRequest("missing Host") }
        return nil
    }
}

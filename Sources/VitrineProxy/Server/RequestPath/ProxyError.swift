import NIOHTTP1

/// An error the proxy answers itself, with a short JSON body carrying a stable `error` code.
public struct ProxyError: Error, Sendable {
    let status: HTTPResponseStatus
    /// Stable, machine-readable code (documented in the README).
    let code: String
    let message: String
    /// Whether the client connection must be closed after the answer (framing can no longer be trusted).
    let closesConnection: Bool

    static func badRequest(_ message: String) -> ProxyError {
        ProxyError(status: .badRequest, code: "bad_request", message: message, closesConnection: true)
    }
    static let requestLineTooLong = ProxyError(
        status: .uriTooLong, code: "request_line_too_long", message: "request line too long", closesConnection: true)
    static let headersTooLarge = ProxyError(
        status: .requestHeaderFieldsTooLarge, code: "headers_too_large", message: "request headers too large",
        closesConnection: true)
    static let bodyTooLarge = ProxyError(
        status: .payloadTooLarge, code: "body_too_large", message: "request body too large", closesConnection: true)
    static let unsupportedTransferEncoding = ProxyError(
        status: .notImplemented, code: "unsupported_transfer_encoding", message: "only chunked transfer-encoding is supported",
        closesConnection: true)
    static let httpVersionNotSupported = ProxyError(
        status: .httpVersionNotSupported, code: "http_version_not_supported", message: "only HTTP/1.0 and HTTP/1.1 are spoken here",
        closesConnection: true)
    /// TRACE reflects requests (and NIO's encoder would send its body unframed); CONNECT makes
    /// tunnels. A catalog cache does neither.
    static let methodNotAllowed = ProxyError(
        status: .methodNotAllowed, code: "method_not_allowed", message: "TRACE and CONNECT are not served", closesConnection: true)
    static let requestTimeout = ProxyError(
        status: .requestTimeout, code: "request_timeout", message: "the request did not arrive in time", closesConnection: true)
    static let notCached = ProxyError(
        status: .gatewayTimeout, code: "not_cached", message: "only-if-cached: not in the cache", closesConnection: false)
    static let noRoute = ProxyError(
        status: .notFound, code: "no_route", message: "no route for this path", closesConnection: false)
    static let originUnreachable = ProxyError(
        status: .badGateway, code: "origin_unreachable", message: "the origin could not be reached", closesConnection: false)
    static let originTimeout = ProxyError(
        status: .gatewayTimeout, code: "origin_timeout", message: "the origin did not answer in time", closesConnection: false)
    static let originProtocolError = ProxyError(
        status: .badGateway, code: "origin_error", message: "the origin sent an invalid response", closesConnection: false)
    static let originBusy = ProxyError(
        status: .serviceUnavailable, code: "origin_busy", message: "no origin connection became free in time",
        closesConnection: false)

    /// The JSON body: `{"error":"code","message":"..."}`.
    var jsonBody: String {
        "{\"error\":\"\(code)\",\"message\":\"\(message.jsonEscaped)\"}"
    }
}

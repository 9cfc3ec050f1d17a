/// Why an origin exchange failed.
enum OriginFailure: Error, Sendable, Equatable {
    /// The TCP connection could not be made.
    case connectFailed(String)
    /// No pooled connection became free within the connect timeout.
    case poolExhausted
    case firstByteTimeout
    case totalTimeout
    /// The connection closed before the response was complete. `beforeAnyResponseByte` on a
    /// reused connection means the origin closed an idle keep-alive connection: safe to retry.
    case connectionClosed(beforeAnyResponseByte: Bool, reused: Bool)
    /// The origin's bytes were not valid HTTP/1.1 (or exceeded the header limits).
    case protocolError(String)
    /// The client went away or the exchange was abandoned.
    case cancelled

    var proxyError: ProxyError {
        switch self {
        case .connectFailed, .connectionClosed, .cancelled: return .originUnreachable
        case .poolExhausted: return .originBusy
        case .firstByteTimeout, .totalTimeout: return .originTimeout
        case .protocolError: return .originProtocolError
        }
    }

    /// Whether a request that sent no body may be retried on a new connection.
    var isRetryable: Bool {
        if case .connectionClosed(true, true) = self { return true }
        return false
    }
}

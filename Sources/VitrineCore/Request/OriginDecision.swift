/// fetch → deliver: what is done with the origin's answer, or its failure, as plain values.
public enum OriginDecision {
    /// What is done with a final response head.
    public enum OnHead: Equatable, Sendable {
        /// Stream it to the client (and store it when the policy allows).
        case stream
        /// A 304 to the conditional request for a stale entry: the entry, refreshed, is
        /// stored and delivered (RFC 9111 §4.3.4).
        case revalidate
        /// A 5xx while the stale entry is within stale-if-error: the entry is delivered instead.
        case staleIfError
    }

    /// What is done when no response came.
    public enum OnFailure: Equatable, Sendable {
        /// Try once more on another connection (nothing of the request was lost).
        case retry
        /// Deliver the stale entry (stale-if-error).
        case stale
        /// Answer with the proxy's error.
        case error
        /// Part of the answer is on its way: closing is the only honest signal left.
        case abort
    }

    /// - Parameters:
    ///   - status: the origin's status code.
    ///   - stale: the stale entry the fetch revalidates, if any (a cacheable request's).
    public static func onHead(status: Int, stale: StaleWindows?) -> OnHead {
        guard let stale else { return .stream }
        if status == 304 { return .revalidate }
        if status >= 500 && stale.ifError { return .staleIfError }
        return .stream
    }

    /// - Parameters:
    ///   - responseStarted: the client has been sent part of the answer.
    ///   - retryable: the failure left the request unsent or unanswered (a refused connection,
    ///     a keep-alive connection closed under it).
    ///   - attempts: origin attempts so far.
    ///   - requestHadBody: the request's body went (partly) to the origin: it cannot be sent again.
    ///   - stale: the stale entry the fetch could fall back to, if any.
    public static func onFailure(
        responseStarted: Bool, retryable: Bool, attempts: Int, requestHadBody: Bool, stale: StaleWindows?
    ) -> OnFailure {
        if responseStarted { return .abort }
        if retryable && attempts < 2 && !requestHadBody { return .retry }
        if let stale, stale.ifError { return .stale }
        return .error
    }
}

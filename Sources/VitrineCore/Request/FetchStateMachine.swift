/// One origin fetch (Varnish's fetch → deliver for a forwarded request) as a plain value: it is
/// told what happened (a connection from the pool, a part of the client's body, the origin's
/// head, body, end or failure, the client gone) and answers what to do next; `ForwardExchange`
/// carries the answers out.
///
/// ```
/// idle ─start─▶ connecting ─acquired─▶ awaitingHead ─head─▶ headArrived ─delivered─▶ responding ─end─▶ finished
///                   ▲  (parts kept)        │  │                   ▲
///                   └──── retry ───────────┘  └─head of a write──▶ heldForPurge ─purge ended─┘
/// ```
/// A failure goes to `finished` (or back to `connecting` for the retry) from every state but
/// `heldForPurge`, which keeps it in order with what the origin sent before it.
///
/// The client's body is a second, independent dimension (`requestBody`): it may still arrive
/// while the answer streams. A failure before the answer started is retried once when nothing
/// was lost (`OriginDecision.onFailure`); after it started, closing is the only signal left.
///
/// Generic over what the exchange keeps (its origin connection, a response head, body parts,
/// a failure, how the answer is handled), so that it is tested without sockets or event loops.
public struct FetchStateMachine<Connection, Head, Part, Failure, Handling> {
    /// Where the fetch is.
    public enum State {
        /// Not started.
        case idle
        /// Waiting for a connection from the pool; request body parts that arrive meanwhile are kept.
        case connecting(pending: [Part])
        /// The request is on `Connection`; no final response head yet.
        case awaitingHead(Connection)
        /// The final head arrived and is being delivered (`delivered` says how its body is handled).
        case headArrived(Connection?)
        /// A write's answer, held until its purge has reached the shared tier; the origin is not
        /// read further, and what it had already sent waits here in order.
        case heldForPurge(Connection?, Head, [HeldPart])
        /// The final head was delivered; the body follows, handled as `Handling`. The connection
        /// is nil once the origin failed.
        case responding(Connection?, Handling)
        /// Ended: answered, failed, or abandoned by the client. Nothing more is done.
        case finished
    }

    /// What the origin sent while a write's answer was held.
    public enum HeldPart {
        case body(Part)
        case end
        case failure(Failure)
    }

    /// The client's request body, as far as the fetch is concerned.
    public enum RequestBody: Equatable, Sendable {
        /// More may come; `sentAny`: some of it has (it cannot be sent again).
        case arriving(sentAny: Bool)
        /// All of it has arrived.
        case complete(sentAny: Bool)

        var sentAny: Bool {
            switch self {
            case .arriving(let sent), .complete(let sent): return sent
            }
        }
    }

    /// What to do with a connection from the pool.
    public enum AcquiredAction {
        /// Send the request head on it, then `body`, then its end when `end`.
        case send(Connection, body: [Part], end: Bool)
        /// The fetch ended meanwhile: give it back.
        case release(Connection)
    }

    /// What to do with a part of the client's body (or its end).
    public enum RequestPartAction {
        /// Write it to this connection.
        case write(Connection)
        /// Kept until a connection is there; or dropped because the fetch has ended.
        case nothing
    }

    /// What to do with the origin's final head.
    public enum HeadAction {
        /// Deliver it to the client now (then tell the machine how the body is handled).
        case deliver(Head)
        /// Hold it (`heldForPurge`) until the write's purge reaches the shared tier, then
        /// `purgeEnded`.
        case purgeThenDeliver
        /// The fetch had ended: drop it.
        case ignore
    }

    /// What to do when a held write's purge reached the shared tier (or gave up).
    public enum ReleaseAction {
        /// Deliver the head, then feed each held part back in as the event it was, then resume
        /// reading the origin.
        case deliver(Head, then: [HeldPart])
        case nothing
    }

    /// What to do with a part of the origin's body.
    public enum ResponsePartAction {
        /// Handle it as the answer's handling says (stream it, or drop it for a 304 or a stale
        /// stand-in).
        case handle(Handling)
        /// Kept while the answer is held.
        case held
        case ignore
    }

    /// What to do when the origin's response ended.
    public enum EndAction {
        /// Complete the answer; `requestComplete`: the client's whole request had arrived (else
        /// the connection must not be kept alive); `cancel`: the origin connection, when it is in
        /// an unknown state because it answered before the request body was all sent.
        case complete(Handling, requestComplete: Bool, cancel: Connection?)
        case held
        case ignore
    }

    /// What to do when the origin failed (no connection, a timeout, a reset, a bad response).
    public enum FailureAction: Equatable, Sendable {
        /// Fetch again: take another connection from the pool (nothing of the request was lost).
        case retry
        /// Part of the answer is on its way: close the client's connection.
        case abort
        /// Answer with the stale entry (stale-if-error); `requestComplete` as in `EndAction`.
        case answerStale(requestComplete: Bool)
        /// Answer with the proxy's error.
        case answerError(requestComplete: Bool)
        /// Kept while the answer is held.
        case held
        case ignore
    }

    public private(set) var state: State = .idle
    public private(set) var requestBody: RequestBody
    /// Attempts on an origin connection so far.
    public private(set) var attempts = 0
    /// The origin's final head arrived: part of an answer may be on its way to the client.
    public private(set) var responseStarted = false

    /// - Parameter requestComplete: the client's request has fully arrived already (a request
    ///   dispatched again after a wait, a background refresh): no body or end will follow.
    public init(requestComplete: Bool) {
        requestBody = requestComplete ? .complete(sentAny: false) : .arriving(sentAny: false)
    }

    public var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    /// Whether the origin may be read further (not while a write's answer is held).
    public var isHeld: Bool {
        if case .heldForPurge = state { return true }
        return false
    }

    /// An interim (1xx) response may be passed on: only before the final head.
    public var mayDeliverInterim: Bool {
        if case .awaitingHead = state { return true }
        return false
    }

    /// The origin connection the fetch is on, if any.
    public var connection: Connection? {
        switch state {
        case .awaitingHead(let connection): return connection
        case .headArrived(let connection), .heldForPurge(let connection, _, _), .responding(let connection, _): return connection
        case .idle, .connecting, .finished: return nil
        }
    }

    // MARK: Connecting

    /// The fetch begins: a connection is to be taken from the pool. False when it had begun
    /// already or ended (nothing to do).
    public mutating func start() -> Bool {
        guard case .idle = state else { return false }
        state = .connecting(pending: [])
        attempts = 1
        return true
    }

    /// The pool handed over a connection.
    public mutating func acquired(_ connection: Connection) -> AcquiredAction {
        guard case .connecting(let pending) = state else { return .release(connection) }
        state = .awaitingHead(connection)
        if case .complete = requestBody { return .send(connection, body: pending, end: true) }
        return .send(connection, body: pending, end: false)
    }

    // MARK: The client's request

    /// A part of the client's body arrived.
    public mutating func requestPart(_ part: Part) -> RequestPartAction {
        guard case .arriving = requestBody else { return .nothing }
        requestBody = .arriving(sentAny: true)
        switch state {
        case .connecting(var pending):
            pending.append(part)
            state = .connecting(pending: pending)
            return .nothing
        case .idle, .finished:
            return .nothing
        case .awaitingHead, .headArrived, .heldForPurge, .responding:
            return connection.map { .write($0) } ?? .nothing
        }
    }

    /// The client's request ended.
    public mutating func requestEnded() -> RequestPartAction {
        guard case .arriving(let sent) = requestBody else { return .nothing }
        requestBody = .complete(sentAny: sent)
        return connection.map { .write($0) } ?? .nothing
    }

    // MARK: The origin's answer

    /// The origin's final head arrived; `purgeFirst`: it answers a write whose purge is to reach
    /// the shared tier before the client sees it.
    public mutating func responseHead(_ head: Head, purgeFirst: Bool) -> HeadAction {
        guard case .awaitingHead(let connection) = state else { return .ignore }
        responseStarted = true
        if purgeFirst {
            state = .heldForPurge(connection, head, [])
            return .purgeThenDeliver
        }
        state = .headArrived(connection)
        return .deliver(head)
    }

    /// A held write's purge ended (reached the shared tier, failed or timed out).
    public mutating func purgeEnded() -> ReleaseAction {
        guard case .heldForPurge(let connection, let head, let parts) = state else { return .nothing }
        // The held parts are fed in again once the head is delivered; a failure among them finds
        // the answer started and aborts.
        state = .headArrived(connection)
        return .deliver(head, then: parts)
    }

    /// The head was delivered (or stands for a revalidation or a stale answer): the body is
    /// handled as `handling`.
    public mutating func delivered(_ handling: Handling) {
        guard case .headArrived(let connection) = state else { return }
        state = .responding(connection, handling)
    }

    /// A part of the origin's body arrived.
    public mutating func responsePart(_ part: Part) -> ResponsePartAction {
        switch state {
        case .heldForPurge(let connection, let head, var parts):
            parts.append(.body(part))
            state = .heldForPurge(connection, head, parts)
            return .held
        case .responding(_, let handling):
            return .handle(handling)
        case .idle, .connecting, .awaitingHead, .headArrived, .finished:
            return .ignore
        }
    }

    /// The origin's response ended.
    public mutating func responseEnded() -> EndAction {
        switch state {
        case .heldForPurge(let connection, let head, var parts):
            parts.append(.end)
            state = .heldForPurge(connection, head, parts)
            return .held
        case .responding(let connection, let handling):
            state = .finished
            guard case .complete = requestBody else {
                return .complete(handling, requestComplete: false, cancel: connection)
            }
            return .complete(handling, requestComplete: true, cancel: nil)
        case .idle, .connecting, .awaitingHead, .headArrived, .finished:
            return .ignore
        }
    }

    /// The origin failed; `retryable`: the failure left the request unsent or unanswered;
    /// `staleIfError`: a stale entry may stand in for an error.
    public mutating func failed(_ failure: Failure, retryable: Bool, staleIfError: Bool) -> FailureAction {
        switch state {
        case .finished, .idle:
            return .ignore
        case .heldForPurge(_, let head, var parts):
            parts.append(.failure(failure))
            state = .heldForPurge(nil, head, parts)
            return .held
        case .connecting, .awaitingHead, .headArrived, .responding:
            break
        }
        let decision = OriginDecision.onFailure(
            responseStarted: responseStarted, retryable: retryable, attempts: attempts, requestHadBody: requestBody.sentAny,
            stale: staleIfError ? StaleWindows(whileRevalidate: false, ifError: true) : nil)
        let requestComplete = if case .complete = requestBody { true } else { false }
        switch decision {
        case .retry:
            state = .connecting(pending: [])
            attempts = attempts.addingReportingOverflow(1).partialValue
            return .retry
        case .abort:
            state = .finished
            return .abort
        case .stale:
            state = .finished
            return .answerStale(requestComplete: requestComplete)
        case .error:
            state = .finished
            return .answerError(requestComplete: requestComplete)
        }
    }

    /// The client went away (or the request path abandoned the fetch): the connection to cancel.
    public mutating func clientClosed() -> Connection? {
        let connection = self.connection
        state = .finished
        return connection
    }
}

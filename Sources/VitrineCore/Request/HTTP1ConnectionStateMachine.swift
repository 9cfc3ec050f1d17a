/// What an HTTP/1.1 connection waits for from the client, each with its own timer.
public enum ClientWait: Equatable, Sendable {
    /// Nothing: a request is being answered (the origin's timeouts apply), or the socket is full
    /// (the send timeout applies), or the connection is closing.
    case nothing
    /// The next request, on an idle keep-alive connection.
    case idle
    /// The rest of a request head whose first bytes have arrived.
    case head
    /// More of a request body.
    case body
}

/// An HTTP/1.1 connection's own concerns, beside its requests (`RequestStateMachine`), as a plain
/// value: which client timer runs and what its firing means, whether the connection outlives an
/// answer (a drain, a close-delimited body), and whether a close lingers.
///
/// Timers are told in monotonic nanoseconds and answered as actions; the handler owns the
/// scheduled tasks. A head's timer runs from its first byte (a client sending a byte at a time
/// gains nothing), a body's from its last, the keep-alive timer from the last batch of requests
/// or the end of the last answer that was not given at once. The keep-alive timer is not
/// re-armed per request: a request answered later (from L2, from the origin) takes the connection
/// from idle to waiting on nothing and back while the timer stays armed, and the timer, when it
/// fires, measures idleness from `lastActivity` and re-arms for the rest.
public struct HTTP1ConnectionStateMachine: Sendable {
    /// The client timeouts, in nanoseconds.
    public struct Timeouts: Equatable, Sendable {
        public var keepalive: UInt64
        public var header: UInt64
        public var body: UInt64
        /// How long a lingering close waits for the client to go quiet; zero: no lingering.
        public var linger: UInt64

        public init(keepalive: UInt64, header: UInt64, body: UInt64, linger: UInt64) {
            self.keepalive = keepalive
            self.header = header
            self.body = body
            self.linger = linger
        }
    }

    /// What to do with the wait timer.
    public enum TimerAction: Equatable, Sendable {
        /// Leave it as it is (armed or not).
        case keep
        /// Cancel it (if armed).
        case cancel
        /// Cancel it and arm one for `wait`, firing in `nanoseconds`.
        case arm(ClientWait, nanoseconds: UInt64)
    }

    /// What a fired timer means.
    public enum TimeoutAction: Equatable, Sendable {
        /// Nothing: it was for a wait that is over.
        case ignore
        /// The connection was idle less than the keep-alive time (requests came meanwhile): arm
        /// again for the rest.
        case rearm(ClientWait, nanoseconds: UInt64)
        /// Idle for the keep-alive time: close, saying nothing.
        case closeIdle
        /// A head did not complete in time: answer 408 and close.
        case answerHeadTimeout
        /// A body stopped arriving: the request is broken (abandoned, answered if nothing was).
        case breakBody
    }

    /// What the armed timer (if any) is for.
    public private(set) var waiting: ClientWait = .nothing
    /// What the armed timer was armed for: an idle timer outlives a request answered without
    /// waiting on the client.
    private var timerKind: ClientWait = .nothing
    private var timerArmed = false
    /// When requests last arrived, or the connection last went idle after an answer given
    /// later: what the keep-alive timer measures idleness from.
    public private(set) var lastActivity: UInt64
    /// Told to quiesce (the node drains): the connection closes once the answer in progress is
    /// written.
    public private(set) var quiescing = false
    /// The answer being written ends with the connection's close (no length, an HTTP/1.0 client).
    public private(set) var answerEndsWithClose = false
    private let timeouts: Timeouts

    public init(timeouts: Timeouts, now: UInt64) {
        self.timeouts = timeouts
        self.lastActivity = now
    }

    // MARK: Timers

    /// The connection now waits for `wait` (from `RequestStateMachine.clientWait`);
    /// `bodyProgress`: a body part arrived, which restarts a body's timer; `newHead`: a head
    /// arrived, which restarts the timer of the next head's first bytes. `now` is read only when
    /// the wait changes (a hit answered at once reads no clock).
    public mutating func wait(
        for wait: ClientWait, bodyProgress: Bool, newHead: Bool, now: @autoclosure () -> UInt64
    ) -> TimerAction {
        let restarts = (wait == .body && bodyProgress) || (wait == .head && newHead)
        guard wait != waiting || restarts else { return .keep }
        // An armed idle timer stays through a request answered later: see the type's comment.
        if timerArmed, timerKind == .idle, wait == .nothing || wait == .idle {
            if wait == .idle, waiting != .idle { lastActivity = now() }
            waiting = wait
            return .keep
        }
        waiting = wait
        timerKind = wait
        timerArmed = wait != .nothing
        switch wait {
        case .nothing: return .cancel
        case .idle: return .arm(.idle, nanoseconds: timeouts.keepalive)
        case .head: return .arm(.head, nanoseconds: timeouts.header)
        case .body: return .arm(.body, nanoseconds: timeouts.body)
        }
    }

    /// A batch of bytes brought request heads: the keep-alive timer measures from now (one clock
    /// read per batch, not a timer per request).
    public mutating func requestsArrived(now: UInt64) {
        lastActivity = now
    }

    /// The timer armed for `kind` fired; `closing`: the connection is closing already.
    public mutating func timerFired(_ kind: ClientWait, closing: Bool, now: UInt64) -> TimeoutAction {
        timerArmed = false
        guard !closing, kind == waiting else { return .ignore }
        waiting = .nothing
        switch kind {
        case .nothing:
            return .ignore
        case .idle:
            let idleFor = now >= lastActivity ? now - lastActivity : 0
            if idleFor < timeouts.keepalive {
                waiting = .idle
                timerKind = .idle
                timerArmed = true
                return .rearm(.idle, nanoseconds: timeouts.keepalive - idleFor)
            }
            return .closeIdle
        case .head:
            return .answerHeadTimeout
        case .body:
            return .breakBody
        }
    }

    /// Every timer was cancelled (the connection closes).
    public mutating func timersCancelled() {
        waiting = .nothing
        timerKind = .nothing
        timerArmed = false
    }

    // MARK: Keep-alive and closing

    /// The node drains; `idle`: no request is being answered and none is buffered. True to close
    /// now; otherwise the connection closes after the answer in progress.
    public mutating func quiesce(idle: Bool) -> Bool {
        quiescing = true
        return idle
    }

    /// The answer being written is close-delimited: the connection ends with it.
    public mutating func closeAfterAnswer() {
        answerEndsWithClose = true
    }

    /// An answer was completely written; `keepAlive`: the answer allowed the connection to stay
    /// open. True when it stays open.
    public mutating func answered(keepAlive: Bool) -> Bool {
        let endsWithClose = answerEndsWithClose
        answerEndsWithClose = false
        return keepAlive && !endsWithClose && !quiescing
    }

    /// Whether a close after an error with `status` lingers: only a client's error (4xx), whose
    /// client may still be sending what the error was about, and only with a linger time.
    public func lingers(afterErrorStatus status: Int) -> Bool {
        timeouts.linger > 0 && status >= 400 && status < 500
    }

    /// Whether a close lingers when asked to.
    public var mayLinger: Bool { timeouts.linger > 0 }
}

/// An HTTP/2 connection's life beside its streams, as a plain value: when it is idle long enough
/// to close, and how it goes away gracefully (idle, or the node draining), RFC 9113 §6.8's way:
/// GOAWAY with the largest stream id and a PING; once the PING's ACK shows the client has seen
/// it (no stream it opens after that is lost in flight), GOAWAY again with the last stream really
/// opened, then close when the open streams have ended, or after the grace time.
///
/// Times are monotonic nanoseconds. The idle timer is not re-armed per stream: streams open and
/// close thousands of times a second on a busy connection, so the timer stays armed and, when it
/// fires, measures idleness from the last moment the connection had no stream open.
public struct HTTP2LifecycleStateMachine: Sendable {
    /// Where the connection is.
    public enum State: Equatable, Sendable {
        /// Serving; idle since `idleSince` when no stream is open.
        case active
        /// The first GOAWAY and its PING are out; waiting for the PING's ACK.
        case awaitingPingAck
        /// The last GOAWAY is out: the open streams finish, then the connection closes.
        case draining
        /// Closed (or closing).
        case closed
    }

    /// What the idle timer's firing means.
    public enum IdleAction: Equatable, Sendable {
        /// Not idle long enough (or streams are open): arm again for this long.
        case rearm(nanoseconds: UInt64)
        /// Idle for the whole time: go away (`goAway`).
        case goAway
        /// Going away already: nothing.
        case nothing
    }

    /// What starting to go away asks for.
    public enum GoAwayAction: Equatable, Sendable {
        /// Write GOAWAY (last stream id: the largest possible, NO_ERROR) and PING with `pingData`,
        /// flush, and arm the grace timer.
        case sendGoAwayAndPing(pingData: UInt64)
        /// Going away already.
        case nothing
    }

    /// What a PING's ACK asks for.
    public enum PingAckAction: Equatable, Sendable {
        /// Write GOAWAY naming `lastStreamID` (NO_ERROR); `close`: no stream is open, close once
        /// it is written.
        case sendGoAway(lastStreamID: Int, close: Bool)
        /// Another PING's ACK: nothing.
        case nothing
    }

    public private(set) var state: State = .active
    /// Streams open now.
    public private(set) var openStreams = 0
    /// The largest stream id the client opened.
    public private(set) var lastStreamID = 0
    /// When the connection last had no stream open.
    public private(set) var idleSince: UInt64
    private let idleTimeout: UInt64
    private let pingData: UInt64

    /// - Parameters:
    ///   - idleTimeout: how long the connection may have no stream open (`timeouts.keepalive`).
    ///   - pingData: the opaque data of the shutdown PING (a random value: a client's own PINGs'
    ///     ACKs must not be taken for it).
    public init(idleTimeout: UInt64, pingData: UInt64, now: UInt64) {
        self.idleTimeout = idleTimeout
        self.pingData = pingData
        self.idleSince = now
    }

    /// How long the idle timer runs first.
    public var idleTimerDelay: UInt64 { idleTimeout }

    /// A stream opened (the client's id `id`).
    public mutating func streamOpened(id: Int) {
        openStreams = openStreams.addingReportingOverflow(1).partialValue
        if id > lastStreamID { lastStreamID = id }
    }

    /// A stream closed: true when the connection is to close now (it was draining and that was
    /// the last one). `now` is read only when no stream is left open.
    public mutating func streamClosed(now: @autoclosure () -> UInt64) -> Bool {
        if openStreams > 0 { openStreams &-= 1 }
        guard openStreams == 0 else { return false }
        idleSince = now()
        return state == .draining
    }

    /// The idle timer fired.
    public mutating func idleTimerFired(now: UInt64) -> IdleAction {
        guard state == .active else { return .nothing }
        if openStreams > 0 { return .rearm(nanoseconds: idleTimeout) }
        let idleFor = now >= idleSince ? now - idleSince : 0
        if idleFor < idleTimeout { return .rearm(nanoseconds: idleTimeout - idleFor) }
        return .goAway
    }

    /// The connection goes away gracefully: idle, or the node drains.
    public mutating func goAway() -> GoAwayAction {
        guard state == .active else { return .nothing }
        state = .awaitingPingAck
        return .sendGoAwayAndPing(pingData: pingData)
    }

    /// A PING's ACK arrived with `data`.
    public mutating func pingAcknowledged(data: UInt64) -> PingAckAction {
        guard state == .awaitingPingAck, data == pingData else { return .nothing }
        state = openStreams == 0 ? .closed : .draining
        return .sendGoAway(lastStreamID: lastStreamID, close: openStreams == 0)
    }

    /// The connection closed.
    public mutating func closed() {
        state = .closed
    }
}

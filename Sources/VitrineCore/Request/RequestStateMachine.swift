/// The requests of one client connection as a plain value, in the steps Varnish names: receive
/// (idle) → lookup → l2-wait / collapsed-wait → fetch → deliver → idle again, or closing.
///
/// The connection handler feeds it events (a head framed, a body part, the shared tier
/// answered, a collapsed fetch ended, an answer written, a timeout, the socket's writability)
/// and carries out what it answers; the handler keeps no request state of its own. Requests
/// are answered one at a time, in order: while one is at l2-wait, collapsed-wait or fetch,
/// nothing after its body is taken from the bytes read (they stay in the decoder) and reading
/// pauses, so a pipelining client is held by TCP, not by our memory.
///
/// An event in a state where it cannot happen is a programming error, never input: it fails an
/// assertion (tests and debug builds trap); a release build ignores it, records a `violation`
/// and the handler closes the connection.
///
/// Generic over what the handler keeps for a fetch and a collapsed wait, so that it is tested
/// without sockets or event loops.
public struct RequestStateMachine<Fetch, Wait: Identifiable> {
    /// Where the request being answered is.
    public enum Step {
        /// receive: no request is being answered; the next head is taken as it comes.
        case idle
        /// lookup: a head is being served now (route, classify, listings, L1), synchronously.
        /// A lookup repeated after a wait is a restart.
        case lookup
        /// l2-wait: the shared tier was asked for the key.
        case sharedTierWait
        /// collapsed-wait: another request's fetch of the same key is awaited.
        case collapsedWait(Wait)
        /// fetch: an origin fetch (miss, pass or write) answers the request, delivering as it streams.
        case fetch(Fetch)
        /// Closing once what was written has reached the socket; nothing more is taken.
        case closing
        /// Output shut; what the client still sends is read and dropped until it goes quiet.
        case lingering
        /// The channel is gone.
        case closed
    }

    /// The open request's body.
    public enum Body: Equatable, Sendable {
        /// None is expected: the request's end has arrived (or no request is open).
        case complete
        /// Arriving, and handed to the fetch that forwards it.
        case forwarding(received: Int)
        /// Arriving after the request was answered without it: read and dropped.
        case discarding(received: Int)

        var received: Int {
            switch self {
            case .complete: return 0
            case .forwarding(let received), .discarding(let received): return received
            }
        }
    }

    /// What a step left behind when the connection stopped answering it: a fetch to cancel, a
    /// collapsed wait to leave.
    public enum Abandoned {
        case nothing
        case fetch(Fetch)
        case wait(Wait)
    }

    /// What is done with a request body part.
    public enum BodyPartAction: Equatable, Sendable {
        case forward
        case drop
        /// Past `maxBody`: the fetch is abandoned and the request answered 413, closing.
        case tooLarge
    }

    /// What is done when the client breaks the open request (a malformed body, a body timeout).
    public enum BrokenRequestAction {
        /// The answer is written or being written: close without another word.
        case closeQuietly(Abandoned)
        /// Nothing was answered yet: answer the error, closing.
        case answer(Abandoned)
    }

    /// What follows a complete answer.
    public enum AnswerAction: Equatable, Sendable {
        /// Take the next request (decode what is buffered, read again).
        case next
        /// The answer said `Connection: close`: close once it is written.
        case close
        /// The connection is closing already.
        case nothing
    }

    /// What the connection waits for from the client (its timer is the connection's business:
    /// `HTTP1ConnectionStateMachine`).
    public typealias ClientWait = VitrineCore.ClientWait

    public private(set) var step: Step = .idle
    public private(set) var body: Body = .complete
    /// The socket takes what is written.
    public private(set) var isWritable = true
    /// Lookups repeated for the current request (a collapsed fetch that could not be shared, a
    /// variant marker found in L2).
    public private(set) var restarts = 0
    private var readDeferred = false
    private let maxBody: Int
    private let trapsOnIllegalEvents: Bool

    /// - Parameters:
    ///   - maxBody: the most request body bytes taken (`limits.max_body`).
    ///   - trapsOnIllegalEvents: false only in the tests that walk every event through every
    ///     state: an illegal one is then only recorded in `violation`.
    public init(maxBody: Int, trapsOnIllegalEvents: Bool = true) {
        self.maxBody = maxBody
        self.trapsOnIllegalEvents = trapsOnIllegalEvents
    }

    // MARK: Reading

    /// The connection is closing, lingering or closed.
    public var isClosing: Bool {
        switch step {
        case .closing, .lingering, .closed: return true
        default: return false
        }
    }

    /// Whether the handler may take the next part from the decoder: the open request's body
    /// always (its fetch waits for it), a new head only when idle, nothing while the socket
    /// holds unsent output.
    public var mayTakePart: Bool {
        guard isWritable, !isClosing else { return false }
        if body != .complete { return true }
        if case .idle = step { return true }
        return false
    }

    /// The channel asks to read: true to read now, false to defer (the read is resumed by
    /// `resumeReading`).
    ///
    /// - Parameter decoderHasBytes: whether bytes of a later request wait in the decoder. While
    ///   the shared tier is asked (a round trip of a fraction of a millisecond) and nothing waits,
    ///   the socket stays read: pausing and resuming it would cost two `epoll_ctl` calls per L2
    ///   hit. Whatever arrives meanwhile is one read's worth, and then the reading pauses.
    public mutating func readRequested(decoderHasBytes: Bool = true) -> Bool {
        if case .sharedTierWait = step, !decoderHasBytes, isWritable { return true }
        switch step {
        case .lingering:
            return true
        case .closing, .closed:
            readDeferred = true
            return false
        case .sharedTierWait, .collapsedWait, .fetch:
            // Later pipelined requests stay in the socket while this one waits.
            if body == .complete || !isWritable {
                readDeferred = true
                return false
            }
            return true
        case .idle, .lookup:
            if !isWritable {
                readDeferred = true
                return false
            }
            return true
        }
    }

    /// True once, when a deferred read may go ahead now.
    public mutating func resumeReading() -> Bool {
        guard readDeferred, isWritable else { return false }
        switch step {
        case .idle:
            readDeferred = false
            return true
        default:
            return false
        }
    }

    /// What the connection now waits for from the client (`decoderHasBytes`: part of a head is
    /// buffered).
    public func clientWait(decoderHasBytes: Bool) -> ClientWait {
        if isClosing { return .nothing }
        if body != .complete { return .body }
        guard case .idle = step, isWritable else { return .nothing }
        return decoderHasBytes ? .head : .idle
    }

    // MARK: receive

    /// A request head passed framing and limits: it is looked up now.
    public mutating func headReceived() {
        guard case .idle = step, body == .complete else {
            return illegal("a request head while \(step), body \(body)")
        }
        step = .lookup
        body = .forwarding(received: 0)
        restarts = 0
    }

    /// A part of the open request's body arrived.
    public mutating func bodyReceived(_ bytes: Int) -> BodyPartAction {
        let received: Int
        let forwarding: Bool
        switch body {
        case .complete:
            illegal("a body part with no request open")
            return .drop
        case .forwarding(let before):
            received = before.addingReportingOverflow(bytes).partialValue
            forwarding = true
            body = .forwarding(received: received)
        case .discarding(let before):
            received = before.addingReportingOverflow(bytes).partialValue
            forwarding = false
            body = .discarding(received: received)
        }
        if received > maxBody || received < 0 { return .tooLarge }
        return forwarding ? .forward : .drop
    }

    /// The open request's end arrived: true when it is to be passed on to the fetch.
    public mutating func bodyEnded() -> Bool {
        let forwarding = if case .forwarding = body { true } else { false }
        if body == .complete { illegal("a request end with no request open") }
        body = .complete
        return forwarding
    }

    // MARK: lookup → l2-wait / collapsed-wait / fetch

    /// The shared tier is asked for the key.
    public mutating func askedSharedTier() {
        guard case .lookup = step else { return illegal("asked the shared tier while \(step)") }
        step = .sharedTierWait
    }

    /// The shared tier answered: true to go on with the lookup, false when the connection
    /// closed meanwhile (the answer is dropped).
    public mutating func sharedTierAnswered() -> Bool {
        switch step {
        case .sharedTierWait:
            step = .lookup
            return true
        case .closing, .lingering, .closed:
            return false
        default:
            illegal("a shared tier answer while \(step)")
            return false
        }
    }

    /// Another request's fetch of the key is awaited.
    public mutating func waitForCollapsedFetch(_ wait: Wait) {
        guard case .lookup = step else { return illegal("a collapsed wait while \(step)") }
        step = .collapsedWait(wait)
    }

    /// The wait with `id` ended (its fetch ended, or it timed out): the wait, back at lookup;
    /// nil when that wait is no longer the current one (it ended already, or the connection closed).
    public mutating func collapsedWaitEnded(id: Wait.ID) -> Wait? {
        guard case .collapsedWait(let wait) = step, wait.id == id else { return nil }
        step = .lookup
        return wait
    }

    /// The request is looked up again (after a wait that could not answer it).
    public mutating func restart() {
        guard case .lookup = step else { return illegal("a restart while \(step)") }
        restarts = restarts.addingReportingOverflow(1).partialValue
    }

    /// An origin fetch answers the request.
    public mutating func fetchStarted(_ fetch: Fetch) {
        guard case .lookup = step else { return illegal("a fetch started while \(step)") }
        step = .fetch(fetch)
    }

    /// The collapsed wait the request is in, if that is the step.
    public var collapsedWait: Wait? {
        if case .collapsedWait(let wait) = step { return wait }
        return nil
    }

    /// The fetch answering the request, if that is the step.
    public var fetch: Fetch? {
        if case .fetch(let fetch) = step { return fetch }
        return nil
    }

    // MARK: Decisions: the machine answers what to do next

    /// lookup: what L1 found, decided at this step (`LookupDecision`): deliver, refresh in the
    /// background, answer `only-if-cached`, fetch alone, or join the key's collapsed fetch.
    public mutating func lookedUp<Hit>(
        _ found: LookupDecision<Hit>.Found, wantsOrigin: Bool, onlyIfCached: Bool, isGET: Bool
    ) -> LookupDecision<Hit> {
        if case .lookup = step {} else { illegal("a lookup while \(step)") }
        return LookupDecision.decide(found, wantsOrigin: wantsOrigin, onlyIfCached: onlyIfCached, isGET: isGET)
    }

    /// l2-wait: the shared tier answered. Decided here (`SharedTierDecision`), and the step
    /// follows: a variant restarts the lookup, a lease held elsewhere keeps the request waiting
    /// (`sharedTierAnswered()` ends that wait), the rest go on from lookup (deliver or fetch).
    /// Nil when the connection closed meanwhile: the answer is dropped.
    public mutating func sharedTierAnswered<Response, Hit>(
        _ entry: SharedTierDecision<Response, Hit>.Entry, mayFetch: Bool, stale: (Hit, StaleWindows)?, leaseWaitLeft: Bool
    ) -> SharedTierDecision<Response, Hit>? {
        guard sharedTierAnswered() else { return nil }
        let decision = SharedTierDecision.decide(entry, mayFetch: mayFetch, stale: stale, leaseWaitLeft: leaseWaitLeft)
        switch decision {
        case .restartForVariant: restart()
        case .waitForLease: askedSharedTier()
        case .hit, .staleAndRefresh, .staleWhileLeased, .fetch: break
        }
        return decision
    }

    /// How a fetch that a collapsed request waited for ended, as far as that request goes.
    public enum CollapsedFetchEnd: Equatable, Sendable {
        /// It stored a response; `sameVariant`: the variant this request needs.
        case stored(sameVariant: Bool)
        /// It stored nothing (uncacheable, purged during the fetch, its client left).
        case notStored
        /// The origin failed; `staleIfError`: this request's stale entry may stand in.
        case failed(staleIfError: Bool)
    }

    /// What a collapsed request does once the fetch it waited for has ended.
    public enum CollapsedAnswer: Equatable, Sendable {
        /// Deliver what the fetch stored.
        case deliverStored
        /// Look up again (a restart: the machine is back at lookup).
        case lookUpAgain
        /// Deliver the stale entry (stale-if-error).
        case deliverStale
        /// Answer with the fetch's error.
        case answerError
    }

    /// collapsed-wait: the fetch of wait `id` ended. Nil when that wait is no longer the current
    /// one (it timed out, or the connection closed).
    public mutating func collapsedFetchEnded(id: Wait.ID, _ end: CollapsedFetchEnd) -> (wait: Wait, answer: CollapsedAnswer)? {
        guard let wait = collapsedWaitEnded(id: id) else { return nil }
        switch end {
        case .stored(sameVariant: true):
            return (wait, .deliverStored)
        case .stored(sameVariant: false), .notStored:
            restart()
            return (wait, .lookUpAgain)
        case .failed(let staleIfError):
            return (wait, staleIfError ? .deliverStale : .answerError)
        }
    }

    // MARK: deliver → done

    /// The answer is completely written (or handed to the socket).
    public mutating func answered(keepAlive: Bool) -> AnswerAction {
        switch step {
        case .lookup, .fetch:
            guard keepAlive else { return .close }
            step = .idle
            if case .forwarding(let received) = body { body = .discarding(received: received) }
            return .next
        case .closing, .lingering, .closed:
            return .nothing
        case .idle, .sharedTierWait, .collapsedWait:
            illegal("an answer while \(step)")
            return .close
        }
    }

    /// The client broke the open request (malformed body, body timeout); `responseStarted`: the
    /// fetch has begun writing its answer.
    public mutating func requestBroken(responseStarted: Bool) -> BrokenRequestAction {
        if isClosing { return .closeQuietly(.nothing) }
        let discarding = if case .discarding = body { true } else { false }
        body = .complete
        let abandoned = abandon()
        return discarding || responseStarted ? .closeQuietly(abandoned) : .answer(abandoned)
    }

    /// Stops answering: the current step's fetch or wait is handed back to be cancelled.
    public mutating func abandon() -> Abandoned {
        switch step {
        case .fetch(let fetch):
            step = .lookup
            return .fetch(fetch)
        case .collapsedWait(let wait):
            step = .lookup
            return .wait(wait)
        case .sharedTierWait:
            step = .lookup
            return .nothing
        default:
            return .nothing
        }
    }

    // MARK: The socket

    /// The socket's writability changed. Writable again: the fetch (if any) may be read on.
    public mutating func writabilityChanged(_ writable: Bool) -> Fetch? {
        isWritable = writable
        return writable ? fetch : nil
    }

    /// Closing once what was written is sent: what was being answered, to cancel; nil when the
    /// connection was closing already.
    public mutating func close() -> Abandoned? {
        guard !isClosing else { return nil }
        let abandoned = abandon()
        step = .closing
        body = .complete
        return abandoned
    }

    /// The output side is shut; the client's last bytes are read and dropped.
    public mutating func lingerStarted() {
        guard case .closing = step else { return }
        step = .lingering
    }

    /// The channel is gone: what was being answered, to cancel.
    public mutating func closed() -> Abandoned {
        let abandoned = abandon()
        step = .closed
        body = .complete
        return abandoned
    }

    /// Set by an event in a state where it cannot happen (release builds): the handler closes
    /// the connection at its next checkpoint.
    public private(set) var violation: String?

    private mutating func illegal(_ what: String) {
        if trapsOnIllegalEvents { assertionFailure("RequestStateMachine: \(what)") }
        if violation == nil { violation = what }
    }
}

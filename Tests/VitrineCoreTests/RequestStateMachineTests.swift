import Testing
import VitrineCore

/// The request path's state machine alone: every event in every state, then the connection-level
/// behaviours that used to need sockets (pipelining order, read back-pressure, bodies after the
/// answer, the body limit), driven event by event.
@Suite struct RequestStateMachineTests {
    struct Wait: Identifiable {
        let id: Int
    }
    typealias Machine = RequestStateMachine<String, Wait>

    /// A short name for where the machine is: step, then body.
    static func describe(_ machine: Machine) -> String {
        let step: String
        switch machine.step {
        case .idle: step = "idle"
        case .lookup: step = "lookup"
        case .sharedTierWait: step = "l2-wait"
        case .collapsedWait(let wait): step = "collapsed-wait(\(wait.id))"
        case .fetch(let fetch): step = "fetch(\(fetch))"
        case .closing: step = "closing"
        case .lingering: step = "lingering"
        case .closed: step = "closed"
        }
        let body: String
        switch machine.body {
        case .complete: body = "complete"
        case .forwarding(let received): body = "forwarding \(received)"
        case .discarding(let received): body = "discarding \(received)"
        }
        return "\(step), \(body)" + (machine.violation != nil ? ", ILLEGAL" : "")
    }

    static func abandoned(_ abandoned: Machine.Abandoned?) -> String {
        switch abandoned {
        case nil: return "nil"
        case .nothing: return "nothing"
        case .fetch(let fetch): return "fetch \(fetch)"
        case .wait(let wait): return "wait \(wait.id)"
        }
    }

    /// Each state, reached by legal events from a new connection.
    static let states: [(String, @Sendable () -> Machine)] = [
        ("idle", { Machine(maxBody: 100, trapsOnIllegalEvents: false) }),
        ("lookup", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            machine.headReceived()
            return machine
        }),
        ("l2-wait", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            machine.headReceived()
            machine.askedSharedTier()
            return machine
        }),
        ("collapsed-wait", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            machine.headReceived()
            machine.waitForCollapsedFetch(Wait(id: 7))
            _ = machine.bodyEnded()
            return machine
        }),
        ("fetch", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            machine.headReceived()
            machine.fetchStarted("F")
            return machine
        }),
        ("answered, body arriving", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            machine.headReceived()
            _ = machine.answered(keepAlive: true)
            return machine
        }),
        ("closing", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            _ = machine.close()
            return machine
        }),
        ("lingering", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            _ = machine.close()
            machine.lingerStarted()
            return machine
        }),
        ("closed", {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            _ = machine.closed()
            return machine
        }),
    ]

    /// Every event, with what it answered.
    static let events: [(String, @Sendable (inout Machine) -> String)] = [
        ("head", { machine in machine.headReceived(); return "" }),
        ("body 10", { machine in "\(machine.bodyReceived(10))" }),
        ("body 200", { machine in "\(machine.bodyReceived(200))" }),
        ("end", { machine in "\(machine.bodyEnded())" }),
        ("ask L2", { machine in machine.askedSharedTier(); return "" }),
        ("L2 answered", { machine in "\(machine.sharedTierAnswered())" }),
        ("wait", { machine in machine.waitForCollapsedFetch(Wait(id: 9)); return "" }),
        ("wait 7 ended", { machine in machine.collapsedWaitEnded(id: 7).map { "\($0.id)" } ?? "nil" }),
        ("wait 8 ended", { machine in machine.collapsedWaitEnded(id: 8).map { "\($0.id)" } ?? "nil" }),
        ("restart", { machine in machine.restart(); return "\(machine.restarts)" }),
        ("fetch", { machine in machine.fetchStarted("G"); return "" }),
        ("answered keep-alive", { machine in "\(machine.answered(keepAlive: true))" }),
        ("answered close", { machine in "\(machine.answered(keepAlive: false))" }),
        ("broken", { machine in
            switch machine.requestBroken(responseStarted: false) {
            case .closeQuietly(let left): return "close quietly, \(Self.abandoned(left))"
            case .answer(let left): return "answer, \(Self.abandoned(left))"
            }
        }),
        ("unwritable", { machine in "\(machine.writabilityChanged(false) ?? "-")" }),
        ("writable", { machine in "\(machine.writabilityChanged(true) ?? "-")" }),
        ("close", { machine in Self.abandoned(machine.close()) }),
        ("linger", { machine in machine.lingerStarted(); return "" }),
        ("closed", { machine in Self.abandoned(machine.closed()) }),
        ("read", { machine in "\(machine.readRequested())" }),
    ]

    /// state → event → "what it answered → where the machine is then".
    static let expected: [String: [String: String]] = [
        "idle": [
            "head": " → lookup, forwarding 0",
            "body 10": "drop → idle, complete, ILLEGAL",
            "body 200": "drop → idle, complete, ILLEGAL",
            "end": "false → idle, complete, ILLEGAL",
            "ask L2": " → idle, complete, ILLEGAL",
            "L2 answered": "false → idle, complete, ILLEGAL",
            "wait": " → idle, complete, ILLEGAL",
            "wait 7 ended": "nil → idle, complete",
            "wait 8 ended": "nil → idle, complete",
            "restart": "0 → idle, complete, ILLEGAL",
            "fetch": " → idle, complete, ILLEGAL",
            "answered keep-alive": "close → idle, complete, ILLEGAL",
            "answered close": "close → idle, complete, ILLEGAL",
            "broken": "answer, nothing → idle, complete",
            "unwritable": "- → idle, complete",
            "writable": "- → idle, complete",
            "close": "nothing → closing, complete",
            "linger": " → idle, complete",
            "closed": "nothing → closed, complete",
            "read": "true → idle, complete",
        ],
        "lookup": [
            "head": " → lookup, forwarding 0, ILLEGAL",
            "body 10": "forward → lookup, forwarding 10",
            "body 200": "tooLarge → lookup, forwarding 200",
            "end": "true → lookup, complete",
            "ask L2": " → l2-wait, forwarding 0",
            "L2 answered": "false → lookup, forwarding 0, ILLEGAL",
            "wait": " → collapsed-wait(9), forwarding 0",
            "wait 7 ended": "nil → lookup, forwarding 0",
            "wait 8 ended": "nil → lookup, forwarding 0",
            "restart": "1 → lookup, forwarding 0",
            "fetch": " → fetch(G), forwarding 0",
            "answered keep-alive": "next → idle, discarding 0",
            "answered close": "close → lookup, forwarding 0",
            "broken": "answer, nothing → lookup, complete",
            "unwritable": "- → lookup, forwarding 0",
            "writable": "- → lookup, forwarding 0",
            "close": "nothing → closing, complete",
            "linger": " → lookup, forwarding 0",
            "closed": "nothing → closed, complete",
            "read": "true → lookup, forwarding 0",
        ],
        "l2-wait": [
            "head": " → l2-wait, forwarding 0, ILLEGAL",
            "body 10": "forward → l2-wait, forwarding 10",
            "body 200": "tooLarge → l2-wait, forwarding 200",
            "end": "true → l2-wait, complete",
            "ask L2": " → l2-wait, forwarding 0, ILLEGAL",
            "L2 answered": "true → lookup, forwarding 0",
            "wait": " → l2-wait, forwarding 0, ILLEGAL",
            "wait 7 ended": "nil → l2-wait, forwarding 0",
            "wait 8 ended": "nil → l2-wait, forwarding 0",
            "restart": "0 → l2-wait, forwarding 0, ILLEGAL",
            "fetch": " → l2-wait, forwarding 0, ILLEGAL",
            "answered keep-alive": "close → l2-wait, forwarding 0, ILLEGAL",
            "answered close": "close → l2-wait, forwarding 0, ILLEGAL",
            "broken": "answer, nothing → lookup, complete",
            "unwritable": "- → l2-wait, forwarding 0",
            "writable": "- → l2-wait, forwarding 0",
            "close": "nothing → closing, complete",
            "linger": " → l2-wait, forwarding 0",
            "closed": "nothing → closed, complete",
            "read": "true → l2-wait, forwarding 0",
        ],
        "collapsed-wait": [
            "head": " → collapsed-wait(7), complete, ILLEGAL",
            "body 10": "drop → collapsed-wait(7), complete, ILLEGAL",
            "body 200": "drop → collapsed-wait(7), complete, ILLEGAL",
            "end": "false → collapsed-wait(7), complete, ILLEGAL",
            "ask L2": " → collapsed-wait(7), complete, ILLEGAL",
            "L2 answered": "false → collapsed-wait(7), complete, ILLEGAL",
            "wait": " → collapsed-wait(7), complete, ILLEGAL",
            "wait 7 ended": "7 → lookup, complete",
            "wait 8 ended": "nil → collapsed-wait(7), complete",
            "restart": "0 → collapsed-wait(7), complete, ILLEGAL",
            "fetch": " → collapsed-wait(7), complete, ILLEGAL",
            "answered keep-alive": "close → collapsed-wait(7), complete, ILLEGAL",
            "answered close": "close → collapsed-wait(7), complete, ILLEGAL",
            "broken": "answer, wait 7 → lookup, complete",
            "unwritable": "- → collapsed-wait(7), complete",
            "writable": "- → collapsed-wait(7), complete",
            "close": "wait 7 → closing, complete",
            "linger": " → collapsed-wait(7), complete",
            "closed": "wait 7 → closed, complete",
            "read": "false → collapsed-wait(7), complete",
        ],
        "fetch": [
            "head": " → fetch(F), forwarding 0, ILLEGAL",
            "body 10": "forward → fetch(F), forwarding 10",
            "body 200": "tooLarge → fetch(F), forwarding 200",
            "end": "true → fetch(F), complete",
            "ask L2": " → fetch(F), forwarding 0, ILLEGAL",
            "L2 answered": "false → fetch(F), forwarding 0, ILLEGAL",
            "wait": " → fetch(F), forwarding 0, ILLEGAL",
            "wait 7 ended": "nil → fetch(F), forwarding 0",
            "wait 8 ended": "nil → fetch(F), forwarding 0",
            "restart": "0 → fetch(F), forwarding 0, ILLEGAL",
            "fetch": " → fetch(F), forwarding 0, ILLEGAL",
            "answered keep-alive": "next → idle, discarding 0",
            "answered close": "close → fetch(F), forwarding 0",
            "broken": "answer, fetch F → lookup, complete",
            "unwritable": "- → fetch(F), forwarding 0",
            "writable": "F → fetch(F), forwarding 0",
            "close": "fetch F → closing, complete",
            "linger": " → fetch(F), forwarding 0",
            "closed": "fetch F → closed, complete",
            "read": "true → fetch(F), forwarding 0",
        ],
        "answered, body arriving": [
            "head": " → idle, discarding 0, ILLEGAL",
            "body 10": "drop → idle, discarding 10",
            "body 200": "tooLarge → idle, discarding 200",
            "end": "false → idle, complete",
            "ask L2": " → idle, discarding 0, ILLEGAL",
            "L2 answered": "false → idle, discarding 0, ILLEGAL",
            "wait": " → idle, discarding 0, ILLEGAL",
            "wait 7 ended": "nil → idle, discarding 0",
            "wait 8 ended": "nil → idle, discarding 0",
            "restart": "0 → idle, discarding 0, ILLEGAL",
            "fetch": " → idle, discarding 0, ILLEGAL",
            "answered keep-alive": "close → idle, discarding 0, ILLEGAL",
            "answered close": "close → idle, discarding 0, ILLEGAL",
            "broken": "close quietly, nothing → idle, complete",
            "unwritable": "- → idle, discarding 0",
            "writable": "- → idle, discarding 0",
            "close": "nothing → closing, complete",
            "linger": " → idle, discarding 0",
            "closed": "nothing → closed, complete",
            "read": "true → idle, discarding 0",
        ],
    ]

    /// Closing, lingering and closed answer every request event the same way: nothing more is
    /// answered (the events that may still arrive, late, are ignored; the rest are illegal).
    static func expectedWhileClosing(_ state: String, _ event: String) -> String {
        let here = "\(state), complete"
        switch event {
        case "head", "ask L2", "wait", "fetch": return " → \(here), ILLEGAL"
        case "restart": return "0 → \(here), ILLEGAL"
        case "body 10", "body 200": return "drop → \(here), ILLEGAL"
        case "end": return "false → \(here), ILLEGAL"
        case "L2 answered": return "false → \(here)"
        case "wait 7 ended", "wait 8 ended": return "nil → \(here)"
        case "answered keep-alive", "answered close": return "nothing → \(here)"
        case "broken": return "close quietly, nothing → \(here)"
        case "unwritable", "writable": return "- → \(here)"
        case "close": return "nil → \(here)"
        case "linger": return " → \(state == "closing" ? "lingering" : state), complete"
        case "closed": return "nothing → closed, complete"
        case "read": return "\(state == "lingering") → \(here)"
        default: return "?"
        }
    }

    @Test(arguments: states.map(\.0))
    func everyEventInEveryState(_ state: String) {
        let make = Self.states.first { $0.0 == state }!.1
        for (event, apply) in Self.events {
            var machine = make()
            let answer = apply(&machine)
            let got = "\(answer) → \(Self.describe(machine))"
            let want = Self.expected[state]?[event] ?? Self.expectedWhileClosing(state, event)
            #expect(got == want, "\(state) + \(event)")
        }
    }

    @Test func anIllegalEventTrapsWhenTrappingIsOn() async {
        await #expect(processExitsWith: .failure) {
            var machine = RequestStateMachine<String, Wait>(maxBody: 10)
            machine.fetchStarted("never looked up")
        }
    }

    // MARK: Behaviours, event by event

    /// A pipelined request is not taken while the one before it waits on its origin, and the
    /// reading stops: it is taken, in order, once that one is answered.
    @Test func pipelinedRequestsWaitTheirTurnAndReadingPauses() {
        var machine = Machine(maxBody: 100)
        #expect(machine.mayTakePart)
        machine.headReceived()
        machine.fetchStarted("first")
        #expect(machine.mayTakePart, "its own end is still taken")
        let endForwarded = machine.bodyEnded()
        #expect(endForwarded)
        #expect(!machine.mayTakePart, "the next head waits in the decoder")
        let readsNow = machine.readRequested()
        #expect(!readsNow, "and the socket is not read")
        let resumes = machine.resumeReading()
        #expect(!resumes)
        #expect(machine.clientWait(decoderHasBytes: true) == .nothing, "the origin's timeouts apply, not the client's")
        let afterAnswer = machine.answered(keepAlive: true)
        #expect(afterAnswer == .next)
        #expect(machine.mayTakePart)
        let resumesOnce = machine.resumeReading()
        #expect(resumesOnce, "the deferred read goes ahead once")
        let resumesAgain = machine.resumeReading()
        #expect(!resumesAgain)
        machine.headReceived()
        #expect(Self.describe(machine) == "lookup, forwarding 0")
    }

    /// While the shared tier is asked, the socket stays read as long as nothing of a later request
    /// is buffered (no pause and resume, two `epoll_ctl` calls, per L2 hit); once something is,
    /// the reading pauses, and it pauses for an origin fetch whatever is buffered.
    @Test func aSharedTierWaitKeepsReadingUntilSomethingIsBuffered() {
        var machine = Machine(maxBody: 100)
        machine.headReceived()
        _ = machine.bodyEnded()
        machine.askedSharedTier()
        let readsWhileEmpty = machine.readRequested(decoderHasBytes: false)
        #expect(readsWhileEmpty)
        let readsWhileBuffered = machine.readRequested(decoderHasBytes: true)
        #expect(!readsWhileBuffered, "a pipelined request waits in the decoder, the rest in the socket")
        _ = machine.sharedTierAnswered()
        machine.fetchStarted("miss")
        let readsWhileFetching = machine.readRequested(decoderHasBytes: false)
        #expect(!readsWhileFetching)
        _ = machine.writabilityChanged(false)
        let readsWhileFull = machine.readRequested(decoderHasBytes: false)
        #expect(!readsWhileFull)
    }

    /// A client that does not read what it was sent: nothing more is taken or read, hits
    /// included, until its socket drains.
    @Test func aFullSocketStopsTakingAndReading() {
        var machine = Machine(maxBody: 100)
        _ = machine.writabilityChanged(false)
        #expect(!machine.mayTakePart)
        let readsWhileFull = machine.readRequested()
        #expect(!readsWhileFull)
        #expect(machine.clientWait(decoderHasBytes: true) == .nothing, "the send timeout applies")
        _ = machine.writabilityChanged(true)
        #expect(machine.mayTakePart)
        let resumesWhenDrained = machine.resumeReading()
        #expect(resumesWhenDrained)
    }

    /// A request answered from the cache before its body arrived: the body is read and dropped,
    /// still counted against the limit, and the next request comes after it.
    @Test func aBodyAfterTheAnswerIsDroppedAndStillBounded() {
        var machine = Machine(maxBody: 100)
        machine.headReceived()
        let afterAnswer = machine.answered(keepAlive: true)
        #expect(afterAnswer == .next)
        #expect(machine.mayTakePart)
        #expect(machine.clientWait(decoderHasBytes: false) == .body, "the body timeout still runs")
        let firstPart = machine.bodyReceived(60)
        #expect(firstPart == .drop)
        let secondPart = machine.bodyReceived(60)
        #expect(secondPart == .tooLarge)
    }

    /// The body limit saturates instead of overflowing.
    @Test func theBodyCountSaturates() {
        var machine = Machine(maxBody: 100)
        machine.headReceived()
        machine.fetchStarted("f")
        let firstPart = machine.bodyReceived(Int.max)
        #expect(firstPart == .tooLarge)
        let secondPart = machine.bodyReceived(Int.max)
        #expect(secondPart == .tooLarge)
    }

    /// A malformed body or a body timeout: answered with the error when nothing was said yet,
    /// closed quietly when the answer has begun; the fetch is handed back to be cancelled.
    @Test func aBrokenRequestAbandonsItsFetch() {
        var machine = Machine(maxBody: 100)
        machine.headReceived()
        machine.fetchStarted("f")
        guard case .closeQuietly(.fetch("f")) = machine.requestBroken(responseStarted: true) else {
            Issue.record("a started answer closes quietly")
            return
        }
        var other = Machine(maxBody: 100)
        other.headReceived()
        other.fetchStarted("g")
        guard case .answer(.fetch("g")) = other.requestBroken(responseStarted: false) else {
            Issue.record("an unstarted answer is the error")
            return
        }
    }

    /// A collapsed wait that could not be answered restarts at lookup, explicitly, and a late
    /// outcome for a wait already ended is ignored.
    @Test func aWaitEndsOnceAndRestartsAtLookup() {
        var machine = Machine(maxBody: 100)
        machine.headReceived()
        machine.waitForCollapsedFetch(Wait(id: 1))
        let ended = machine.collapsedWaitEnded(id: 1)
        #expect(ended?.id == 1)
        let endedAgain = machine.collapsedWaitEnded(id: 1)
        #expect(endedAgain == nil)
        machine.restart()
        #expect(machine.restarts == 1)
        machine.askedSharedTier()
        let goesOn = machine.sharedTierAnswered()
        #expect(goesOn)
        machine.fetchStarted("f")
        let afterAnswer = machine.answered(keepAlive: false)
        #expect(afterAnswer == .close)
        let closedWith = Self.abandoned(machine.close())
        #expect(closedWith == "fetch f")
        let afterClose = machine.answered(keepAlive: true)
        #expect(afterClose == .nothing, "a close never reopens")
    }

    /// Idle with part of a head buffered waits for the head (its timer), idle without waits for
    /// the next request (keep-alive).
    @Test func whatTheClientIsWaitedFor() {
        let machine = Machine(maxBody: 100)
        #expect(machine.clientWait(decoderHasBytes: false) == .idle)
        #expect(machine.clientWait(decoderHasBytes: true) == .head)
    }

    // MARK: The machine decides

    /// A machine at l2-wait, body complete.
    static func askingSharedTier() -> Machine {
        var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
        machine.headReceived()
        _ = machine.bodyEnded()
        machine.askedSharedTier()
        return machine
    }

    @Test func theSharedTiersAnswerIsDecidedAndTheStepFollowsIt() {
        typealias Entry = SharedTierDecision<String, String>.Entry
        var variant = Self.askingSharedTier()
        let restart = variant.sharedTierAnswered(Entry.varyMarker, mayFetch: true, stale: nil, leaseWaitLeft: true)
        #expect(restart == .restartForVariant)
        #expect(Self.describe(variant) == "lookup, complete" && variant.restarts == 1, "a variant restarts the lookup")

        var leased = Self.askingSharedTier()
        let wait = leased.sharedTierAnswered(Entry.absent, mayFetch: false, stale: nil, leaseWaitLeft: true)
        #expect(wait == .waitForLease)
        #expect(Self.describe(leased) == "l2-wait, complete", "still waiting, for the lease holder")
        let waitEnded = leased.sharedTierAnswered()
        #expect(waitEnded, "the wait ends")

        var hit = Self.askingSharedTier()
        let found = hit.sharedTierAnswered(Entry.fresh("R"), mayFetch: true, stale: nil, leaseWaitLeft: true)
        #expect(found == .hit("R"))
        #expect(Self.describe(hit) == "lookup, complete" && hit.restarts == 0)

        var gone = Self.askingSharedTier()
        _ = gone.close()
        let dropped = gone.sharedTierAnswered(Entry.fresh("R"), mayFetch: true, stale: nil, leaseWaitLeft: true)
        #expect(dropped == nil, "the connection closed meanwhile")
    }

    @Test func aCollapsedRequestIsToldWhatToDoWhenItsFetchEnds() {
        func waiting() -> Machine {
            var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
            machine.headReceived()
            _ = machine.bodyEnded()
            machine.waitForCollapsedFetch(Wait(id: 3))
            return machine
        }
        var stored = waiting()
        let ended1 = stored.collapsedFetchEnded(id: 3, .stored(sameVariant: true))
        #expect(ended1?.answer == .deliverStored)
        #expect(stored.restarts == 0)
        var otherVariant = waiting()
        let ended2 = otherVariant.collapsedFetchEnded(id: 3, .stored(sameVariant: false))
        #expect(ended2?.answer == .lookUpAgain)
        #expect(otherVariant.restarts == 1 && Self.describe(otherVariant) == "lookup, complete")
        var notStored = waiting()
        let ended3 = notStored.collapsedFetchEnded(id: 3, .notStored)
        #expect(ended3?.answer == .lookUpAgain)
        var failed = waiting()
        let ended4 = failed.collapsedFetchEnded(id: 3, .failed(staleIfError: true))
        #expect(ended4?.answer == .deliverStale)
        var failedBare = waiting()
        let ended5 = failedBare.collapsedFetchEnded(id: 3, .failed(staleIfError: false))
        #expect(ended5?.answer == .answerError)
        var timedOut = waiting()
        let ended6 = timedOut.collapsedFetchEnded(id: 4, .notStored)
        #expect(ended6 == nil, "another wait's end")
        #expect(Self.describe(timedOut) == "collapsed-wait(3), complete")
    }

    @Test func aLookupOutsideTheLookupStepIsAViolation() {
        var machine = Machine(maxBody: 100, trapsOnIllegalEvents: false)
        let decision = machine.lookedUp(LookupDecision<String>.Found.fresh("R"), wantsOrigin: false, onlyIfCached: false, isGET: true)
        #expect(decision == .hit("R"))
        #expect(machine.violation != nil)
    }
}

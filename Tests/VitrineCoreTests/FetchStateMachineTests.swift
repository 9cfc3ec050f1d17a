import Testing
import VitrineCore

/// The origin fetch's state machine alone: every event in every state as a table, then the
/// sequences that matter (a retry loses nothing, a body forbids it, a held write replays in
/// order, an answer before the body ends spoils the connection).
@Suite struct FetchStateMachineTests {
    /// Connection, head, part, failure and handling as plain values.
    typealias Machine = FetchStateMachine<Int, String, String, String, String>

    static func describe(_ machine: Machine) -> String {
        let state: String
        switch machine.state {
        case .idle: state = "idle"
        case .connecting(let pending): state = "connecting\(pending)"
        case .awaitingHead(let connection): state = "awaitingHead(\(connection))"
        case .headArrived(let connection): state = "headArrived(\(connection.map(String.init) ?? "-"))"
        case .heldForPurge(let connection, let head, let parts):
            state = "held(\(connection.map(String.init) ?? "-"), \(head), \(parts.map(describe)))"
        case .responding(let connection, let handling): state = "responding(\(connection.map(String.init) ?? "-"), \(handling))"
        case .finished: state = "finished"
        }
        let body: String
        switch machine.requestBody {
        case .arriving(let sent): body = sent ? "arriving+" : "arriving"
        case .complete(let sent): body = sent ? "complete+" : "complete"
        }
        return "\(state) \(body) a\(machine.attempts)" + (machine.responseStarted ? " started" : "")
    }

    static func describe(_ part: Machine.HeldPart) -> String {
        switch part {
        case .body(let part): return "body \(part)"
        case .end: return "end"
        case .failure(let failure): return "failure \(failure)"
        }
    }

    /// Each state, reached by legal events from a new fetch whose client's body is still arriving.
    static let states: [(String, @Sendable () -> Machine)] = [
        ("idle", { Machine(requestComplete: false) }),
        ("connecting", {
            var machine = Machine(requestComplete: false)
            _ = machine.start()
            return machine
        }),
        ("awaitingHead", {
            var machine = Machine(requestComplete: false)
            _ = machine.start()
            _ = machine.acquired(7)
            return machine
        }),
        ("headArrived", {
            var machine = Machine(requestComplete: false)
            _ = machine.start()
            _ = machine.acquired(7)
            _ = machine.responseHead("200", purgeFirst: false)
            return machine
        }),
        ("held", {
            var machine = Machine(requestComplete: false)
            _ = machine.start()
            _ = machine.acquired(7)
            _ = machine.responseHead("200", purgeFirst: true)
            return machine
        }),
        ("responding", {
            var machine = Machine(requestComplete: false)
            _ = machine.start()
            _ = machine.acquired(7)
            _ = machine.responseHead("200", purgeFirst: false)
            machine.delivered("stream")
            return machine
        }),
        ("finished", {
            var machine = Machine(requestComplete: false)
            _ = machine.start()
            _ = machine.clientClosed()
            return machine
        }),
    ]

    /// Each event, with what it answered.
    static let events: [(String, @Sendable (inout Machine) -> String)] = [
        ("start", { "\($0.start())" }),
        ("acquired", {
            switch $0.acquired(9) {
            case .send(let connection, let body, let end): return "send(\(connection), \(body), end: \(end))"
            case .release(let connection): return "release(\(connection))"
            }
        }),
        ("requestPart", { describe($0.requestPart("p")) }),
        ("requestEnded", { describe($0.requestEnded()) }),
        ("head", {
            switch $0.responseHead("201", purgeFirst: false) {
            case .deliver(let head): return "deliver(\(head))"
            case .purgeThenDeliver: return "purgeThenDeliver"
            case .ignore: return "ignore"
            }
        }),
        ("writeHead", {
            switch $0.responseHead("201", purgeFirst: true) {
            case .deliver(let head): return "deliver(\(head))"
            case .purgeThenDeliver: return "purgeThenDeliver"
            case .ignore: return "ignore"
            }
        }),
        ("purgeEnded", {
            switch $0.purgeEnded() {
            case .deliver(let head, let parts): return "deliver(\(head), \(parts.map(describe)))"
            case .nothing: return "nothing"
            }
        }),
        ("delivered", {
            $0.delivered("h")
            return "-"
        }),
        ("responsePart", {
            switch $0.responsePart("r") {
            case .handle(let handling): return "handle(\(handling))"
            case .held: return "held"
            case .ignore: return "ignore"
            }
        }),
        ("responseEnded", {
            switch $0.responseEnded() {
            case .complete(let handling, let complete, let cancel):
                return "complete(\(handling), requestComplete: \(complete), cancel: \(cancel.map(String.init) ?? "-"))"
            case .held: return "held"
            case .ignore: return "ignore"
            }
        }),
        ("failedRetryable", { "\($0.failed("reset", retryable: true, staleIfError: false))" }),
        ("failedStale", { "\($0.failed("timeout", retryable: false, staleIfError: true))" }),
        ("clientClosed", { "cancel \($0.clientClosed().map(String.init) ?? "-")" }),
    ]

    static func describe(_ action: Machine.RequestPartAction) -> String {
        switch action {
        case .write(let connection): return "write(\(connection))"
        case .nothing: return "nothing"
        }
    }

    /// Every event in every state: what it answers, and where the fetch is then. Read row by row
    /// against the diagram in `FetchStateMachine`; a change of behaviour shows up here first.
    static let table: [String: [String]] = [
        "idle": [
            "start: true → connecting[] arriving a1",
            "acquired: release(9) → idle arriving a0",
            "requestPart: nothing → idle arriving+ a0",
            "requestEnded: nothing → idle complete a0",
            "head: ignore → idle arriving a0",
            "writeHead: ignore → idle arriving a0",
            "purgeEnded: nothing → idle arriving a0",
            "delivered: - → idle arriving a0",
            "responsePart: ignore → idle arriving a0",
            "responseEnded: ignore → idle arriving a0",
            "failedRetryable: ignore → idle arriving a0",
            "failedStale: ignore → idle arriving a0",
            "clientClosed: cancel - → finished arriving a0",
        ],
        "connecting": [
            "start: false → connecting[] arriving a1",
            "acquired: send(9, [], end: false) → awaitingHead(9) arriving a1",
            "requestPart: nothing → connecting[\"p\"] arriving+ a1",
            "requestEnded: nothing → connecting[] complete a1",
            "head: ignore → connecting[] arriving a1",
            "writeHead: ignore → connecting[] arriving a1",
            "purgeEnded: nothing → connecting[] arriving a1",
            "delivered: - → connecting[] arriving a1",
            "responsePart: ignore → connecting[] arriving a1",
            "responseEnded: ignore → connecting[] arriving a1",
            "failedRetryable: retry → connecting[] arriving a2",
            "failedStale: answerStale(requestComplete: false) → finished arriving a1",
            "clientClosed: cancel - → finished arriving a1",
        ],
        "awaitingHead": [
            "start: false → awaitingHead(7) arriving a1",
            "acquired: release(9) → awaitingHead(7) arriving a1",
            "requestPart: write(7) → awaitingHead(7) arriving+ a1",
            "requestEnded: write(7) → awaitingHead(7) complete a1",
            "head: deliver(201) → headArrived(7) arriving a1 started",
            "writeHead: purgeThenDeliver → held(7, 201, []) arriving a1 started",
            "purgeEnded: nothing → awaitingHead(7) arriving a1",
            "delivered: - → awaitingHead(7) arriving a1",
            "responsePart: ignore → awaitingHead(7) arriving a1",
            "responseEnded: ignore → awaitingHead(7) arriving a1",
            "failedRetryable: retry → connecting[] arriving a2",
            "failedStale: answerStale(requestComplete: false) → finished arriving a1",
            "clientClosed: cancel 7 → finished arriving a1",
        ],
        "headArrived": [
            "start: false → headArrived(7) arriving a1 started",
            "acquired: release(9) → headArrived(7) arriving a1 started",
            "requestPart: write(7) → headArrived(7) arriving+ a1 started",
            "requestEnded: write(7) → headArrived(7) complete a1 started",
            "head: ignore → headArrived(7) arriving a1 started",
            "writeHead: ignore → headArrived(7) arriving a1 started",
            "purgeEnded: nothing → headArrived(7) arriving a1 started",
            "delivered: - → responding(7, h) arriving a1 started",
            "responsePart: ignore → headArrived(7) arriving a1 started",
            "responseEnded: ignore → headArrived(7) arriving a1 started",
            "failedRetryable: abort → finished arriving a1 started",
            "failedStale: abort → finished arriving a1 started",
            "clientClosed: cancel 7 → finished arriving a1 started",
        ],
        "held": [
            "start: false → held(7, 200, []) arriving a1 started",
            "acquired: release(9) → held(7, 200, []) arriving a1 started",
            "requestPart: write(7) → held(7, 200, []) arriving+ a1 started",
            "requestEnded: write(7) → held(7, 200, []) complete a1 started",
            "head: ignore → held(7, 200, []) arriving a1 started",
            "writeHead: ignore → held(7, 200, []) arriving a1 started",
            "purgeEnded: deliver(200, []) → headArrived(7) arriving a1 started",
            "delivered: - → held(7, 200, []) arriving a1 started",
            "responsePart: held → held(7, 200, [\"body r\"]) arriving a1 started",
            "responseEnded: held → held(7, 200, [\"end\"]) arriving a1 started",
            "failedRetryable: held → held(-, 200, [\"failure reset\"]) arriving a1 started",
            "failedStale: held → held(-, 200, [\"failure timeout\"]) arriving a1 started",
            "clientClosed: cancel 7 → finished arriving a1 started",
        ],
        "responding": [
            "start: false → responding(7, stream) arriving a1 started",
            "acquired: release(9) → responding(7, stream) arriving a1 started",
            "requestPart: write(7) → responding(7, stream) arriving+ a1 started",
            "requestEnded: write(7) → responding(7, stream) complete a1 started",
            "head: ignore → responding(7, stream) arriving a1 started",
            "writeHead: ignore → responding(7, stream) arriving a1 started",
            "purgeEnded: nothing → responding(7, stream) arriving a1 started",
            "delivered: - → responding(7, stream) arriving a1 started",
            "responsePart: handle(stream) → responding(7, stream) arriving a1 started",
            "responseEnded: complete(stream, requestComplete: false, cancel: 7) → finished arriving a1 started",
            "failedRetryable: abort → finished arriving a1 started",
            "failedStale: abort → finished arriving a1 started",
            "clientClosed: cancel 7 → finished arriving a1 started",
        ],
        "finished": [
            "start: false → finished arriving a1",
            "acquired: release(9) → finished arriving a1",
            "requestPart: nothing → finished arriving+ a1",
            "requestEnded: nothing → finished complete a1",
            "head: ignore → finished arriving a1",
            "writeHead: ignore → finished arriving a1",
            "purgeEnded: nothing → finished arriving a1",
            "delivered: - → finished arriving a1",
            "responsePart: ignore → finished arriving a1",
            "responseEnded: ignore → finished arriving a1",
            "failedRetryable: ignore → finished arriving a1",
            "failedStale: ignore → finished arriving a1",
            "clientClosed: cancel - → finished arriving a1",
        ],
    ]

    @Test func everyEventInEveryState() {
        var mismatches: [String] = []
        for (stateName, make) in Self.states {
            var rows: [String] = []
            for (eventName, event) in Self.events {
                var machine = make()
                let answer = event(&machine)
                rows.append("\(eventName): \(answer) → \(Self.describe(machine))")
            }
            if Self.table[stateName] != rows {
                mismatches.append("\"\(stateName)\": [\n" + rows.map { "    \"\($0)\"," }.joined(separator: "\n") + "\n],")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    @Test func aRetryLosesNothingAndHappensOnce() {
        var machine = Machine(requestComplete: true)
        let started = machine.start()
        #expect(started)
        guard case .send(1, [], end: true) = machine.acquired(1) else { Issue.record("not sent"); return }
        // A keep-alive connection closed under the request: nothing reached the origin.
        let answer2 = machine.failed("reused connection closed", retryable: true, staleIfError: false)
        #expect(answer2 == .retry)
        guard case .send(2, [], end: true) = machine.acquired(2) else { Issue.record("not sent again"); return }
        // The second attempt's failure is answered, not retried again.
        let answer3 = machine.failed("reset", retryable: true, staleIfError: false)
        #expect(answer3 == .answerError(requestComplete: true))
        #expect(machine.attempts == 2)
        #expect(machine.isFinished)
    }

    @Test func aBodyThatWentOutForbidsTheRetry() {
        var machine = Machine(requestComplete: false)
        _ = machine.start()
        // Parts that arrive before the connection are kept, and sent on it in order.
        let answer4 = Self.describe(machine.requestPart("a"))
        #expect(answer4 == "nothing")
        let answer5 = Self.describe(machine.requestPart("b"))
        #expect(answer5 == "nothing")
        guard case .send(1, ["a", "b"], end: false) = machine.acquired(1) else { Issue.record("body not sent"); return }
        let answer6 = Self.describe(machine.requestEnded())
        #expect(answer6 == "write(1)")
        let answer7 = machine.failed("reset", retryable: true, staleIfError: true)
        #expect(answer7 == .answerStale(requestComplete: true))
    }

    @Test func aHeldWriteReplaysInOrderAndAFailureAmongItAborts() {
        var machine = Machine(requestComplete: true)
        _ = machine.start()
        _ = machine.acquired(1)
        guard case .purgeThenDeliver = machine.responseHead("204", purgeFirst: true) else { Issue.record("not held"); return }
        #expect(machine.isHeld)
        guard case .held = machine.responsePart("x") else { Issue.record("part not held"); return }
        let answer8 = machine.failed("reset", retryable: true, staleIfError: false)
        #expect(answer8 == .held)
        guard case .deliver("204", let parts) = machine.purgeEnded() else { Issue.record("not released"); return }
        #expect(parts.map(Self.describe) == ["body x", "failure reset"])
        #expect(!machine.isHeld)
        // Replayed as the events they were: the part goes out, the failure closes.
        machine.delivered("stream")
        guard case .handle("stream") = machine.responsePart("x") else { Issue.record("part not handled"); return }
        let answer9 = machine.failed("reset", retryable: true, staleIfError: false)
        #expect(answer9 == .abort)
        // A second release finds nothing held.
        guard case .nothing = machine.purgeEnded() else { Issue.record("released twice"); return }
    }

    @Test func anAnswerBeforeTheBodyEndsSpoilsTheConnection() {
        var machine = Machine(requestComplete: false)
        _ = machine.start()
        _ = machine.acquired(3)
        _ = machine.requestPart("half")
        _ = machine.responseHead("413", purgeFirst: false)
        machine.delivered("stream")
        guard case .complete("stream", requestComplete: false, cancel: 3) = machine.responseEnded() else {
            Issue.record("the connection was not cancelled")
            return
        }
        // What the client sends after is dropped.
        let answer10 = Self.describe(machine.requestPart("rest"))
        #expect(answer10 == "nothing")
    }

    @Test func aConnectionThatArrivesAfterTheClientLeftGoesBack() {
        var machine = Machine(requestComplete: true)
        _ = machine.start()
        let answer11 = machine.clientClosed()
        #expect(answer11 == nil)
        guard case .release(4) = machine.acquired(4) else { Issue.record("not released"); return }
        let answer12 = machine.failed("refused", retryable: true, staleIfError: false)
        #expect(answer12 == .ignore)
    }
}

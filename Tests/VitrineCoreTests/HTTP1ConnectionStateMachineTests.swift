import Testing
import VitrineCore

/// The HTTP/1.1 connection's own concerns alone: which client timer runs, what its firing
/// means, and whether the connection outlives an answer. Times are nanoseconds on a made-up clock.
@Suite struct HTTP1ConnectionStateMachineTests {
    static let second: UInt64 = 1_000_000_000
    static let timeouts = HTTP1ConnectionStateMachine.Timeouts(keepalive: 60 * second, header: 10 * second, body: 30 * second, linger: 5 * second)

    func fresh() -> HTTP1ConnectionStateMachine {
        HTTP1ConnectionStateMachine(timeouts: Self.timeouts, now: 0)
    }

    @Test func eachWaitArmsItsOwnTimer() {
        var connection = fresh()
        let answer1 = connection.wait(for: .idle, bodyProgress: false, newHead: false, now: 0)
        #expect(answer1 == .arm(.idle, nanoseconds: 60 * Self.second))
        let answer2 = connection.wait(for: .head, bodyProgress: false, newHead: false, now: 1)
        #expect(answer2 == .arm(.head, nanoseconds: 10 * Self.second))
        // The head's timer runs from its first byte: more bytes of it do not restart it.
        let answer3 = connection.wait(for: .head, bodyProgress: false, newHead: false, now: 2)
        #expect(answer3 == .keep)
        let answer4 = connection.wait(for: .body, bodyProgress: true, newHead: true, now: 3)
        #expect(answer4 == .arm(.body, nanoseconds: 30 * Self.second))
        // A body's runs from its last byte.
        let answer5 = connection.wait(for: .body, bodyProgress: true, newHead: false, now: 4)
        #expect(answer5 == .arm(.body, nanoseconds: 30 * Self.second))
        let answer6 = connection.wait(for: .body, bodyProgress: false, newHead: false, now: 5)
        #expect(answer6 == .keep)
        let answer7 = connection.wait(for: .nothing, bodyProgress: false, newHead: false, now: 6)
        #expect(answer7 == .cancel)
        #expect(connection.waiting == .nothing)
    }

    @Test func aNewHeadRestartsTheTimerOfTheNextHeadsFirstBytes() {
        var connection = fresh()
        _ = connection.wait(for: .head, bodyProgress: false, newHead: false, now: 0)
        // A whole request came, and the first bytes of another: that one's timer starts now.
        let answer8 = connection.wait(for: .head, bodyProgress: false, newHead: true, now: 7)
        #expect(answer8 == .arm(.head, nanoseconds: 10 * Self.second))
    }

    @Test func theIdleTimerOutlivesARequestAnsweredLaterAndMeasuresFromTheLastActivity() {
        var connection = fresh()
        let answer9 = connection.wait(for: .idle, bodyProgress: false, newHead: false, now: 0)
        #expect(answer9 == .arm(.idle, nanoseconds: 60 * Self.second))
        // A request answered from L2: waiting on nothing, then idle again, without a new timer.
        connection.requestsArrived(now: 20 * Self.second)
        let answer10 = connection.wait(for: .nothing, bodyProgress: false, newHead: true, now: 20 * Self.second)
        #expect(answer10 == .keep)
        let answer11 = connection.wait(for: .idle, bodyProgress: false, newHead: false, now: 25 * Self.second)
        #expect(answer11 == .keep)
        #expect(connection.lastActivity == 25 * Self.second)
        // The timer fires at 60 s: idle only for 35 s, so it is armed again for the rest.
        let answer12 = connection.timerFired(.idle, closing: false, now: 60 * Self.second)
        #expect(answer12 == .rearm(.idle, nanoseconds: 25 * Self.second))
        // And then the connection has been idle for the whole keep-alive time.
        let answer13 = connection.timerFired(.idle, closing: false, now: 85 * Self.second)
        #expect(answer13 == .closeIdle)
    }

    @Test func aTimerForAWaitThatIsOverIsIgnored() {
        var connection = fresh()
        _ = connection.wait(for: .body, bodyProgress: true, newHead: true, now: 0)
        _ = connection.wait(for: .nothing, bodyProgress: false, newHead: false, now: 1)
        let answer14 = connection.timerFired(.body, closing: false, now: 30 * Self.second)
        #expect(answer14 == .ignore)
        _ = connection.wait(for: .head, bodyProgress: false, newHead: false, now: 2)
        let answer15 = connection.timerFired(.head, closing: true, now: 30 * Self.second)
        #expect(answer15 == .ignore, "closing already")
    }

    @Test func aFiredTimerSaysWhatTheWaitMeant() {
        var head = fresh()
        _ = head.wait(for: .head, bodyProgress: false, newHead: false, now: 0)
        let answer16 = head.timerFired(.head, closing: false, now: 10 * Self.second)
        #expect(answer16 == .answerHeadTimeout)
        var body = fresh()
        _ = body.wait(for: .body, bodyProgress: true, newHead: true, now: 0)
        let answer17 = body.timerFired(.body, closing: false, now: 30 * Self.second)
        #expect(answer17 == .breakBody)
        #expect(body.waiting == .nothing)
    }

    @Test func aCloseDelimitedAnswerOrADrainEndsTheConnection() {
        var connection = fresh()
        let answer18 = connection.answered(keepAlive: true)
        #expect(answer18)
        let answer19 = connection.answered(keepAlive: false)
        #expect(!answer19)
        connection.closeAfterAnswer()
        let answer20 = connection.answered(keepAlive: true)
        #expect(!answer20)
        let answer21 = connection.answered(keepAlive: true)
        #expect(answer21, "only that answer was close-delimited")
        let answer22 = connection.quiesce(idle: false)
        #expect(!answer22)
        let answer23 = connection.answered(keepAlive: true)
        #expect(!answer23)
        var idle = fresh()
        let answer24 = idle.quiesce(idle: true)
        #expect(answer24, "an idle connection closes at once")
    }

    @Test func onlyAClientsErrorLingers() {
        let connection = fresh()
        #expect(connection.lingers(afterErrorStatus: 400))
        #expect(connection.lingers(afterErrorStatus: 413))
        #expect(!connection.lingers(afterErrorStatus: 502))
        let noLinger = HTTP1ConnectionStateMachine(
            timeouts: .init(keepalive: Self.second, header: Self.second, body: Self.second, linger: 0), now: 0)
        #expect(!noLinger.lingers(afterErrorStatus: 400))
        #expect(!noLinger.mayLinger)
    }
}

import Testing
import VitrineCore

/// An HTTP/2 connection's idle time and graceful shutdown alone, on a made-up clock.
@Suite struct HTTP2LifecycleStateMachineTests {
    static let second: UInt64 = 1_000_000_000

    func fresh() -> HTTP2LifecycleStateMachine {
        HTTP2LifecycleStateMachine(idleTimeout: 60 * Self.second, pingData: 42, now: 0)
    }

    @Test func theIdleTimerMeasuresFromTheLastMomentNoStreamWasOpen() {
        var connection = fresh()
        connection.streamOpened(id: 1)
        // Busy when the timer fires: armed again for a whole idle time.
        let busy = connection.idleTimerFired(now: 60 * Self.second)
        #expect(busy == .rearm(nanoseconds: 60 * Self.second))
        let closeNow = connection.streamClosed(now: 70 * Self.second)
        #expect(!closeNow)
        // Idle since 70 s: at 120 s, 10 s are left.
        let early = connection.idleTimerFired(now: 120 * Self.second)
        #expect(early == .rearm(nanoseconds: 10 * Self.second))
        let idle = connection.idleTimerFired(now: 130 * Self.second)
        #expect(idle == .goAway)
    }

    @Test func aConnectionThatNeverOpensAStreamIsIdleFromItsStart() {
        var connection = fresh()
        let idle = connection.idleTimerFired(now: 60 * Self.second)
        #expect(idle == .goAway)
    }

    @Test func goingAwayWaitsForThePingAckThenForTheOpenStreams() {
        var connection = fresh()
        connection.streamOpened(id: 1)
        connection.streamOpened(id: 7)
        let first = connection.goAway()
        #expect(first == .sendGoAwayAndPing(pingData: 42))
        let again = connection.goAway()
        #expect(again == .nothing, "once")
        let otherPing = connection.pingAcknowledged(data: 41)
        #expect(otherPing == .nothing, "a client's own PING's ACK is not ours")
        // A stream the client opened before it saw the GOAWAY still counts.
        connection.streamOpened(id: 9)
        let ack = connection.pingAcknowledged(data: 42)
        #expect(ack == .sendGoAway(lastStreamID: 9, close: false))
        #expect(connection.state == .draining)
        let first1 = connection.streamClosed(now: 1)
        let first2 = connection.streamClosed(now: 2)
        let last = connection.streamClosed(now: 3)
        #expect(!first1 && !first2 && last, "closes when the last open stream ends")
        let timer = connection.idleTimerFired(now: 100 * Self.second)
        #expect(timer == .nothing)
    }

    @Test func withNoStreamOpenTheAckClosesAtOnce() {
        var connection = fresh()
        _ = connection.goAway()
        let ack = connection.pingAcknowledged(data: 42)
        #expect(ack == .sendGoAway(lastStreamID: 0, close: true))
        #expect(connection.state == .closed)
    }
}

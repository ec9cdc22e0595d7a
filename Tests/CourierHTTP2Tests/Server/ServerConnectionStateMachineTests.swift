import Testing

@testable import CourierHTTP2

private typealias Machine = ServerConnectionStateMachine
private typealias State = ServerConnectionStateMachine.State

/// The server connection's lifecycle as a value: every event from every state, the action it returns and
/// the state it leaves. Instants are made once from `ContinuousClock.now` and advanced: no clock runs.
@Suite("Server connection state machine")
struct ServerConnectionStateMachineTests {
    static let allStates: [ServerConnectionStateMachine.State] = [.handshaking, .active, .draining, .closing, .closed]
    static let servingStates: [ServerConnectionStateMachine.State] = [.handshaking, .active, .draining]
    static let finishedStates: [ServerConnectionStateMachine.State] = [.closing, .closed]
    let t0 = ContinuousClock.now

    @Test("A new connection is handshaking, serves, and has no streams")
    func initial() {
        let machine = Machine.make()
        #expect(machine.state == .handshaking)
        #expect(machine.isServing)
        #expect(machine.openStreams == 0)
        #expect(machine.highestStreamID == 0)
    }

    @Test("isServing in every state", arguments: allStates)
    func isServing(state: ServerConnectionStateMachine.State) {
        #expect(Machine.driven(to: state).isServing == Self.servingStates.contains(state))
    }

    // MARK: The handshake

    @Test("start arms the handshake timer at now + the timeout", arguments: [Duration.seconds(10), .milliseconds(1)])
    func start(timeout: Duration) {
        var machine = Machine.make(handshakeTimeout: timeout)
        #expect(machine.start(now: t0) == [.armTimer(.handshake, at: t0.advanced(by: timeout))])
        #expect(machine.state == .handshaking)
    }

    @Test("The client's SETTINGS while handshaking: active; the handshake timer is cancelled")
    func settings() {
        var machine = Machine.make()
        _ = machine.start(now: t0)
        #expect(machine.receivedSettings() == .cancelTimer(.handshake))
        #expect(machine.state == .active)
    }

    @Test("SETTINGS in any other state is ignored", arguments: [State.active, .draining, .closing, .closed])
    func settingsIgnored(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.receivedSettings() == .none)
        #expect(machine.state == state)
    }

    @Test("The handshake timer while handshaking: closed, with the reason")
    func handshakeTimeout() {
        var machine = Machine.make()
        _ = machine.start(now: t0)
        #expect(
            machine.timerFired(.handshake, now: t0) == [
                .close(reason: "no HTTP/2 preface and SETTINGS within the handshake timeout")
            ]
        )
        #expect(machine.state == .closed)
        #expect(!machine.isServing)
    }

    @Test(
        "The handshake timer in any other state is ignored (a late firing)",
        arguments: [State.active, .draining, .closing, .closed]
    )
    func handshakeTimerIgnored(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.timerFired(.handshake, now: t0) == [])
        #expect(machine.state == state)
    }

    // MARK: Stream IDs

    @Test("HEADERS opening a higher stream ID: fine; it becomes the highest", arguments: servingStates)
    func newStreamID(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        let before = machine.highestStreamID
        #expect(machine.headersBegin(streamID: before + 2, streamIsOpen: false) == .none)
        #expect(machine.highestStreamID == before + 2)
        #expect(machine.state == state)
    }

    @Test("HEADERS on a stream nghttp2 still knows (trailers) at or below the highest ID: fine")
    func trailersOnOpenStream() {
        var machine = Machine.driven(to: .active, streams: 3)  // 1, 3, 5
        #expect(machine.headersBegin(streamID: 3, streamIsOpen: true) == .none)
        #expect(machine.headersBegin(streamID: 5, streamIsOpen: true) == .none)
        #expect(machine.highestStreamID == 5)
        #expect(machine.state == .active)
    }

    @Test(
        "HEADERS reusing a stream ID at or below the highest (closed, or never opened): GOAWAY(PROTOCOL_ERROR) naming the highest",
        arguments: [(State.active, Int32(5)), (.active, 3), (.active, 1), (.draining, 5), (.draining, 2)]
    )
    func streamIDReuse(state: ServerConnectionStateMachine.State, streamID: Int32) {
        var machine = Machine.driven(to: state, streams: 3)
        #expect(
            machine.headersBegin(streamID: streamID, streamIsOpen: false)
                == .terminate(lastStreamID: 5, code: .protocolError, debugData: "")
        )
        #expect(machine.state == .closing)
        #expect(!machine.isServing)
        #expect(machine.streamOpened() == false)
    }

    @Test("HEADERS on stream 0 is ignored (nghttp2 deals with it)")
    func streamZero() {
        var machine = Machine.driven(to: .active, streams: 1)
        #expect(machine.headersBegin(streamID: 0, streamIsOpen: false) == .none)
        #expect(machine.highestStreamID == 1)
        #expect(machine.state == .active)
    }

    @Test("HEADERS once nothing is served are ignored, and no ID is recorded", arguments: finishedStates)
    func headersWhenFinished(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.headersBegin(streamID: 99, streamIsOpen: false) == .none)
        #expect(machine.headersBegin(streamID: 1, streamIsOpen: false) == .none)
        #expect(machine.highestStreamID == 1)
        #expect(machine.state == state)
    }

    // MARK: Streams

    @Test("A request head while serving is counted", arguments: servingStates)
    func streamOpened(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        let before = machine.openStreams
        #expect(machine.streamOpened() == true)
        #expect(machine.openStreams == before + 1)
        #expect(machine.state == state)
    }

    @Test("A request head once nothing is served is refused and not counted", arguments: finishedStates)
    func streamOpenedWhenFinished(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        let before = machine.openStreams
        #expect(machine.streamOpened() == false)
        #expect(machine.openStreams == before)
    }

    @Test("A stream closes while active: counted down, nothing to do")
    func streamClosedActive() {
        var machine = Machine.driven(to: .active, streams: 2)
        #expect(machine.streamClosed(now: t0) == .none)
        #expect(machine.openStreams == 1)
        #expect(machine.streamClosed(now: t0) == .none)
        #expect(machine.openStreams == 0)
        #expect(machine.state == .active)
    }

    @Test("While draining, the last stream to close makes the connection close once flushed")
    func streamClosedDraining() {
        var machine = Machine.driven(to: .draining, streams: 2)
        #expect(machine.streamClosed(now: t0) == .none)
        #expect(machine.state == .draining)
        #expect(machine.streamClosed(now: t0) == .closeWhenFlushed)
        #expect(machine.openStreams == 0)
        #expect(machine.state == .closing)
        #expect(machine.outputFlushed(sessionFinished: false) == .closeAfterDrainingInput(reason: "closing"))
        #expect(machine.state == .closed)
    }

    @Test(
        "A stream that closes while closing or closed is counted down; nothing more happens",
        arguments: finishedStates
    )
    func streamClosedWhenFinished(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state, streams: 2)
        #expect(machine.streamClosed(now: t0) == .none)
        #expect(machine.openStreams == 1)
        #expect(machine.state == state)
    }

    // MARK: Rapid Reset

    @Test("Resets up to the limit within a second are fine; one more is an attack: GOAWAY(ENHANCE_YOUR_CALM)")
    func rapidReset() {
        var machine = Machine.driven(to: .active, streams: 4)  // highest: 7
        for index in 0..<3 {
            #expect(machine.receivedReset(now: t0.advanced(by: .milliseconds(100 * index))) == .none)
        }
        #expect(machine.state == .active)
        #expect(
            machine.receivedReset(now: t0.advanced(by: .milliseconds(999)))
                == .terminate(lastStreamID: 7, code: .enhanceYourCalm, debugData: "")
        )
        #expect(machine.state == .closing)
        #expect(!machine.isServing)
        // Once terminated, more resets change nothing.
        #expect(machine.receivedReset(now: t0.advanced(by: .milliseconds(999))) == .none)
        #expect(machine.state == .closing)
    }

    @Test("The window is one second from its first reset: at 1 s a new window starts")
    func rapidResetWindow() {
        var machine = Machine.driven(to: .active)
        for index in 0..<3 {
            #expect(machine.receivedReset(now: t0.advanced(by: .milliseconds(10 * index))) == .none)
        }
        // A new window at t0 + 1 s: three more are fine...
        for index in 0..<3 {
            #expect(machine.receivedReset(now: t0.advanced(by: .seconds(1) + .milliseconds(10 * index))) == .none)
        }
        #expect(machine.state == .active)
        // ... and the fourth in that window is not.
        #expect(
            machine.receivedReset(now: t0.advanced(by: .milliseconds(1999)))
                == .terminate(lastStreamID: 1, code: .enhanceYourCalm, debugData: "")
        )
    }

    @Test("Resets spread out never add up")
    func resetsSpreadOut() {
        var machine = Machine.driven(to: .active)
        for second in 0..<20 {
            #expect(machine.receivedReset(now: t0.advanced(by: .seconds(second))) == .none)
            #expect(machine.receivedReset(now: t0.advanced(by: .seconds(second) + .milliseconds(500))) == .none)
        }
        #expect(machine.state == .active)
    }

    @Test("A limit of zero: the first reset is an attack")
    func zeroLimit() {
        var machine = Machine.driven(to: .active, maxStreamResetsPerSecond: 0)
        #expect(machine.receivedReset(now: t0) == .terminate(lastStreamID: 1, code: .enhanceYourCalm, debugData: ""))
        #expect(machine.state == .closing)
    }

    @Test("Resets count while handshaking and draining too", arguments: [State.handshaking, .draining])
    func rapidResetWhileServing(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state, maxStreamResetsPerSecond: 1)
        #expect(machine.receivedReset(now: t0) == .none)
        #expect(
            machine.receivedReset(now: t0)
                == .terminate(lastStreamID: machine.highestStreamID, code: .enhanceYourCalm, debugData: "")
        )
        #expect(machine.state == .closing)
    }

    @Test("Resets once nothing is served are ignored", arguments: finishedStates)
    func resetsWhenFinished(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state, maxStreamResetsPerSecond: 0)
        #expect(machine.receivedReset(now: t0) == .none)
        #expect(machine.state == state)
    }

    // MARK: Graceful shutdown

    /// The first phase of a drain at `now`.
    fileprivate func firstPhase(_ now: ContinuousClock.Instant, timeout: Duration = .seconds(60)) -> [Machine.Action] {
        [
            .cancelTimer(.idle), .goAway(lastStreamID: Int32.max, thenClose: false), .ping(Machine.goAwayPing),
            .armTimer(.goAwayPing, at: now.advanced(by: timeout)),
        ]
    }

    @Test(
        "Graceful shutdown with no open stream: GOAWAY(2^31-1) and a PING; on the ACK the final GOAWAY, then close",
        arguments: [State.handshaking, .active]
    )
    func gracefulIdle(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state, streams: 0)
        #expect(machine.beginGracefulShutdown(now: t0) == firstPhase(t0))
        #expect(machine.state == .draining)
        #expect(machine.drainPhase == .awaitingPingAck)
        #expect(machine.isServing)
        #expect(
            machine.receivedPingAck(payload: Machine.goAwayPing) == [
                .cancelTimer(.goAwayPing), .goAway(lastStreamID: 0, thenClose: true),
            ]
        )
        #expect(machine.state == .closing)
        #expect(!machine.isServing)
        #expect(machine.outputFlushed(sessionFinished: false) == .closeAfterDrainingInput(reason: "closing"))
        #expect(machine.state == .closed)
    }

    @Test("Graceful shutdown with open streams: the final GOAWAY names the last stream; draining serves them")
    func gracefulWithStreams() {
        var machine = Machine.driven(to: .active, streams: 2)
        #expect(machine.beginGracefulShutdown(now: t0) == firstPhase(t0))
        #expect(machine.state == .draining)
        #expect(
            machine.receivedPingAck(payload: Machine.goAwayPing) == [
                .cancelTimer(.goAwayPing), .goAway(lastStreamID: 3, thenClose: false),
            ]
        )
        #expect(machine.state == .draining)
        #expect(machine.drainPhase == .final)
        #expect(machine.isServing)
        #expect(machine.outputFlushed(sessionFinished: false) == .none)
        #expect(machine.state == .draining)
    }

    @Test(
        "Graceful shutdown a second time, or once closing or closed, is ignored",
        arguments: [State.draining, .closing, .closed]
    )
    func gracefulIgnored(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.beginGracefulShutdown(now: t0) == [])
        #expect(machine.state == state)
    }

    // MARK: Failures and the end

    @Test("A protocol violation found by nghttp2 while serving: close once its GOAWAY is out", arguments: servingStates)
    func protocolViolation(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.receivedProtocolViolation() == .closeWhenFlushed)
        #expect(machine.state == .closing)
        #expect(machine.closingAfterError)
        #expect(
            machine.outputFlushed(sessionFinished: true)
                == .closeAfterDrainingInput(reason: "closing after a connection error")
        )
        #expect(machine.state == .closed)
    }

    @Test("A protocol violation once closing or closed is ignored", arguments: finishedStates)
    func protocolViolationIgnored(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.receivedProtocolViolation() == .none)
        #expect(machine.state == state)
    }

    @Test("Output flushed while serving: nothing, unless nghttp2's session is finished", arguments: servingStates)
    func outputFlushedServing(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.outputFlushed(sessionFinished: false) == .none)
        #expect(machine.state == state)
        #expect(machine.outputFlushed(sessionFinished: true) == .close(reason: "session finished"))
        #expect(machine.state == .closed)
    }

    @Test(
        "Output flushed while closing after a connection error: close once the peer's input is drained",
        arguments: [false, true]
    )
    func outputFlushedClosing(sessionFinished: Bool) {
        var machine = Machine.driven(to: .closing)  // by a protocol violation
        #expect(
            machine.outputFlushed(sessionFinished: sessionFinished)
                == .closeAfterDrainingInput(reason: "closing after a connection error")
        )
        #expect(machine.state == .closed)
    }

    @Test("A Rapid Reset's GOAWAY: the close drains the peer's input, so that a reset doesn't discard the GOAWAY")
    func rapidResetClosesAfterDrain() {
        var machine = Machine.driven(to: .active, maxStreamResetsPerSecond: 0)
        let action = machine.receivedReset(now: t0)
        guard case .terminate(_, .enhanceYourCalm, _) = action else {
            Issue.record("expected a terminate, got \(action)")
            return
        }
        #expect(
            machine.outputFlushed(sessionFinished: false)
                == .closeAfterDrainingInput(reason: "closing after a connection error")
        )
    }

    @Test("Output flushed once closed is ignored", arguments: [false, true])
    func outputFlushedClosed(sessionFinished: Bool) {
        var machine = Machine.driven(to: .closed)
        #expect(machine.outputFlushed(sessionFinished: sessionFinished) == .none)
        #expect(machine.state == .closed)
    }

    @Test(
        "The transport fails in any state but closed: close now, with the reason",
        arguments: [State.handshaking, .active, .draining, .closing]
    )
    func transportFailed(state: ServerConnectionStateMachine.State) {
        var machine = Machine.driven(to: state)
        #expect(machine.transportFailed(reason: "peer closed") == .close(reason: "peer closed"))
        #expect(machine.state == .closed)
        #expect(!machine.isServing)
    }

    @Test("The transport fails once closed: ignored")
    func transportFailedClosed() {
        var machine = Machine.driven(to: .closed)
        #expect(machine.transportFailed(reason: "again") == .none)
        #expect(machine.state == .closed)
    }

    @Test("A whole life: handshake, streams, graceful shutdown, drained, flushed, closed")
    func lifecycle() {
        var machine = Machine.make(handshakeTimeout: .seconds(5))
        #expect(machine.start(now: t0) == [.armTimer(.handshake, at: t0.advanced(by: .seconds(5)))])
        #expect(machine.receivedSettings() == .cancelTimer(.handshake))
        #expect(machine.timerFired(.handshake, now: t0) == [])  // cancelled too late: ignored
        #expect(machine.headersBegin(streamID: 1, streamIsOpen: false) == .none)
        #expect(machine.streamOpened() == true)
        #expect(machine.headersBegin(streamID: 3, streamIsOpen: false) == .none)
        #expect(machine.streamOpened() == true)
        #expect(machine.headersBegin(streamID: 1, streamIsOpen: true) == .none)  // trailers on 1
        #expect(machine.streamClosed(now: t0) == .none)
        #expect(machine.beginGracefulShutdown(now: t0) == firstPhase(t0))
        #expect(machine.headersBegin(streamID: 5, streamIsOpen: false) == .none)  // raced the first GOAWAY: served
        #expect(machine.streamOpened() == true)
        #expect(
            machine.receivedPingAck(payload: Machine.goAwayPing) == [
                .cancelTimer(.goAwayPing), .goAway(lastStreamID: 5, thenClose: false),
            ]
        )
        #expect(machine.streamClosed(now: t0) == .none)
        #expect(machine.streamClosed(now: t0) == .closeWhenFlushed)
        #expect(machine.state == .closing)
        #expect(machine.outputFlushed(sessionFinished: true) == .closeAfterDrainingInput(reason: "closing"))
        #expect(machine.state == .closed)
        #expect(machine.transportFailed(reason: "peer closed") == .none)
    }
}

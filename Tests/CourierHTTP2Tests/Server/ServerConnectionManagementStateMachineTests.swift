import Testing

@testable import CourierHTTP2

private typealias Machine = ServerConnectionStateMachine

/// Keepalive, the ping policy, idle and age limits and the two-phase GOAWAY, as transitions of the server
/// connection's machine. Instants are made once and advanced: no clock runs.
@Suite("Server connection state machine: connection management")
struct ServerConnectionManagementStateMachineTests {
    let t0 = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0.advanced(by: .milliseconds(milliseconds)) }

    fileprivate func active(streams: Int = 0, _ configure: (inout Machine.Configuration) -> Void) -> Machine {
        var machine = Machine.make(configure)
        _ = machine.start(now: t0)
        _ = machine.receivedSettings()
        for index in 0..<streams {
            _ = machine.headersBegin(streamID: Int32(2 * index + 1), streamIsOpen: false)
            _ = machine.streamOpened()
        }
        return machine
    }

    // MARK: start

    @Test("start arms every configured timer; age is spread by ±10 % jitter")
    func startArmsTimers() {
        var machine = Machine.make { configuration in
            configuration.keepaliveTime = .seconds(7200)
            configuration.maxConnectionIdle = .seconds(60)
            configuration.maxConnectionAge = .seconds(100)
        }
        #expect(
            machine.start(now: t0, ageJitter: 1) == [
                .armTimer(.handshake, at: t0.advanced(by: .seconds(10))),
                .armTimer(.keepalive, at: t0.advanced(by: .seconds(7200))),
                .armTimer(.idle, at: t0.advanced(by: .seconds(60))),
                .armTimer(.age, at: t0.advanced(by: .seconds(110))),
            ]
        )
        var early = Machine.make { $0.maxConnectionAge = .seconds(100) }
        #expect(early.start(now: t0, ageJitter: -1).last == .armTimer(.age, at: t0.advanced(by: .seconds(90))))
        var clamped = Machine.make { $0.maxConnectionAge = .seconds(100) }
        #expect(clamped.start(now: t0, ageJitter: 7).last == .armTimer(.age, at: t0.advanced(by: .seconds(110))))
    }

    @Test("Without keepalive, idle or age limits only the handshake timer is armed")
    func startWithoutLimits() {
        var machine = Machine.make { _ in }
        #expect(machine.start(now: t0) == [.armTimer(.handshake, at: t0.advanced(by: .seconds(10)))])
    }

    // MARK: Keepalive

    @Test("Keepalive timer after activity: re-armed, no PING")
    func keepaliveAfterActivity() {
        var machine = active { $0.keepaliveTime = .milliseconds(100) }
        machine.frameReceived()
        #expect(machine.timerFired(.keepalive, now: at(100)) == [.armTimer(.keepalive, at: at(200))])
        #expect(!machine.activity)
        #expect(!machine.keepalivePingOutstanding)
    }

    @Test("Keepalive timer after silence: PING, and the timeout armed")
    func keepalivePings() {
        var machine = active {
            $0.keepaliveTime = .milliseconds(100)
            $0.keepaliveTimeout = .milliseconds(30)
        }
        #expect(
            machine.timerFired(.keepalive, now: at(100)) == [
                .ping(Machine.keepalivePing), .armTimer(.keepalive, at: at(130)),
            ]
        )
        #expect(machine.keepalivePingOutstanding)
    }

    @Test("The ACK in time: activity; the next firing re-arms for the keepalive time")
    func keepaliveAcked() {
        var machine = active {
            $0.keepaliveTime = .milliseconds(100)
            $0.keepaliveTimeout = .milliseconds(30)
        }
        _ = machine.timerFired(.keepalive, now: at(100))
        machine.frameReceived()  // the ACK is a frame
        #expect(machine.receivedPingAck(payload: Machine.keepalivePing) == [])
        #expect(!machine.keepalivePingOutstanding)
        #expect(machine.timerFired(.keepalive, now: at(130)) == [.armTimer(.keepalive, at: at(230))])
        #expect(machine.state == .active)
    }

    @Test("No ACK (no frame at all) within the timeout: the connection is closed")
    func keepaliveTimeout() {
        var machine = active {
            $0.keepaliveTime = .milliseconds(100)
            $0.keepaliveTimeout = .milliseconds(30)
        }
        _ = machine.timerFired(.keepalive, now: at(100))
        #expect(
            machine.timerFired(.keepalive, now: at(130)) == [
                .abort(reason: "keepalive: no PING ACK within 0.03 seconds")
            ]
        )
        #expect(machine.state == .closed)
    }

    @Test("A keepalive timer once nothing is served is ignored", arguments: [Machine.State.closing, .closed])
    func keepaliveWhenFinished(state: ServerConnectionStateMachine.State) {
        var machine = active { $0.keepaliveTime = .milliseconds(100) }
        if state == .closing {
            _ = machine.receivedProtocolViolation()
        } else {
            _ = machine.transportFailed(reason: "x")
        }
        #expect(machine.timerFired(.keepalive, now: at(100)) == [])
        #expect(machine.state == state)
    }

    // MARK: The ping policy

    @Test("The first PING is never a strike; PINGs sooner than the minimum interval are")
    func strikes() {
        var machine = active(streams: 1) { $0.minPingInterval = .seconds(300) }
        #expect(machine.receivedPing(now: at(0)) == .none)
        #expect(machine.pingStrikes == 0)
        #expect(machine.receivedPing(now: at(10)) == .none)
        #expect(machine.pingStrikes == 1)
        #expect(machine.receivedPing(now: at(20)) == .none)
        #expect(machine.pingStrikes == 2)
        #expect(
            machine.receivedPing(now: at(30))
                == .terminate(lastStreamID: 1, code: .enhanceYourCalm, debugData: "too_many_pings")
        )
        #expect(machine.state == .closing)
        #expect(machine.receivedPing(now: at(40)) == .none)  // ignored once closing
    }

    @Test("PINGs at the allowed interval are no strikes")
    func pingsAtInterval() {
        var machine = active(streams: 1) { $0.minPingInterval = .seconds(1) }
        for second in 0..<10 { #expect(machine.receivedPing(now: t0.advanced(by: .seconds(second))) == .none) }
        #expect(machine.pingStrikes == 0)
        #expect(machine.state == .active)
    }

    @Test("Without streams and without permission, a PING sooner than two hours is a strike")
    func strikesWithoutStreams() {
        var machine = active { $0.minPingInterval = .seconds(1) }
        _ = machine.receivedPing(now: t0)
        _ = machine.receivedPing(now: t0.advanced(by: .seconds(60)))
        #expect(machine.pingStrikes == 1)
        var permitted = active {
            $0.minPingInterval = .seconds(1)
            $0.permitPingsWithoutStreams = true
        }
        _ = permitted.receivedPing(now: t0)
        _ = permitted.receivedPing(now: t0.advanced(by: .seconds(60)))
        #expect(permitted.pingStrikes == 0)
        var twoHours = active { $0.minPingInterval = .seconds(1) }
        _ = twoHours.receivedPing(now: t0)
        _ = twoHours.receivedPing(now: t0.advanced(by: .seconds(7200)))
        #expect(twoHours.pingStrikes == 0)
    }

    @Test("HEADERS or DATA sent forgive the strikes: the next PING resets them")
    func forgiven() {
        var machine = active(streams: 1) { $0.minPingInterval = .seconds(300) }
        _ = machine.receivedPing(now: at(0))
        _ = machine.receivedPing(now: at(1))
        _ = machine.receivedPing(now: at(2))
        #expect(machine.pingStrikes == 2)
        machine.headersOrDataSent()
        #expect(machine.receivedPing(now: at(3)) == .none)
        #expect(machine.pingStrikes == 0)
        #expect(machine.receivedPing(now: at(4)) == .none)
        #expect(machine.pingStrikes == 1)
    }

    @Test("A limit of zero strikes: the first early PING ends the connection")
    func zeroStrikes() {
        var machine = active(streams: 1) { $0.maxPingStrikes = 0 }
        _ = machine.receivedPing(now: at(0))
        #expect(
            machine.receivedPing(now: at(1))
                == .terminate(lastStreamID: 1, code: .enhanceYourCalm, debugData: "too_many_pings")
        )
    }

    @Test("ACKs of the server's own PINGs are no strikes")
    func acksAreNoStrikes() {
        var machine = active(streams: 1) { _ in }
        for index in 0..<10 { #expect(machine.receivedPingAck(payload: UInt64(index)) == []) }
        #expect(machine.pingStrikes == 0)
    }

    // MARK: Max connection idle

    @Test("Idle since the start: at the idle time the drain begins (two-phase GOAWAY)")
    func idleDrains() {
        var machine = active { $0.maxConnectionIdle = .milliseconds(100) }
        let actions = machine.timerFired(.idle, now: at(100))
        #expect(
            actions == [
                .cancelTimer(.idle), .goAway(lastStreamID: Int32.max, thenClose: false), .ping(Machine.goAwayPing),
                .armTimer(.goAwayPing, at: at(60_100)),
            ]
        )
        #expect(machine.state == .draining)
        #expect(machine.drainPhase == .awaitingPingAck)
    }

    @Test("Busy when the idle timer fires: looked at again later; idle is counted from the last stream's end")
    func idleWhileBusy() {
        var machine = active(streams: 1) { $0.maxConnectionIdle = .milliseconds(100) }
        #expect(machine.timerFired(.idle, now: at(100)) == [.armTimer(.idle, at: at(200))])
        #expect(machine.streamClosed(now: at(150)) == .none)
        #expect(machine.timerFired(.idle, now: at(200)) == [.armTimer(.idle, at: at(250))])
        #expect(machine.state == .active)
        #expect(machine.timerFired(.idle, now: at(250)).contains(.goAway(lastStreamID: Int32.max, thenClose: false)))
    }

    @Test("A stream opening after the connection went idle resets idleness")
    func idleReset() {
        var machine = active { $0.maxConnectionIdle = .milliseconds(100) }
        _ = machine.headersBegin(streamID: 1, streamIsOpen: false)
        _ = machine.streamOpened()
        #expect(machine.timerFired(.idle, now: at(100)) == [.armTimer(.idle, at: at(200))])
    }

    // MARK: Max connection age

    @Test("Age: the drain begins, and the grace timer is armed")
    func age() {
        var machine = active(streams: 1) {
            $0.maxConnectionAge = .milliseconds(100)
            $0.maxConnectionAgeGrace = .milliseconds(50)
        }
        let actions = machine.timerFired(.age, now: at(100))
        #expect(actions.contains(.goAway(lastStreamID: Int32.max, thenClose: false)))
        #expect(actions.last == .armTimer(.ageGrace, at: at(150)))
        #expect(machine.state == .draining)
        #expect(
            machine.timerFired(.ageGrace, now: at(150)) == [
                .close(reason: "max connection age: the grace period has passed")
            ]
        )
        #expect(machine.state == .closed)
    }

    @Test("Age without a grace: the drain waits for the streams, however long")
    func ageWithoutGrace() {
        var machine = active(streams: 1) { $0.maxConnectionAge = .milliseconds(100) }
        let actions = machine.timerFired(.age, now: at(100))
        #expect(!actions.contains { if case .armTimer(.ageGrace, _) = $0 { true } else { false } })
        _ = machine.receivedPingAck(payload: Machine.goAwayPing)
        #expect(machine.state == .draining)
        #expect(machine.streamClosed(now: at(500)) == .closeWhenFlushed)
    }

    // MARK: The two-phase GOAWAY

    @Test("The first GOAWAY's PING not acknowledged: the final GOAWAY at its timeout")
    func goAwayPingTimeout() {
        var machine = active(streams: 2) { $0.goAwayPingTimeout = .milliseconds(20) }
        #expect(machine.beginGracefulShutdown(now: t0).last == .armTimer(.goAwayPing, at: at(20)))
        #expect(
            machine.timerFired(.goAwayPing, now: at(20)) == [
                .cancelTimer(.goAwayPing), .goAway(lastStreamID: 3, thenClose: false),
            ]
        )
        #expect(machine.drainPhase == .final)
        // The ACK arriving late changes nothing more.
        #expect(machine.receivedPingAck(payload: Machine.goAwayPing) == [])
    }

    @Test("Streams that arrive between the two GOAWAYs are served and named by the final one")
    func racingStreams() {
        var machine = active(streams: 1) { _ in }
        _ = machine.beginGracefulShutdown(now: t0)
        #expect(machine.headersBegin(streamID: 3, streamIsOpen: false) == .none)
        #expect(machine.streamOpened() == true)
        #expect(
            machine.receivedPingAck(payload: Machine.goAwayPing) == [
                .cancelTimer(.goAwayPing), .goAway(lastStreamID: 3, thenClose: false),
            ]
        )
        #expect(machine.streamClosed(now: at(1)) == .none)
        #expect(machine.streamClosed(now: at(2)) == .closeWhenFlushed)
        #expect(machine.state == .closing)
    }

    @Test("While the first GOAWAY awaits its ACK, the last stream closing doesn't close the connection")
    func noCloseBeforeFinalGoAway() {
        var machine = active(streams: 1) { _ in }
        _ = machine.beginGracefulShutdown(now: t0)
        #expect(machine.streamClosed(now: at(1)) == .none)
        #expect(machine.state == .draining)
        #expect(
            machine.receivedPingAck(payload: Machine.goAwayPing) == [
                .cancelTimer(.goAwayPing), .goAway(lastStreamID: 1, thenClose: true),
            ]
        )
        #expect(machine.state == .closing)
    }

    @Test("A drain that begins twice (idle, then shutdown) sends its GOAWAYs once")
    func drainOnce() {
        var machine = active { $0.maxConnectionIdle = .milliseconds(100) }
        #expect(!machine.timerFired(.idle, now: at(100)).isEmpty)
        #expect(machine.beginGracefulShutdown(now: at(101)) == [])
        #expect(machine.timerFired(.age, now: at(102)) == [])
    }
}

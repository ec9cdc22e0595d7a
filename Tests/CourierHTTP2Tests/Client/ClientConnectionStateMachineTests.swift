import Courier
import Testing

@testable import CourierHTTP2

private typealias Machine = ClientConnectionStateMachine
private typealias Stage = ClientConnectionStateMachine.Stage

private let closedByOwner = RPCError(code: .unavailable, message: "The connection was closed.")

/// The client connection's lifecycle as a value: every event from every state, the action it returns
/// and the state it leaves, across every address a name resolved to.
@Suite("Client connection state machine")
struct ClientConnectionStateMachineTests {
    @Test("A new connection is idle at its first address, usable, not closed")
    func initial() {
        let machine = Machine(addresses: threeAddresses)
        #expect(machine.state == .idle)
        #expect(machine.addressIndex == 0)
        #expect(machine.address == threeAddresses[0])
        #expect(machine.isUsable)
        #expect(!machine.isClosed)
    }

    @Test(
        "isUsable and isClosed in every state",
        arguments: [
            (Stage.idle, true, false), (.connecting, true, false), (.handshaking, true, false), (.ready, true, false),
            (.goingAway, false, false), (.closed, false, true),
        ]
    )
    func usable(stage: ClientConnectionStateMachine.Stage, usable: Bool, closed: Bool) {
        let machine = Machine.driven(to: stage)
        #expect(machine.isUsable == usable)
        #expect(machine.isClosed == closed)
    }

    // MARK: Connecting

    @Test("start from idle: connect to the first address")
    func start() {
        var machine = Machine(addresses: threeAddresses)
        #expect(machine.start(now: t0) == [.connect(addressIndex: 0)])
        #expect(machine.state == .connecting(addressIndex: 0))
        #expect(machine.addressIndex == 0)
    }

    @Test(
        "start in any other state is ignored",
        arguments: [Stage.connecting, .handshaking, .ready, .goingAway, .closed]
    )
    func startIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let state = machine.state
        #expect(machine.start(now: t0) == [])
        #expect(machine.state == state)
    }

    @Test("The connect succeeds: handshaking; start the session", arguments: [0, 1, 2])
    func connected(failuresFirst: Int) {
        var machine = Machine(addresses: threeAddresses)
        _ = machine.start(now: t0)
        for index in 0..<failuresFirst {
            #expect(
                machine.connectCompleted(errno: 111, description: "refused", now: t0) == [
                    .connect(addressIndex: index + 1)
                ]
            )
        }
        #expect(machine.connectCompleted(errno: 0, description: "", now: t0) == [.startSession])
        #expect(machine.state == .handshaking)
        #expect(machine.addressIndex == failuresFirst)
        #expect(machine.address == threeAddresses[failuresFirst])
    }

    @Test("A failed connect tries every address in turn, then fails naming the last with UNAVAILABLE")
    func everyAddress() {
        var machine = Machine(addresses: threeAddresses)
        _ = machine.start(now: t0)
        #expect(
            machine.connectCompleted(errno: 111, description: "Connection refused", now: t0) == [
                .connect(addressIndex: 1)
            ]
        )
        #expect(machine.state == .connecting(addressIndex: 1))
        #expect(machine.address == threeAddresses[1])
        #expect(
            machine.connectCompleted(errno: 113, description: "No route to host", now: t0) == [
                .connect(addressIndex: 2)
            ]
        )
        #expect(machine.state == .connecting(addressIndex: 2))
        #expect(machine.address == threeAddresses[2])
        let error = RPCError(code: .unavailable, message: "Could not connect to ipv6:[::1]:443: Connection refused.")
        #expect(
            machine.connectCompleted(errno: 111, description: "Connection refused", now: t0) == [.connectFailed(error)]
        )
        #expect(machine.state == .closed(error))
        #expect(machine.isClosed)
        #expect(machine.streamRequested() == .fail(error))
    }

    @Test("A single address that fails: closed at once")
    func singleAddress() {
        var machine = Machine(addresses: [.unix(path: "/tmp/s.sock")])
        _ = machine.start(now: t0)
        let error = RPCError(code: .unavailable, message: "Could not connect to unix:/tmp/s.sock: No such file.")
        #expect(machine.connectCompleted(errno: 2, description: "No such file", now: t0) == [.connectFailed(error)])
        #expect(machine.state == .closed(error))
    }

    @Test(
        "A connect completion in any other state is ignored",
        arguments: [Stage.idle, .handshaking, .ready, .goingAway, .closed]
    )
    func connectCompletedIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let state = machine.state
        #expect(machine.connectCompleted(errno: 0, description: "", now: t0) == [])
        #expect(machine.connectCompleted(errno: 111, description: "refused", now: t0) == [])
        #expect(machine.state == state)
    }

    @Test("The server's SETTINGS while handshaking: ready; open the waiting streams")
    func settings() {
        var machine = Machine.driven(to: .handshaking)
        #expect(machine.receivedSettings(now: t0) == [.openWaitingStreams])
        #expect(machine.state == .ready)
    }

    @Test("SETTINGS in any other state is ignored", arguments: [Stage.idle, .connecting, .ready, .goingAway, .closed])
    func settingsIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let state = machine.state
        #expect(machine.receivedSettings(now: t0) == [])
        #expect(machine.state == state)
    }

    // MARK: Streams

    @Test(
        "Stream decisions: open when ready, wait before, reroute while going away, fail once closed",
        arguments: [
            (Stage.idle, Machine.StreamDecision.wait), (.connecting, .wait), (.handshaking, .wait), (.ready, .open),
            (.goingAway, .reroute), (.closed, .fail(closedByOwner)),
        ]
    )
    func streamDecision(
        stage: ClientConnectionStateMachine.Stage,
        decision: ClientConnectionStateMachine.StreamDecision
    ) {
        let machine = Machine.driven(to: stage)
        #expect(machine.streamRequested() == decision)
    }

    @Test("A connection closed cleanly (drained after GOAWAY) fails new streams with UNAVAILABLE")
    func streamAfterCleanClose() {
        var machine = Machine.driven(to: .goingAway)
        #expect(machine.streamsDrained() == [.close(failing: closedByOwner)])
        #expect(machine.state == .closed(nil))
        #expect(machine.streamRequested() == .fail(RPCError(code: .unavailable, message: "The connection is closed.")))
    }

    // MARK: GOAWAY

    @Test(
        "GOAWAY while connecting, handshaking or ready: going away, naming the last stream",
        arguments: [Stage.connecting, .handshaking, .ready]
    )
    func goAway(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        #expect(machine.receivedGoAway(lastStreamID: 7) == [.goingAway(lastStreamID: 7)])
        #expect(machine.state == .goingAway(lastStreamID: 7))
        #expect(!machine.isUsable)
        #expect(machine.streamRequested() == .reroute)
    }

    @Test("A second, lower GOAWAY lowers the last stream (grpc-go sends two)", arguments: [Int32(0), 3, 4])
    func secondLowerGoAway(lastStreamID: Int32) {
        var machine = Machine.driven(to: .goingAway)  // last stream 5
        #expect(machine.receivedGoAway(lastStreamID: lastStreamID) == [.goingAway(lastStreamID: lastStreamID)])
        #expect(machine.state == .goingAway(lastStreamID: lastStreamID))
    }

    @Test("A later GOAWAY that is not lower is ignored", arguments: [Int32(5), 6, .max])
    func laterGoAwayNotLower(lastStreamID: Int32) {
        var machine = Machine.driven(to: .goingAway)
        #expect(machine.receivedGoAway(lastStreamID: lastStreamID) == [])
        #expect(machine.state == .goingAway(lastStreamID: 5))
    }

    @Test("The first GOAWAY at 2^31-1 then the real one (grpc-go's graceful pattern)")
    func doubleGoAway() {
        var machine = Machine.driven(to: .ready)
        #expect(machine.receivedGoAway(lastStreamID: .max) == [.goingAway(lastStreamID: .max)])
        #expect(machine.receivedGoAway(lastStreamID: 9) == [.goingAway(lastStreamID: 9)])
        #expect(machine.state == .goingAway(lastStreamID: 9))
        #expect(machine.streamsDrained() == [.close(failing: closedByOwner)])
    }

    @Test("GOAWAY while idle or closed is ignored", arguments: [Stage.idle, .closed])
    func goAwayIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let state = machine.state
        #expect(machine.receivedGoAway(lastStreamID: 1) == [])
        #expect(machine.state == state)
    }

    @Test("Drained while going away: closed cleanly")
    func drained() {
        var machine = Machine.driven(to: .goingAway)
        #expect(machine.streamsDrained() == [.close(failing: closedByOwner)])
        #expect(machine.state == .closed(nil))
        #expect(machine.isClosed)
    }

    @Test("Drained in any other state is ignored", arguments: [Stage.idle, .connecting, .handshaking, .ready, .closed])
    func drainedIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let state = machine.state
        #expect(machine.streamsDrained() == [])
        #expect(machine.state == state)
    }

    // MARK: Failures

    @Test(
        "TLS fails before ready: connecting failed with UNAVAILABLE naming the address",
        arguments: [Stage.connecting, .handshaking]
    )
    func tlsBeforeReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let error = RPCError(
            code: .unavailable,
            message: "TLS with ipv4:10.0.0.1:443 failed: certificate verify failed."
        )
        #expect(machine.tlsFailed("certificate verify failed") == [.connectFailed(error)])
        #expect(machine.state == .closed(error))
    }

    @Test("TLS fails once ready or going away: the connection is lost", arguments: [Stage.ready, .goingAway])
    func tlsAfterReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let error = RPCError(code: .unavailable, message: "The connection was lost: TLS failed: bad record mac.")
        #expect(machine.tlsFailed("bad record mac") == [.lost(error)])
        #expect(machine.state == .closed(error))
    }

    @Test(
        "The transport fails before ready: connecting failed with UNAVAILABLE naming the address",
        arguments: [Stage.connecting, .handshaking]
    )
    func transportBeforeReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let error = RPCError(
            code: .unavailable,
            message: "The connection to ipv4:10.0.0.1:443 failed before it was ready: reset by peer."
        )
        #expect(machine.transportFailed("reset by peer") == [.connectFailed(error)])
        #expect(machine.state == .closed(error))
    }

    @Test("The transport fails before ready at a later address: the error names that address")
    func transportBeforeReadyLaterAddress() {
        var machine = Machine(addresses: threeAddresses)
        _ = machine.start(now: t0)
        _ = machine.connectCompleted(errno: 111, description: "refused", now: t0)
        _ = machine.connectCompleted(errno: 0, description: "", now: t0)
        let error = RPCError(
            code: .unavailable,
            message: "The connection to ipv4:10.0.0.2:443 failed before it was ready: EOF."
        )
        #expect(machine.transportFailed("EOF") == [.connectFailed(error)])
    }

    @Test(
        "The transport fails once ready or going away: lost; every stream fails with UNAVAILABLE",
        arguments: [Stage.ready, .goingAway]
    )
    func transportAfterReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let error = RPCError(code: .unavailable, message: "The connection was lost: the server closed the connection.")
        #expect(machine.transportFailed("the server closed the connection") == [.lost(error)])
        #expect(machine.state == .closed(error))
        #expect(machine.streamRequested() == .fail(error))
    }

    @Test("A protocol violation is a transport failure", arguments: [(Stage.handshaking, true), (.ready, false)])
    func protocolViolation(stage: ClientConnectionStateMachine.Stage, beforeReady: Bool) {
        var machine = Machine.driven(to: stage)
        let reason = "the server's bytes are not HTTP/2 (the session ended)"
        let expected: Machine.Action =
            beforeReady
            ? .connectFailed(
                RPCError(
                    code: .unavailable,
                    message: "The connection to ipv4:10.0.0.1:443 failed before it was ready: \(reason)."
                )
            )
            : .lost(RPCError(code: .unavailable, message: "The connection was lost: \(reason)."))
        #expect(machine.protocolViolation(reason) == [expected])
        #expect(machine.isClosed)
    }

    @Test("Failures while idle or closed are ignored", arguments: [Stage.idle, .closed])
    func failuresIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let state = machine.state
        #expect(machine.tlsFailed("x") == [])
        #expect(machine.transportFailed("x") == [])
        #expect(machine.protocolViolation("x") == [])
        #expect(machine.state == state)
    }

    // MARK: Closing by the owner

    @Test(
        "close in any state but closed: a clean close; streams fail with UNAVAILABLE 'closed'",
        arguments: [Stage.idle, .connecting, .handshaking, .ready, .goingAway]
    )
    func close(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        #expect(machine.close() == [.close(failing: closedByOwner)])
        #expect(machine.state == .closed(closedByOwner))
        #expect(machine.streamRequested() == .fail(closedByOwner))
    }

    @Test("close once closed is ignored, however it closed")
    func closeIgnored() {
        var owner = Machine.driven(to: .closed)
        #expect(owner.close() == [])

        var drained = Machine.driven(to: .goingAway)
        _ = drained.streamsDrained()
        #expect(drained.close() == [])
        #expect(drained.state == .closed(nil))
    }

    @Test("Nothing moves a closed connection", arguments: [false, true])
    func closedIsFinal(afterFailure: Bool) {
        var machine = Machine.driven(to: afterFailure ? .handshaking : .goingAway)
        if afterFailure { _ = machine.transportFailed("x") } else { _ = machine.streamsDrained() }
        let state = machine.state
        #expect(machine.start(now: t0) == [])
        #expect(machine.connectCompleted(errno: 0, description: "", now: t0) == [])
        #expect(machine.receivedSettings(now: t0) == [])
        #expect(machine.receivedGoAway(lastStreamID: 1) == [])
        #expect(machine.streamsDrained() == [])
        #expect(machine.state == state)
    }
    // MARK: Connect timeout

    @Test("start arms the connect timer for the first address")
    func startArmsConnectTimer() {
        var machine = Machine(addresses: threeAddresses, configuration: .connectTimeoutOnly)
        #expect(machine.start(now: t0) == [.connect(addressIndex: 0), .armTimer(.connect, at: t0 + .seconds(20))])
    }

    @Test("A refused connect moves on with a fresh connect timer for the next address")
    func refusedRearms() {
        var machine = Machine.driven(to: .connecting, configuration: .connectTimeoutOnly)
        let t1 = t0 + .seconds(3)
        #expect(
            machine.connectCompleted(errno: 111, description: "refused", now: t1)
                == [.connect(addressIndex: 1), .armTimer(.connect, at: t1 + .seconds(20))]
        )
    }

    @Test("The TCP connect succeeds: the connect timer keeps running (it covers TLS and SETTINGS)")
    func connectedKeepsTimer() {
        var machine = Machine.driven(to: .connecting, configuration: .connectTimeoutOnly)
        #expect(machine.connectCompleted(errno: 0, description: "", now: t0 + .seconds(1)) == [.startSession])
    }

    @Test("The connect timer fires while connecting: abandon that connect, try the next address with its own timer")
    func connectTimeoutNextAddress() {
        var machine = Machine.driven(to: .connecting, configuration: .connectTimeoutOnly)
        let t1 = t0 + .seconds(20)
        #expect(
            machine.timerFired(.connect, now: t1, observed: .init()) == [
                .notify(.connectTimedOut), .abandonConnect(nextAddressIndex: 1),
                .armTimer(.connect, at: t1 + .seconds(20)),
            ]
        )
        #expect(machine.state == .connecting(addressIndex: 1))
        #expect(machine.address == threeAddresses[1])
        #expect(machine.isUsable)
        // The next address connects, and the rest goes on from there.
        #expect(machine.connectCompleted(errno: 0, description: "", now: t1 + .seconds(1)) == [.startSession])
        #expect(machine.receivedSettings(now: t1 + .seconds(2)) == [.cancelTimer(.connect), .openWaitingStreams])
    }

    @Test("The connect timer fires at the last address: the attempt fails with UNAVAILABLE naming the timeout")
    func connectTimeoutLastAddress() {
        var machine = Machine.driven(
            to: .connecting,
            addresses: [.ipv4(host: "10.9.9.9", port: 50051)],
            configuration: .connectTimeoutOnly
        )
        let error = RPCError(
            code: .unavailable,
            message: "Could not connect to ipv4:10.9.9.9:50051 within the connect timeout (20 s)."
        )
        #expect(
            machine.timerFired(.connect, now: t0 + .seconds(20), observed: .init()) == [
                .notify(.connectTimedOut), .connectFailed(error),
            ]
        )
        #expect(machine.state == .closed(error))
        #expect(machine.streamRequested() == .fail(error))
    }

    @Test("The connect timer fires while handshaking (TCP up, no TLS or SETTINGS yet): the attempt fails")
    func connectTimeoutHandshaking() {
        var machine = Machine.driven(to: .handshaking, configuration: .connectTimeoutOnly)
        let error = RPCError(
            code: .unavailable,
            message: "The connection to ipv4:10.0.0.1:443 was not ready within the connect timeout (20 s): "
                + "TCP connected, but TLS or the server's SETTINGS did not complete."
        )
        #expect(
            machine.timerFired(.connect, now: t0 + .seconds(20), observed: .init()) == [
                .notify(.connectTimedOut), .connectFailed(error),
            ]
        )
        #expect(machine.state == .closed(error))
    }

    @Test("A timeout below a second is named in milliseconds")
    func connectTimeoutMilliseconds() {
        var machine = Machine.driven(
            to: .handshaking,
            addresses: [.unix(path: "/tmp/x")],
            configuration: .init(connectTimeout: .milliseconds(250), keepalive: nil, idleTimeout: nil)
        )
        let actions = machine.timerFired(.connect, now: t0 + .milliseconds(250), observed: .init())
        guard case .connectFailed(let error)? = actions.last else {
            Issue.record("\(actions)")
            return
        }
        #expect(error.message.contains("within the connect timeout (250 ms)"))
    }

    @Test("The server's SETTINGS cancel the connect timer")
    func settingsCancelConnectTimer() {
        var machine = Machine.driven(to: .handshaking, configuration: .connectTimeoutOnly)
        #expect(machine.receivedSettings(now: t0) == [.cancelTimer(.connect), .openWaitingStreams])
    }

    @Test(
        "The connect timer firing once ready, going away, closed or idle does nothing",
        arguments: [Stage.idle, .ready, .goingAway, .closed]
    )
    func connectTimerIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage, configuration: .connectTimeoutOnly)
        let state = machine.state
        #expect(machine.timerFired(.connect, now: t0 + .seconds(20), observed: .init()) == [])
        #expect(machine.state == state)
    }

    @Test("Without a connect timeout no connect timer is armed, cancelled or obeyed")
    func noConnectTimeout() {
        var machine = Machine(addresses: threeAddresses)
        #expect(machine.start(now: t0) == [.connect(addressIndex: 0)])
        #expect(machine.timerFired(.connect, now: t0 + .seconds(3600), observed: .init()) == [])
        #expect(machine.state == .connecting(addressIndex: 0))
    }

    @Test("GOAWAY before ready cancels the connect timer", arguments: [Stage.connecting, .handshaking])
    func goAwayCancelsConnectTimer(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage, configuration: .connectTimeoutOnly)
        #expect(machine.receivedGoAway(lastStreamID: 0) == [.cancelTimer(.connect), .goingAway(lastStreamID: 0)])
    }

    // MARK: Keepalive

    @Test("Ready with keepalive (and every timer): cancel connect, arm keepalive and idle, open the waiting streams")
    func readyArmsTimers() {
        var machine = Machine.driven(to: .handshaking, configuration: .allTimers)
        let t1 = t0 + .seconds(1)
        #expect(
            machine.receivedSettings(now: t1) == [
                .cancelTimer(.connect), .armTimer(.keepalive, at: t1 + .seconds(10)),
                .armTimer(.idle, at: t1 + .seconds(1800)),
                .openWaitingStreams,
            ]
        )
        #expect(machine.keepalive == .waiting)
    }

    @Test("Keepalive is off until ready", arguments: [Stage.idle, .connecting, .handshaking])
    func keepaliveOffBeforeReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage, configuration: .keepaliveOnly())
        #expect(machine.keepalive == .off)
        #expect(machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 1)) == [])
    }

    @Test("The keepalive time passes with bytes received: no PING; armed again for the time", arguments: [0, 3])
    func keepaliveActivity(streams: Int) {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        let t1 = t0 + .seconds(10)
        #expect(
            machine.timerFired(
                .keepalive,
                now: t1,
                observed: .init(receivedSinceKeepaliveArmed: true, streams: streams)
            )
                == [.armTimer(.keepalive, at: t1 + .seconds(10))]
        )
        #expect(machine.keepalive == .waiting)
    }

    @Test("With bytes received part-way, the next keepalive time runs from the last bytes, not from now")
    func keepaliveFromLastReceived() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        let t1 = t0 + .seconds(10)
        let last = t0 + .seconds(3)
        #expect(
            machine.timerFired(
                .keepalive,
                now: t1,
                observed: .init(receivedSinceKeepaliveArmed: true, lastReceived: last, streams: 1)
            ) == [.armTimer(.keepalive, at: last + .seconds(10))]
        )
        // The ACK of a PING: the same rule.
        _ = machine.timerFired(.keepalive, now: t0 + .seconds(13), observed: .init(streams: 1))
        #expect(machine.keepalive == .pingOutstanding)
        let ack = t0 + .seconds(14)
        #expect(
            machine.timerFired(
                .keepalive,
                now: t0 + .seconds(15),
                observed: .init(receivedSinceKeepaliveArmed: true, lastReceived: ack, streams: 1)
            ) == [.armTimer(.keepalive, at: ack + .seconds(10))]
        )
        #expect(machine.keepalive == .waiting)
    }

    @Test("The keepalive time passes without bytes while streams are open: PING; armed for the timeout")
    func keepalivePing() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        let t1 = t0 + .seconds(10)
        #expect(
            machine.timerFired(.keepalive, now: t1, observed: .init(streams: 1)) == [
                .sendPing, .armTimer(.keepalive, at: t1 + .seconds(2)),
            ]
        )
        #expect(machine.keepalive == .pingOutstanding)
    }

    @Test("Bytes arrive within the timeout (the ACK, or anything): alive; armed for the time again")
    func keepaliveAcked() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        _ = machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 1))
        let t2 = t0 + .seconds(12)
        #expect(
            machine.timerFired(.keepalive, now: t2, observed: .init(receivedSinceKeepaliveArmed: true, streams: 1))
                == [.armTimer(.keepalive, at: t2 + .seconds(10))]
        )
        #expect(machine.keepalive == .waiting)
        #expect(machine.state == .ready)
    }

    @Test("The PING's ACK: waiting again, armed for the time from the ACK (not after the whole timeout)")
    func keepaliveAckEvent() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        let t1 = t0 + .seconds(10)
        _ = machine.timerFired(.keepalive, now: t1, observed: .init(streams: 1))
        let ack = t1 + .milliseconds(40)
        #expect(machine.receivedPingAck(now: ack) == [.armTimer(.keepalive, at: ack + .seconds(10))])
        #expect(machine.keepalive == .waiting)
        // A second ACK (or one of a PING that wasn't keepalive's) changes nothing.
        #expect(machine.receivedPingAck(now: ack) == [])
    }

    @Test("A PING ACK when no PING is out changes nothing", arguments: [Stage.handshaking, .ready, .closed])
    func pingAckIgnored(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage, configuration: .keepaliveOnly())
        #expect(machine.receivedPingAck(now: t0) == [])
        var off = Machine.driven(to: stage)
        #expect(off.receivedPingAck(now: t0) == [])
    }

    @Test(
        "Nothing arrives within the timeout: the connection is dead; every RPC on it fails with UNAVAILABLE",
        arguments: [0, 2]
    )
    func keepaliveTimedOut(streams: Int) {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        _ = machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 1))
        let error = RPCError(
            code: .unavailable,
            message: "The connection was lost: no keepalive PING ACK (nor any other frame) arrived within 2 s."
        )
        #expect(
            machine.timerFired(.keepalive, now: t0 + .seconds(12), observed: .init(streams: streams))
                == [.notify(.keepaliveTimedOut), .lost(error)]
        )
        #expect(machine.state == .closed(error))
        #expect(machine.keepalive == .off)
        #expect(!machine.isUsable)
        #expect(machine.streamRequested() == .fail(error))
    }

    @Test("No bytes and no streams, pings without calls not permitted: dormant, no PING, no timer")
    func keepaliveDormant() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        #expect(
            machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 0)) == [
                .notify(.keepaliveDormant)
            ]
        )
        #expect(machine.keepalive == .dormant)
        #expect(machine.keepaliveIsDormant)
        // A stale timer firing while dormant does nothing.
        #expect(machine.timerFired(.keepalive, now: t0 + .seconds(20), observed: .init(streams: 0)) == [])
    }

    @Test("No bytes and no streams, pings without calls permitted: PING")
    func keepaliveWithoutCalls() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly(permitWithoutCalls: true))
        let t1 = t0 + .seconds(10)
        #expect(
            machine.timerFired(.keepalive, now: t1, observed: .init(streams: 0)) == [
                .sendPing, .armTimer(.keepalive, at: t1 + .seconds(2)),
            ]
        )
        #expect(machine.keepalive == .pingOutstanding)
    }

    @Test("A stream opens while dormant: PING at once (before its HEADERS), armed for the timeout (gRFC A8)")
    func keepaliveWakes() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        #expect(
            machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 0)) == [
                .notify(.keepaliveDormant)
            ]
        )
        let t1 = t0 + .seconds(300)
        #expect(machine.streamOpened(now: t1) == [.sendPing, .armTimer(.keepalive, at: t1 + .seconds(2))])
        #expect(machine.keepalive == .pingOutstanding)
        // A second stream right after: the PING is already out.
        #expect(machine.streamOpened(now: t1) == [])
        // Its ACK: back to waiting.
        #expect(
            machine.timerFired(
                .keepalive,
                now: t1 + .seconds(2),
                observed: .init(receivedSinceKeepaliveArmed: true, streams: 2)
            )
                == [.armTimer(.keepalive, at: t1 + .seconds(12))]
        )
    }

    @Test(
        "A stream opening while keepalive is not dormant changes nothing",
        arguments: [Stage.idle, .handshaking, .ready, .closed]
    )
    func streamOpenedNotDormant(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage, configuration: .keepaliveOnly())
        #expect(machine.streamOpened(now: t0) == [])
    }

    @Test("Keepalive goes on while the connection drains after GOAWAY")
    func keepaliveWhileGoingAway() {
        var machine = Machine.driven(to: .goingAway, configuration: .keepaliveOnly())
        let t1 = t0 + .seconds(10)
        #expect(
            machine.timerFired(.keepalive, now: t1, observed: .init(streams: 1)) == [
                .sendPing, .armTimer(.keepalive, at: t1 + .seconds(2)),
            ]
        )
        let error = RPCError(
            code: .unavailable,
            message: "The connection was lost: no keepalive PING ACK (nor any other frame) arrived within 2 s."
        )
        #expect(
            machine.timerFired(.keepalive, now: t1 + .seconds(2), observed: .init(streams: 1)) == [
                .notify(.keepaliveTimedOut), .lost(error),
            ]
        )
    }

    @Test("Without keepalive: nothing armed at ready; a keepalive timer firing does nothing")
    func noKeepalive() {
        var machine = Machine.driven(to: .handshaking)
        #expect(machine.receivedSettings(now: t0) == [.openWaitingStreams])
        #expect(machine.keepalive == .off)
        #expect(machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 1)) == [])
        #expect(machine.state == .ready)
    }

    @Test("Keepalive stops when the connection closes, however it closes", arguments: [0, 1, 2])
    func keepaliveStopsOnClose(way: Int) {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        switch way {
        case 0: _ = machine.close()
        case 1: _ = machine.transportFailed("reset")
        default: _ = machine.tlsFailed("bad record")
        }
        #expect(machine.keepalive == .off)
        #expect(machine.timerFired(.keepalive, now: t0 + .seconds(10), observed: .init(streams: 1)) == [])
    }

    // MARK: too_many_pings

    @Test(
        "GOAWAY ENHANCE_YOUR_CALM too_many_pings: reported (the transport doubles its keepalive time), then going away"
    )
    func tooManyPings() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        #expect(
            machine.receivedGoAway(lastStreamID: 3, code: .enhanceYourCalm, debugData: "too_many_pings")
                == [.notify(.tooManyPings), .goingAway(lastStreamID: 3)]
        )
        #expect(machine.state == .goingAway(lastStreamID: 3))
    }

    @Test("too_many_pings is reported once per connection, whatever GOAWAYs follow")
    func tooManyPingsOnce() {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        _ = machine.receivedGoAway(lastStreamID: 3, code: .enhanceYourCalm, debugData: "too_many_pings")
        #expect(
            machine.receivedGoAway(lastStreamID: 1, code: .enhanceYourCalm, debugData: "too_many_pings") == [
                .goingAway(lastStreamID: 1)
            ]
        )
        #expect(machine.receivedGoAway(lastStreamID: 1, code: .enhanceYourCalm, debugData: "too_many_pings") == [])
    }

    @Test("too_many_pings after a graceful GOAWAY (not lower): reported, nothing else")
    func tooManyPingsAfterGoAway() {
        var machine = Machine.driven(to: .goingAway, configuration: .keepaliveOnly())  // last stream 5
        #expect(
            machine.receivedGoAway(lastStreamID: 5, code: .enhanceYourCalm, debugData: "too_many_pings") == [
                .notify(.tooManyPings)
            ]
        )
    }

    @Test(
        "Other GOAWAYs are not too_many_pings",
        arguments: [
            (HTTP2ErrorCode.enhanceYourCalm, ""), (.enhanceYourCalm, "too_many_pings!"), (.noError, "too_many_pings"),
            (.protocolError, "x"),
        ]
    )
    func notTooManyPings(code: HTTP2ErrorCode, debugData: String) {
        var machine = Machine.driven(to: .ready, configuration: .keepaliveOnly())
        #expect(
            machine.receivedGoAway(lastStreamID: 3, code: code, debugData: debugData) == [.goingAway(lastStreamID: 3)]
        )
    }

    @Test("too_many_pings on a closed connection is not reported")
    func tooManyPingsClosed() {
        var machine = Machine.driven(to: .closed, configuration: .keepaliveOnly())
        #expect(machine.receivedGoAway(lastStreamID: 3, code: .enhanceYourCalm, debugData: "too_many_pings") == [])
    }

    // MARK: Idle timeout

    @Test("Ready arms the idle timer")
    func readyArmsIdle() {
        var machine = Machine.driven(to: .handshaking, configuration: .idleOnly)
        #expect(machine.receivedSettings(now: t0) == [.armTimer(.idle, at: t0 + .seconds(1800)), .openWaitingStreams])
    }

    @Test(
        "The idle timer fires with streams open, or one opened since it was armed: armed again",
        arguments: [(1, false), (0, true), (2, true)]
    )
    func idleBusy(streams: Int, opened: Bool) {
        var machine = Machine.driven(to: .ready, configuration: .idleOnly)
        let t1 = t0 + .seconds(1800)
        #expect(
            machine.timerFired(.idle, now: t1, observed: .init(streamOpenedSinceIdleArmed: opened, streams: streams))
                == [.armTimer(.idle, at: t1 + .seconds(1800))]
        )
        #expect(machine.state == .ready)
    }

    @Test("The idle timer fires with no stream, none opened since: a clean close; the next RPC needs a new connection")
    func idleCloses() {
        var machine = Machine.driven(to: .ready, configuration: .idleOnly)
        // Received bytes (a server's PING, say) don't keep a connection from being idle.
        #expect(
            machine.timerFired(
                .idle,
                now: t0 + .seconds(1800),
                observed: .init(receivedSinceKeepaliveArmed: true, streams: 0)
            )
                == [.notify(.idle), .close(failing: closedByOwner)]
        )
        #expect(machine.state == .closed(nil))
        #expect(!machine.isUsable)
    }

    @Test("GOAWAY cancels the idle timer; an idle timer firing when not ready does nothing")
    func idleGoingAway() {
        var machine = Machine.driven(to: .ready, configuration: .idleOnly)
        #expect(machine.receivedGoAway(lastStreamID: 1) == [.cancelTimer(.idle), .goingAway(lastStreamID: 1)])
        #expect(machine.timerFired(.idle, now: t0 + .seconds(1800), observed: .init()) == [])
        #expect(machine.state == .goingAway(lastStreamID: 1))
        for stage in [Stage.idle, .connecting, .handshaking, .closed] {
            var other = Machine.driven(to: stage, configuration: .idleOnly)
            #expect(other.timerFired(.idle, now: t0 + .seconds(1800), observed: .init()) == [], "\(stage)")
        }
    }

    @Test("Without an idle timeout a connection is never closed for being unused")
    func noIdleTimeout() {
        var machine = Machine.driven(to: .ready)
        #expect(machine.timerFired(.idle, now: t0 + .seconds(86_400), observed: .init()) == [])
        #expect(machine.state == .ready)
    }

    // MARK: A whole life

    @Test("A connection's life with every timer: timeout at one address, keepalive cycles, dormancy, idle close")
    func wholeLife() {
        var machine = Machine(addresses: threeAddresses, configuration: .allTimers)
        #expect(machine.start(now: t0) == [.connect(addressIndex: 0), .armTimer(.connect, at: t0 + .seconds(20))])
        let t1 = t0 + .seconds(20)
        #expect(
            machine.timerFired(.connect, now: t1, observed: .init()) == [
                .notify(.connectTimedOut), .abandonConnect(nextAddressIndex: 1),
                .armTimer(.connect, at: t1 + .seconds(20)),
            ]
        )
        #expect(machine.connectCompleted(errno: 0, description: "", now: t1 + .milliseconds(5)) == [.startSession])
        let ready = t1 + .milliseconds(10)
        #expect(
            machine.receivedSettings(now: ready) == [
                .cancelTimer(.connect), .armTimer(.keepalive, at: ready + .seconds(10)),
                .armTimer(.idle, at: ready + .seconds(1800)),
                .openWaitingStreams,
            ]
        )
        // A long stream: pings, acked.
        var now = ready + .seconds(10)
        #expect(
            machine.timerFired(.keepalive, now: now, observed: .init(streams: 1)) == [
                .sendPing, .armTimer(.keepalive, at: now + .seconds(2)),
            ]
        )
        now = now + .seconds(2)
        #expect(
            machine.timerFired(.keepalive, now: now, observed: .init(receivedSinceKeepaliveArmed: true, streams: 1))
                == [.armTimer(.keepalive, at: now + .seconds(10))]
        )
        // The stream ends; the next check finds nothing: dormant.
        now = now + .seconds(10)
        #expect(machine.timerFired(.keepalive, now: now, observed: .init(streams: 0)) == [.notify(.keepaliveDormant)])
        #expect(machine.keepaliveIsDormant)
        // Nothing for the idle timeout, but a stream was opened (and closed) in it: armed again.
        now = ready + .seconds(1800)
        #expect(
            machine.timerFired(.idle, now: now, observed: .init(streamOpenedSinceIdleArmed: true)) == [
                .armTimer(.idle, at: now + .seconds(1800))
            ]
        )
        now = now + .seconds(1800)
        #expect(
            machine.timerFired(.idle, now: now, observed: .init()) == [.notify(.idle), .close(failing: closedByOwner)]
        )
        #expect(machine.isClosed)
        #expect(machine.keepalive == .off)
    }

    @Test("drain when ready: a local GOAWAY (no new streams; the idle timer stops), closed once drained")
    func drainReady() {
        var machine = ClientConnectionStateMachine.driven(to: .ready, configuration: .idleOnly)
        #expect(machine.drain() == [.cancelTimer(.idle), .goingAway(lastStreamID: .max)])
        #expect(!machine.isUsable)
        #expect(machine.streamRequested() == .reroute)
        #expect(machine.drain() == [])
        #expect(machine.streamsDrained() == [.close(failing: ClientConnectionStateMachine.closedError)])
    }

    @Test(
        "drain before ready closes at once; after closing it does nothing",
        arguments: [
            ClientConnectionStateMachine.Stage.idle, .connecting, .handshaking,
        ]
    )
    func drainNotReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = ClientConnectionStateMachine.driven(to: stage)
        #expect(machine.drain() == [.close(failing: ClientConnectionStateMachine.closedError)])
        #expect(machine.isClosed)
        #expect(machine.drain() == [])
    }

    @Test("drain while going away does nothing more")
    func drainGoingAway() {
        var machine = ClientConnectionStateMachine.driven(to: .goingAway)
        #expect(machine.drain() == [])
        #expect(machine.state == .goingAway(lastStreamID: 5))
    }
}

import Courier
@testable import CourierHTTP2
import Testing

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

    @Test("start in any other state is ignored", arguments: [Stage.connecting, .handshaking, .ready, .goingAway, .closed])
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
            #expect(machine.connectCompleted(errno: 111, description: "refused", now: t0) == [.connect(addressIndex: index + 1)])
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
        #expect(machine.connectCompleted(errno: 111, description: "Connection refused", now: t0) == [.connect(addressIndex: 1)])
        #expect(machine.state == .connecting(addressIndex: 1))
        #expect(machine.address == threeAddresses[1])
        #expect(machine.connectCompleted(errno: 113, description: "No route to host", now: t0) == [.connect(addressIndex: 2)])
        #expect(machine.state == .connecting(addressIndex: 2))
        #expect(machine.address == threeAddresses[2])
        let error = RPCError(code: .unavailable, message: "Could not connect to ipv6:[::1]:443: Connection refused.")
        #expect(machine.connectCompleted(errno: 111, description: "Connection refused", now: t0) == [.connectFailed(error)])
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

    @Test("A connect completion in any other state is ignored", arguments: [Stage.idle, .handshaking, .ready, .goingAway, .closed])
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
    func streamDecision(stage: ClientConnectionStateMachine.Stage, decision: ClientConnectionStateMachine.StreamDecision) {
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

    @Test("GOAWAY while connecting, handshaking or ready: going away, naming the last stream", arguments: [Stage.connecting, .handshaking, .ready])
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

    @Test("TLS fails before ready: connecting failed with UNAVAILABLE naming the address", arguments: [Stage.connecting, .handshaking])
    func tlsBeforeReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let error = RPCError(code: .unavailable, message: "TLS with ipv4:10.0.0.1:443 failed: certificate verify failed.")
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

    @Test("The transport fails before ready: connecting failed with UNAVAILABLE naming the address", arguments: [Stage.connecting, .handshaking])
    func transportBeforeReady(stage: ClientConnectionStateMachine.Stage) {
        var machine = Machine.driven(to: stage)
        let error = RPCError(code: .unavailable, message: "The connection to ipv4:10.0.0.1:443 failed before it was ready: reset by peer.")
        #expect(machine.transportFailed("reset by peer") == [.connectFailed(error)])
        #expect(machine.state == .closed(error))
    }

    @Test("The transport fails before ready at a later address: the error names that address")
    func transportBeforeReadyLaterAddress() {
        var machine = Machine(addresses: threeAddresses)
        _ = machine.start(now: t0)
        _ = machine.connectCompleted(errno: 111, description: "refused", now: t0)
        _ = machine.connectCompleted(errno: 0, description: "", now: t0)
        let error = RPCError(code: .unavailable, message: "The connection to ipv4:10.0.0.2:443 failed before it was ready: EOF.")
        #expect(machine.transportFailed("EOF") == [.connectFailed(error)])
    }

    @Test("The transport fails once ready or going away: lost; every stream fails with UNAVAILABLE", arguments: [Stage.ready, .goingAway])
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
        let expected: Machine.Action = beforeReady
            ? .connectFailed(RPCError(code: .unavailable, message: "The connection to ipv4:10.0.0.1:443 failed before it was ready: \(reason)."))
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

    @Test("close in any state but closed: a clean close; streams fail with UNAVAILABLE 'closed'", arguments: [Stage.idle, .connecting, .handshaking, .ready, .goingAway])
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
}

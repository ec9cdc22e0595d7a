import Courier
import Testing

@testable import CourierHTTP2

typealias LBMachine = LoadBalancerStateMachine

private func id(_ raw: Int) -> LBMachine.SubchannelID { .init(raw: raw) }

private let a = SocketAddress.ipv4(host: "10.0.0.1", port: 443)
private let b = SocketAddress.ipv4(host: "10.0.0.2", port: 443)
private let c = SocketAddress.ipv4(host: "10.0.0.3", port: 443)
private let d = SocketAddress.ipv6(host: "::1", port: 443)
/// No jitter: the delays are 1 s, 2 s, 4 s, 8 s, 8 s, ...
private let backoff = ConnectionBackoff(initial: .seconds(1), multiplier: 2, jitter: 0, maximum: .seconds(8))
private let refused = RPCError(code: .unavailable, message: "Could not connect: refused.")

@Suite("Load balancer state machine: pick_first")
struct PickFirstStateMachineTests {
    func machine(_ addresses: [SocketAddress] = [a, b]) -> LBMachine {
        var machine = LBMachine(policy: .pickFirst(), backoff: backoff)
        #expect(machine.addressesResolved(addresses) == [])
        return machine
    }

    @Test("Addresses alone connect nothing: the transport is idle until an RPC asks")
    func idleUntilAsked() {
        let machine = machine()
        #expect(machine.picker == .idle)
        #expect(machine.state == .idle)
        #expect(machine.order == [id(0)])
        #expect(machine.subchannels[id(0)]?.addresses == [a, b])
    }

    @Test("exitIdle connects one subchannel over the whole list; ready makes it the pick")
    func connectAndReady() {
        var machine = machine()
        #expect(
            machine.exitIdle() == [
                .connect(id(0), [a, b], backoffFloor: .seconds(1)), .updatePicker(.queue),
                .connectivityChanged(.connecting),
            ]
        )
        #expect(machine.exitIdle() == [])
        #expect(
            machine.subchannelReady(id(0), address: b) == [
                .updatePicker(.ready([id(0)])), .connectivityChanged(.ready),
            ]
        )
        #expect(machine.subchannels[id(0)]?.connectedAddress == b)
        #expect(machine.subchannelReady(id(0), address: b) == [])
    }

    @Test("A failed attempt: transient failure, backoff, re-resolution; the backoff grows, a success resets it")
    func failureAndBackoff() {
        var machine = machine()
        _ = machine.exitIdle()
        #expect(
            machine.subchannelConnectFailed(id(0), error: refused) == [
                .armBackoff(id(0), .seconds(1)), .requestResolution, .updatePicker(.fail(refused)),
                .connectivityChanged(.transientFailure),
            ]
        )
        #expect(machine.subchannels[id(0)]?.state == .transientFailure(refused))
        #expect(
            machine.backoffElapsed(id(0)) == [
                .connect(id(0), [a, b], backoffFloor: .seconds(2)), .updatePicker(.queue),
                .connectivityChanged(.connecting),
            ]
        )
        #expect(machine.subchannelConnectFailed(id(0), error: refused).first == .armBackoff(id(0), .seconds(2)))
        _ = machine.backoffElapsed(id(0))
        _ = machine.subchannelReady(id(0), address: a)
        _ = machine.subchannelDisconnected(id(0), .lost)
        #expect(machine.exitIdle().first == .connect(id(0), [a, b], backoffFloor: .seconds(1)))
    }

    @Test("A backoff timer that fires for a subchannel not in transient failure does nothing")
    func staleBackoff() {
        var machine = machine()
        #expect(machine.backoffElapsed(id(0)) == [])
        #expect(machine.backoffElapsed(id(7)) == [])
        #expect(machine.subchannelConnectFailed(id(0), error: refused) == [])
    }

    @Test("GOAWAY or a lost connection: idle again, re-resolution; the next RPC reconnects")
    func disconnected() {
        for reason in [LBMachine.Disconnect.goAway, .lost] {
            var machine = machine()
            _ = machine.exitIdle()
            _ = machine.subchannelReady(id(0), address: a)
            #expect(
                machine.subchannelDisconnected(id(0), reason) == [
                    .requestResolution, .updatePicker(.idle), .connectivityChanged(.idle),
                ]
            )
            #expect(machine.exitIdle().first == .connect(id(0), [a, b], backoffFloor: .seconds(1)))
        }
    }

    @Test("An idle timeout: idle again without re-resolution")
    func idleTimeout() {
        var machine = machine()
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        #expect(machine.subchannelDisconnected(id(0), .idle) == [.updatePicker(.idle), .connectivityChanged(.idle)])
        #expect(machine.subchannelDisconnected(id(0), .idle) == [])
    }

    @Test("A new list that still holds the connected address keeps the connection")
    func updateKeepsConnection() {
        var machine = machine()
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: b)
        #expect(machine.addressesResolved([c, b]) == [])
        #expect(machine.subchannels[id(0)]?.addresses == [c, b])
        #expect(machine.picker == .ready([id(0)]))
    }

    @Test("A new list without the connected address replaces the subchannel (its RPCs drain)")
    func updateReplaces() {
        var machine = machine()
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        #expect(
            machine.addressesResolved([c]) == [
                .shutDown(id(0)), .connect(id(1), [c], backoffFloor: .seconds(1)), .updatePicker(.queue),
                .connectivityChanged(.connecting),
            ]
        )
        // Events of the old subchannel are ignored.
        #expect(machine.subchannelDisconnected(id(0), .goAway) == [])
    }

    @Test("A new list while idle replaces the subchannel without connecting")
    func updateWhileIdle() {
        var machine = machine()
        #expect(machine.addressesResolved([c]) == [.shutDown(id(0))])
        #expect(machine.exitIdle().first == .connect(id(1), [c], backoffFloor: .seconds(1)))
    }

    @Test("Duplicates in a list are dropped")
    func duplicates() {
        let machine = machine([a, b, a])
        #expect(machine.subchannels[id(0)]?.addresses == [a, b])
    }

    @Test("Shut down: every subchannel, a failing picker, SHUTDOWN; nothing afterwards")
    func shutDown() {
        var machine = machine()
        _ = machine.exitIdle()
        let closed = RPCError(code: .unavailable, message: "The client transport is closed.")
        #expect(
            machine.shutDown() == [.shutDown(id(0)), .updatePicker(.fail(closed)), .connectivityChanged(.shutdown)]
        )
        #expect(machine.shutDown() == [])
        #expect(machine.exitIdle() == [])
        #expect(machine.addressesResolved([a]) == [])
    }
}

@Suite("Load balancer state machine: resolution")
struct BalancerResolutionTests {
    let dnsFailed = RPCError(code: .unavailable, message: "Could not resolve 'x': Name or service not known.")

    @Test("No addresses yet: the first RPC asks for a resolution and waits; a failure fails RPCs; addresses connect")
    func firstResolution() {
        var machine = LBMachine(policy: .pickFirst(), backoff: backoff)
        #expect(machine.exitIdle() == [.requestResolution, .updatePicker(.queue), .connectivityChanged(.connecting)])
        #expect(
            machine.resolutionFailed(dnsFailed) == [
                .updatePicker(.fail(dnsFailed)), .connectivityChanged(.transientFailure),
            ]
        )
        #expect(
            machine.addressesResolved([a]) == [
                .connect(id(0), [a], backoffFloor: .seconds(1)), .updatePicker(.queue),
                .connectivityChanged(.connecting),
            ]
        )
    }

    @Test("A failed resolution keeps the known addresses in use")
    func failureKeepsAddresses() {
        var machine = LBMachine(policy: .roundRobin, backoff: backoff)
        _ = machine.addressesResolved([a])
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        #expect(machine.resolutionFailed(dnsFailed) == [])
        #expect(machine.picker == .ready([id(0)]))
    }

    @Test("An empty list: RPCs fail, and the next RPC asks again")
    func emptyList() {
        var machine = LBMachine(policy: .roundRobin, backoff: backoff)
        _ = machine.addressesResolved([])
        let none = RPCError(code: .unavailable, message: "The name resolved to no addresses.")
        #expect(
            machine.exitIdle() == [
                .requestResolution, .updatePicker(.fail(none)), .connectivityChanged(.transientFailure),
            ]
        )
    }
}

@Suite("Load balancer state machine: round_robin")
struct RoundRobinStateMachineTests {
    func machine(_ addresses: [SocketAddress] = [a, b, c]) -> LBMachine {
        var machine = LBMachine(policy: .roundRobin, backoff: backoff)
        #expect(machine.addressesResolved(addresses) == [])
        return machine
    }

    @Test("One subchannel per address, all connected once an RPC asks; the picker holds the ready ones in list order")
    func connectAll() {
        var machine = machine()
        #expect(machine.order == [id(0), id(1), id(2)])
        #expect(
            machine.exitIdle() == [
                .connect(id(0), [a], backoffFloor: .seconds(1)), .connect(id(1), [b], backoffFloor: .seconds(1)),
                .connect(id(2), [c], backoffFloor: .seconds(1)), .updatePicker(.queue),
                .connectivityChanged(.connecting),
            ]
        )
        #expect(
            machine.subchannelReady(id(1), address: b) == [
                .updatePicker(.ready([id(1)])), .connectivityChanged(.ready),
            ]
        )
        #expect(machine.subchannelReady(id(0), address: a) == [.updatePicker(.ready([id(0), id(1)]))])
    }

    @Test("A failing address is skipped and reconnected after its own backoff")
    func skipsFailures() {
        var machine = machine()
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        _ = machine.subchannelReady(id(1), address: b)
        #expect(
            machine.subchannelConnectFailed(id(2), error: refused) == [
                .armBackoff(id(2), .seconds(1)), .requestResolution,
            ]
        )
        #expect(machine.picker == .ready([id(0), id(1)]))
        #expect(machine.backoffElapsed(id(2)) == [.connect(id(2), [c], backoffFloor: .seconds(2))])
        #expect(machine.subchannelConnectFailed(id(2), error: refused).first == .armBackoff(id(2), .seconds(2)))
        // The others' backoffs are their own.
        #expect(machine.subchannels[id(0)]?.state == .ready)
    }

    @Test("A lost connection leaves the picker at once and reconnects at once; re-resolution is asked")
    func lost() {
        var machine = machine()
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        _ = machine.subchannelReady(id(1), address: b)
        #expect(
            machine.subchannelDisconnected(id(0), .lost) == [
                .requestResolution, .connect(id(0), [a], backoffFloor: .seconds(1)), .updatePicker(.ready([id(1)])),
            ]
        )
        #expect(
            machine.subchannelDisconnected(id(1), .goAway) == [
                .requestResolution, .connect(id(1), [b], backoffFloor: .seconds(1)), .updatePicker(.queue),
                .connectivityChanged(.connecting),
            ]
        )
    }

    @Test("Every address failing: transient failure with the last error")
    func allFail() {
        var machine = machine([a, b])
        _ = machine.exitIdle()
        _ = machine.subchannelConnectFailed(id(0), error: refused)
        let last = RPCError(code: .unavailable, message: "Could not connect: timeout.")
        #expect(
            machine.subchannelConnectFailed(id(1), error: last) == [
                .armBackoff(id(1), .seconds(1)), .requestResolution, .updatePicker(.fail(last)),
                .connectivityChanged(.transientFailure),
            ]
        )
        #expect(machine.subchannelReady(id(0), address: a) == [])  // not connecting: ignored
        _ = machine.backoffElapsed(id(0))
        #expect(
            machine.subchannelReady(id(0), address: a) == [
                .updatePicker(.ready([id(0)])), .connectivityChanged(.ready),
            ]
        )
    }

    @Test("A new list keeps the subchannels of addresses still in it, adds new ones, shuts the rest down")
    func update() {
        var machine = machine()
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        _ = machine.subchannelReady(id(1), address: b)
        _ = machine.subchannelReady(id(2), address: c)
        #expect(
            machine.addressesResolved([c, d, b]) == [
                .shutDown(id(0)), .connect(id(3), [d], backoffFloor: .seconds(1)),
                .updatePicker(.ready([id(2), id(1)])),
            ]
        )
        #expect(machine.order == [id(2), id(3), id(1)])
        #expect(machine.subchannelReady(id(3), address: d) == [.updatePicker(.ready([id(2), id(3), id(1)]))])
    }

    @Test("Idle timeouts: no reconnect; once none is ready the transport is idle and the next RPC connects them all")
    func idleTimeouts() {
        var machine = machine([a, b])
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        _ = machine.subchannelReady(id(1), address: b)
        #expect(machine.subchannelDisconnected(id(0), .idle) == [.updatePicker(.ready([id(1)]))])
        #expect(machine.subchannelDisconnected(id(1), .idle) == [.updatePicker(.idle), .connectivityChanged(.idle)])
        #expect(
            machine.exitIdle() == [
                .connect(id(0), [a], backoffFloor: .seconds(1)), .connect(id(1), [b], backoffFloor: .seconds(1)),
                .updatePicker(.queue), .connectivityChanged(.connecting),
            ]
        )
    }

    @Test("An idle-timed-out subchannel is connected when the others fail and nothing else is connecting")
    func idleConnectedWhenNeeded() {
        var machine = machine([a, b])
        _ = machine.exitIdle()
        _ = machine.subchannelReady(id(0), address: a)
        #expect(
            machine.subchannelDisconnected(id(0), .idle) == [.updatePicker(.queue), .connectivityChanged(.connecting)]
        )
        #expect(
            machine.subchannelConnectFailed(id(1), error: refused) == [
                .armBackoff(id(1), .seconds(1)), .requestResolution, .connect(id(0), [a], backoffFloor: .seconds(1)),
            ]
        )
    }
}

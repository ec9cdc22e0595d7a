import Courier
import CourierTestSupport
import Testing

@testable import CourierHTTP2

#if canImport(Glibc)
import Glibc
#endif

private typealias Machine = ServerConnectionStateMachine

/// A quiet connection gives back its receive buffer's pages and its empty send buffers: the machine's
/// quiet timer decides when, ``ConnectionIO`` does it (cancel the receive, drop the pages, receive again).
@Suite("Quiet connections release their idle buffers")
struct QuietConnectionTests {
    let t0 = ContinuousClock.now
    let quiet = Duration.seconds(1)

    private func machine() -> Machine {
        var machine = Machine.make { $0.releaseIdleBuffersAfter = .seconds(1) }
        _ = machine.start(now: t0)
        _ = machine.receivedSettings()
        return machine
    }

    // MARK: The machine

    @Test("start arms the quiet timer when configured, and not otherwise")
    func startArms() {
        var on = Machine.make { $0.releaseIdleBuffersAfter = .seconds(1) }
        #expect(on.start(now: t0).contains(.armTimer(.quiet, at: t0.advanced(by: quiet))))
        var off = Machine.make()
        #expect(!off.start(now: t0).contains { if case .armTimer(.quiet, _) = $0 { true } else { false } })
        #expect(off.bytesReceived(now: t0) == .none)
        #expect(off.timerFired(.quiet, now: t0) == [])
    }

    @Test("Nothing received since the last look: release, and the timer is not armed again")
    func quietReleases() {
        var machine = machine()
        #expect(machine.timerFired(.quiet, now: t0.advanced(by: quiet)) == [.releaseIdleBuffers])
        #expect(machine.idleBuffersReleased)
    }

    @Test("Bytes since the last look: the timer looks again later; nothing is released")
    func busyLooksAgain() {
        var machine = machine()
        #expect(machine.bytesReceived(now: t0) == .none)
        let t1 = t0.advanced(by: quiet)
        #expect(machine.timerFired(.quiet, now: t1) == [.armTimer(.quiet, at: t1.advanced(by: quiet))])
        #expect(!machine.idleBuffersReleased)
        // A whole period without bytes after that: released.
        #expect(machine.timerFired(.quiet, now: t1.advanced(by: quiet)) == [.releaseIdleBuffers])
    }

    @Test("After a release the first bytes arm the timer again, once; it releases again after a quiet period")
    func bytesAfterReleaseRearm() {
        var machine = machine()
        _ = machine.timerFired(.quiet, now: t0.advanced(by: quiet))
        let t2 = t0.advanced(by: .seconds(30))
        #expect(machine.bytesReceived(now: t2) == .armTimer(.quiet, at: t2.advanced(by: quiet)))
        // The bytes that armed it don't count as activity after the arming: a quiet period releases.
        #expect(machine.timerFired(.quiet, now: t2.advanced(by: quiet)) == [.releaseIdleBuffers])
        // Bytes after the arming do: the timer looks again before releasing.
        let t3 = t2.advanced(by: .seconds(30))
        #expect(machine.bytesReceived(now: t3) == .armTimer(.quiet, at: t3.advanced(by: quiet)))
        #expect(machine.bytesReceived(now: t3) == .none, "armed already")
        let t4 = t3.advanced(by: quiet)
        #expect(machine.timerFired(.quiet, now: t4) == [.armTimer(.quiet, at: t4.advanced(by: quiet))])
        #expect(machine.timerFired(.quiet, now: t4.advanced(by: quiet)) == [.releaseIdleBuffers])
    }

    @Test("A connection that no longer serves releases nothing and arms nothing")
    func notServing() {
        var closing = machine()
        _ = closing.receivedProtocolViolation()
        #expect(closing.timerFired(.quiet, now: t0.advanced(by: quiet)) == [])
        var closed = machine()
        _ = closed.timerFired(.quiet, now: t0.advanced(by: quiet))
        _ = closed.transportFailed(reason: "peer closed")
        #expect(closed.bytesReceived(now: t0) == .none)
    }

    @Test("Releasing buffers does not end the connection (no timer log, streams untouched)")
    func releaseDoesNotEndConnection() {
        #expect(!Machine.Action.releaseIdleBuffers.endsConnection)
    }

    // MARK: ConnectionIO on a fake kernel

    let fd: Int32 = 7

    @Test("The receive is cancelled; on -ECANCELED its buffer's pages are dropped and it is armed again")
    func releaseDropsPages() throws {
        try withReceivingConnection { fake, probe, io, released in
            fake.kernel.receive([1, 2, 3], fd: fd)
            fake.turn()
            #expect(fake.kernel.pending(.recv, fd: fd)?.peek(3) == [1, 2, 3], "the bytes are still in the buffer")

            io.releaseIdleBuffers()
            io.releaseIdleBuffers()  // one cancellation at a time
            #expect(fake.kernel.calls.filter { $0 == .cancelRecv(fd: fd) }.count == 1)
            fake.kernel.complete(.recv, fd: fd, result: -ECANCELED)
            fake.turn()
            #expect(released.count == 1)
            #expect(probe.failures.isEmpty, "a cancellation is not a failure")
            let receive = try #require(fake.kernel.pending(.recv, fd: fd), "receiving again")
            #expect(receive.count == ConnectionIO.receiveBufferBytes)
            #expect(receive.peek(3) == [0, 0, 0], "the pages went back to the kernel and come back zeroed")

            fake.kernel.receive([4], fd: fd)
            fake.turn()
            #expect(probe.received == [[1, 2, 3], [4]])
        }
    }

    @Test("Bytes that beat the cancellation are received as usual; the pages stay; a later release works")
    func bytesWinTheRace() throws {
        try withReceivingConnection { fake, probe, io, released in
            io.releaseIdleBuffers()
            fake.kernel.receive([9, 9], fd: fd)
            fake.turn()
            #expect(probe.received == [[9, 9]])
            #expect(released.count == 0)
            #expect(fake.kernel.pending(.recv, fd: fd)?.peek(2) == [9, 9])
            io.releaseIdleBuffers()
            #expect(fake.kernel.calls.filter { $0 == .cancelRecv(fd: fd) }.count == 2)
            fake.kernel.complete(.recv, fd: fd, result: -ECANCELED)
            fake.turn()
            #expect(released.count == 1)
            #expect(probe.failures.isEmpty)
        }
    }

    @Test("Closed while the cancellation is in flight: the connection finalizes instead of receiving again")
    func closeDuringRelease() throws {
        try withReceivingConnection { fake, probe, io, released in
            io.releaseIdleBuffers()
            io.close()
            #expect(probe.finalized == 0, "the receive is still in flight")
            fake.kernel.complete(.recv, fd: fd, result: -ECANCELED)
            fake.turn()
            #expect(probe.finalized == 1)
            #expect(fake.kernel.pending(.recv, fd: fd) == nil)
            #expect(probe.failures.isEmpty)
        }
    }

    @Test("A send in flight keeps its bytes through a release")
    func sendSurvivesRelease() throws {
        try withReceivingConnection { fake, probe, io, released in
            probe.output = Array(0..<10)
            io.scheduleFlush()
            fake.turn()
            io.releaseIdleBuffers()
            #expect(fake.kernel.send(fd: fd, count: 4) == Array(0..<4))
            fake.turn()
            #expect(fake.kernel.send(fd: fd) == Array(4..<10))
            fake.turn()
            #expect(probe.failures.isEmpty)
        }
    }

    // MARK: End to end

    @Test("Over a real socket: a quiet connection releases its buffers and serves the next RPC")
    func endToEnd() async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configuration.releaseIdleBuffersAfter = .milliseconds(20)
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                for round in 1...3 {
                    let message = [UInt8](repeating: UInt8(round), count: 100_000)
                    let reply = try await echoBytes(client, message)
                    #expect(reply == message)
                    // Bounded wait (no sleep as synchronisation): the connection goes quiet and releases.
                    let deadline = ContinuousClock.now + .seconds(10)
                    while server.idleBufferReleasesForTesting < round, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    #expect(server.idleBufferReleasesForTesting >= round)
                }
            }
        }
    }
}

/// Counts a ``ConnectionIO``'s receive-buffer releases.
private final class ReleaseCounter {
    var count = 0
}

/// Runs `body` with a ``ConnectionIO`` on socket 7 of a fresh fake loop, its receive armed, counting releases.
private func withReceivingConnection(
    _ body: (FakeLoop, ConnectionProbe, ConnectionIO, ReleaseCounter) throws -> Void
) throws {
    try withFakeLoop { fake in
        let probe = ConnectionProbe()
        let io = probe.connect(to: fake, fd: 7)
        let released = ReleaseCounter()
        io.onIdleBuffersReleased = { released.count += 1 }
        io.armReceive()
        try body(fake, probe, io, released)
    }
}

import Testing

@testable import CourierHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// What a ``ConnectionIO``'s owner saw, and what it gives the connection to send.
final class ConnectionProbe: @unchecked Sendable {
    // @unchecked Sendable: used only on the test's thread, which is the fake loop's (jobs that capture it
    // run in `FakeLoop.turn()`).
    var received: [[UInt8]] = []
    var failures: [(result: Int32, whileSending: Bool)] = []
    var finalized = 0
    var afterOutput = 0
    /// Bytes the next flush sends.
    var output: [UInt8] = []
    /// What `onReceive` answers: false stops reading.
    var keepReading = true

    /// A connection on `fake`'s loop with socket `fd`, reporting here. TLS off.
    func connect(to fake: FakeLoop, fd: Int32) -> ConnectionIO {
        let io = ConnectionIO(loop: fake.loop)
        io.attach(fd: fd)
        io.onReceive = { bytes in
            self.received.append(Array(bytes))
            return self.keepReading
        }
        io.onFailure = { result, whileSending in self.failures.append((result, whileSending)) }
        io.produceOutput = { buffer in
            buffer.append(contentsOf: self.output)
            self.output = []
        }
        io.afterOutput = { self.afterOutput += 1 }
        io.onFinalized = { self.finalized += 1 }
        return io
    }
}

@Suite("ConnectionIO, on a fake backend")
struct ConnectionIOTests {
    let fd: Int32 = 7

    @Test("Received bytes reach the owner and the receive is armed again")
    func receive() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            io.armReceive()  // one receive in flight at most
            #expect(fake.kernel.pending.count == 1)
            fake.kernel.receive([1, 2, 3], fd: fd)
            fake.turn()
            #expect(probe.received == [[1, 2, 3]])
            #expect(fake.kernel.pending(.recv, fd: fd)?.count == 64 * 1024)
            probe.keepReading = false
            fake.kernel.receive([4], fd: fd)
            fake.turn()
            #expect(probe.received == [[1, 2, 3], [4]])
            #expect(fake.kernel.pending(.recv, fd: fd) == nil)
        }
    }

    @Test("What a round produced goes out in one send, and all of it across short sends, in order")
    func shortSends() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            probe.output = Array(0..<100)
            io.scheduleFlush()
            io.scheduleFlush()
            fake.turn()
            #expect(fake.kernel.submitted.count == 1)
            #expect(fake.kernel.pending(.send, fd: fd)?.bytes == Array(0..<100))

            // Output produced while a send is in flight waits for it.
            probe.output = [200, 201]
            io.scheduleFlush()
            fake.turn()
            #expect(fake.kernel.pending.count == 1)

            #expect(fake.kernel.send(fd: fd, count: 30) == Array(0..<30))
            fake.turn()
            #expect(fake.kernel.pending(.send, fd: fd)?.bytes == Array(30..<100))
            #expect(fake.kernel.send(fd: fd, count: 69) == Array(30..<99))
            fake.turn()
            #expect(fake.kernel.send(fd: fd) == [99])
            fake.turn()  // the send completes; the waiting output is flushed in the next turn
            fake.turn()
            #expect(fake.kernel.send(fd: fd) == [200, 201])
            fake.turn()
            #expect(fake.kernel.pending.isEmpty)
            #expect(io.outputIdle)
            #expect(probe.failures.isEmpty)
        }
    }

    @Test("A completion with -EAGAIN or -EINTR submits the same operation again; no failure is reported")
    func noProgress() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            probe.output = [1, 2, 3]
            io.scheduleFlush()
            fake.turn()
            fake.kernel.complete(.send, fd: fd, result: -EAGAIN)
            fake.kernel.complete(.recv, fd: fd, result: -EINTR)
            fake.turn()
            #expect(fake.kernel.pending(.send, fd: fd)?.bytes == [1, 2, 3])
            #expect(fake.kernel.pending(.recv, fd: fd) != nil)
            #expect(fake.kernel.send(fd: fd, count: 1) == [1])
            fake.kernel.complete(.recv, fd: fd, result: -EAGAIN)
            fake.turn()
            #expect(fake.kernel.pending(.send, fd: fd)?.bytes == [2, 3])
            #expect(fake.kernel.pending(.recv, fd: fd) != nil)
            #expect(probe.failures.isEmpty)
        }
    }

    @Test("The peer closing (a receive of 0) is reported as a failure with result 0")
    func endOfStream() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            fake.kernel.complete(.recv, fd: fd, result: 0)
            fake.turn()
            #expect(probe.failures.map(\.result) == [0])
            #expect(probe.failures.map(\.whileSending) == [false])
            #expect(fake.kernel.pending.isEmpty)
        }
    }

    @Test("Output isn't idle while a flush is scheduled: frames queued during a send go out before a close")
    func outputIdleWaitsForScheduledFlush() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            var idleAfterOutput: [Bool] = []
            io.afterOutput = { idleAfterOutput.append(io.outputIdle) }
            io.onReceive = { _ in
                probe.output = [2]  // what the received bytes made the session queue: say, a GOAWAY
                io.scheduleFlush()
                return true
            }
            io.armReceive()
            probe.output = [1]
            io.scheduleFlush()
            fake.turn()  // the send is in flight
            idleAfterOutput = []
            // Both complete in one batch, the receive first: when the send's completion asks, the GOAWAY
            // is still in the session (a close decided then lost it: BadInputTests' rapid reset, once).
            fake.kernel.receive([9], fd: fd)
            fake.kernel.complete(.send, fd: fd, result: 1)
            fake.turn()
            #expect(idleAfterOutput.first == false)
            fake.turn()
            #expect(fake.kernel.pending(.send, fd: fd)?.bytes == [2])
            fake.kernel.complete(.send, fd: fd, result: 1)
            fake.turn()
            #expect(idleAfterOutput.last == true)
        }
    }

    @Test("closeAfterDrainingInput reads and discards until the peer's end, then closes (no reset over a GOAWAY)")
    func closeAfterDrainingInput() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.closeAfterDrainingInput()
            #expect(fake.kernel.pending(.recv, fd: fd) != nil)
            // The peer reads the end of the stream (and may close in turn, ending the drain at once).
            #expect(fake.kernel.calls.contains(.shutdownOutput(fd: fd)))
            fake.kernel.receive([1, 2, 3], fd: fd)  // the peer still sending: read, dropped, read again
            probe.output = [9]
            io.scheduleFlush()  // nothing more goes out once the sending side is shut
            fake.turn()
            #expect(probe.received.isEmpty)
            #expect(fake.kernel.pending(.send, fd: fd) == nil)
            #expect(fake.kernel.pending(.recv, fd: fd) != nil)
            #expect(!fake.kernel.calls.contains(.shutdown(fd: fd)))
            fake.kernel.complete(.recv, fd: fd, result: 0)  // the peer's end: now the socket closes
            fake.turn()
            #expect(fake.kernel.calls.contains(.shutdown(fd: fd)))
            #expect(fake.kernel.calls.contains(.close(fd: fd)))
            #expect(probe.finalized == 1)
            #expect(probe.failures.isEmpty)
        }
    }

    @Test("A failure is reported once, however many operations fail")
    func failureOnce() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            probe.output = [1]
            io.scheduleFlush()
            fake.turn()
            fake.kernel.complete(.send, fd: fd, result: -EPIPE)
            fake.kernel.complete(.recv, fd: fd, result: -ECONNRESET)
            fake.turn()
            #expect(probe.failures.map(\.result) == [-EPIPE])
            #expect(probe.failures.map(\.whileSending) == [true])
        }
    }

    @Test("close() shuts the socket down, and closes it only once the receive and send in flight complete")
    func closeWaits() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            probe.output = [1, 2]
            io.scheduleFlush()
            fake.turn()
            io.close()
            #expect(fake.kernel.calls.filter { $0 != .submit && !Self.isWait($0) } == [.shutdown(fd: fd)])
            fake.kernel.complete(.recv, fd: fd, result: 0)
            fake.turn()
            #expect(probe.finalized == 0)
            #expect(!fake.kernel.calls.contains(.close(fd: fd)))
            fake.kernel.complete(.send, fd: fd, result: -EPIPE)
            fake.turn()
            #expect(probe.finalized == 1)
            let last = fake.kernel.calls.filter { !Self.isWait($0) }.suffix(2)
            #expect(Array(last) == [.willClose(fd: fd), .close(fd: fd)])
            // After close nothing is reported, and nothing more happens.
            #expect(probe.failures.isEmpty)
            io.close()
            io.scheduleFlush()
            fake.turn()
            #expect(probe.finalized == 1)
            #expect(fake.kernel.calls.filter { $0 == .close(fd: fd) }.count == 1)
        }
    }

    @Test("Bytes that arrive after close() don't reach the owner")
    func completionAfterClose() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            io.close()
            fake.kernel.receive([1, 2, 3], fd: fd)
            fake.turn()
            #expect(probe.received.isEmpty)
            #expect(probe.finalized == 1)
            #expect(fake.kernel.pending.isEmpty)
        }
    }

    @Test("Another operation in flight (a connect) delays the final close too")
    func otherOperations() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.otherOperationsInFlight = 1
            io.close()
            #expect(probe.finalized == 0)
            io.otherOperationsInFlight = 0
            io.finalizeIfIdle()
            #expect(probe.finalized == 1)
            #expect(fake.kernel.calls.contains(.close(fd: fd)))
        }
    }

    @Test("A connection without a socket finalizes without touching one")
    func noSocket() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = ConnectionIO(loop: fake.loop)
            io.onFinalized = { probe.finalized += 1 }
            io.armReceive()
            io.close()
            #expect(probe.finalized == 1)
            #expect(fake.kernel.calls.isEmpty)
            #expect(fake.kernel.submitted.isEmpty)
        }
    }

    @Test("Connections that flush in one round each send once, after the round")
    func flushPerRound() throws {
        try withFakeLoop { fake in
            let probes = [ConnectionProbe(), ConnectionProbe()]
            let connections = [probes[0].connect(to: fake, fd: 7), probes[1].connect(to: fake, fd: 8)]
            for (index, connection) in connections.enumerated() {
                fake.loop.execute {
                    probes[index].output.append(UInt8(index))
                    connection.scheduleFlush()
                    #expect(fake.kernel.submitted.isEmpty)
                }
                fake.loop.execute {
                    probes[index].output.append(UInt8(index + 10))
                    connection.scheduleFlush()
                }
            }
            fake.turn()
            #expect(fake.kernel.pending(.send, fd: 7)?.bytes == [0, 10])
            #expect(fake.kernel.pending(.send, fd: 8)?.bytes == [1, 11])
            #expect(fake.kernel.submitted.count == 2)
        }
    }

    @Test("The example in DesignNotes/0005 (a short send, then the rest)")
    func designNoteExample() throws {
        try withFakeLoop { fake in
            let io = ConnectionIO(loop: fake.loop)
            io.attach(fd: 7)
            io.produceOutput = { $0.append(contentsOf: [1, 2, 3]) }
            io.scheduleFlush()
            fake.turn()  // the flush submits one send
            fake.kernel.send(fd: 7, count: 1)  // a short send
            fake.turn()  // delivered: the rest is submitted
            #expect(fake.kernel.pending(.send, fd: 7)?.bytes == [2, 3])
        }
    }

    private static func isWait(_ call: FakeBackend.Call) -> Bool {
        if case .wait = call { true } else { false }
    }
}

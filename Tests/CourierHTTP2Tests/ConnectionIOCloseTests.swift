import CourierTestSupport
import Testing

@testable import CourierHTTP2

/// ConnectionIO's orderly close (TLS close_notify) and abort, and how it tells the peer's close_notify
/// from a truncated TLS connection, on a fake backend: the test plays the kernel and the TLS server.
@Suite("ConnectionIO: close_notify, abort, the peer's end")
struct ConnectionIOCloseTests {
    let fd: Int32 = 9

    /// A client ConnectionIO with TLS, its handshake completed against an in-memory server session;
    /// returns the connection and the server's session.
    func tlsConnection(_ fake: FakeLoop, _ probe: ConnectionProbe, pki: String) throws -> (ConnectionIO, TLSSession) {
        let client = try TLSContext(.client(trustRoots: .pemFile("\(pki)/ca.pem")))
        let serverContext = try TLSContext(
            .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key")
        )
        let server = try TLSSession(context: serverContext, serverName: nil)
        let io = probe.connect(to: fake, fd: fd)
        io.tls = try TLSSession(context: client, serverName: "localhost")
        io.armReceive()
        io.startTLS()
        for _ in 0..<12 {
            fake.turn()
            guard fake.kernel.pending(.send, fd: fd) != nil else {
                if io.tls!.handshakeComplete, server.handshakeComplete { break }
                continue
            }
            let flight = fake.kernel.send(fd: fd)
            var answer: [UInt8] = []
            _ = try flight.withUnsafeBytes { try server.receive($0) { _ in true } }
            server.drainCiphertext(into: &answer)
            if !answer.isEmpty { fake.kernel.receive(answer, fd: fd) }
        }
        fake.turn()
        try #require(io.tls!.handshakeComplete && server.handshakeComplete, "the handshake did not complete")
        #expect(fake.kernel.pending(.send, fd: fd) == nil)
        return (io, server)
    }

    /// The loop's calls since `start`, without its kernel entries.
    func calls(_ fake: FakeLoop, since start: Int) -> [FakeBackend.Call] {
        fake.kernel.calls.dropFirst(start).filter {
            if case .wait = $0 { return false }
            if case .submit = $0 { return false }
            return true
        }
    }

    @Test("An orderly close sends close_notify, without waiting, before shutting the socket down")
    func orderlyClose() async throws {
        let pki = try await TestPKI.directory()
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let (io, _) = try tlsConnection(fake, probe, pki: pki)
            let start = fake.kernel.calls.count
            io.close()
            let made = calls(fake, since: start)
            guard made.count == 2, case .sendWithoutWaiting(fd, let count) = made[0], made[1] == .shutdown(fd: fd)
            else {
                Issue.record("\(made)")
                return
            }
            #expect(count > 0)  // a close_notify record (24 bytes with TLS 1.3)
            fake.kernel.complete(.recv, fd: fd, result: 0)  // the shutdown wakes the receive
            fake.turn()
            #expect(probe.finalized == 1)
            #expect(fake.kernel.calls.contains(.close(fd: fd)))
        }
    }

    @Test("abort() sends nothing: the socket is shut down at once")
    func abort() async throws {
        let pki = try await TestPKI.directory()
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let (io, _) = try tlsConnection(fake, probe, pki: pki)
            let start = fake.kernel.calls.count
            io.abort()
            #expect(calls(fake, since: start) == [.shutdown(fd: fd)])
        }
    }

    @Test("Closing with a send in flight waits for it, then sends close_notify and shuts down")
    func lingerForSendInFlight() async throws {
        let pki = try await TestPKI.directory()
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let (io, _) = try tlsConnection(fake, probe, pki: pki)
            probe.output = [UInt8](repeating: 0xAB, count: 1000)
            io.scheduleFlush()
            fake.turn()
            #expect(fake.kernel.pending(.send, fd: fd) != nil)
            let start = fake.kernel.calls.count
            io.close()
            #expect(io.closed)
            #expect(calls(fake, since: start) == [])  // lingering: nothing cut short
            fake.kernel.send(fd: fd)
            fake.turn()
            let made = calls(fake, since: start)
            guard made.count == 2, case .sendWithoutWaiting(fd, _) = made[0], made[1] == .shutdown(fd: fd) else {
                Issue.record("\(made)")
                return
            }
            fake.kernel.complete(.recv, fd: fd, result: 0)
            fake.turn()
            #expect(probe.finalized == 1)
        }
    }

    @Test("A send in flight that doesn't complete within the linger: close_notify is given up, the socket shut down")
    func lingerBound() async throws {
        let pki = try await TestPKI.directory()
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let (io, _) = try tlsConnection(fake, probe, pki: pki)
            io.closeNotifyLinger = .zero
            probe.output = [1, 2, 3]
            io.scheduleFlush()
            fake.turn()
            let start = fake.kernel.calls.count
            io.close()
            fake.turn()  // the linger timer fires
            #expect(calls(fake, since: start) == [.shutdown(fd: fd)])
            #expect(probe.finalized == 0)  // the send and the receive are still in flight
            fake.kernel.send(fd: fd, count: 0)
            fake.kernel.complete(.recv, fd: fd, result: 0)
            fake.turn()
            #expect(probe.finalized == 1)
            #expect(
                calls(fake, since: start).filter { if case .sendWithoutWaiting = $0 { true } else { false } }.isEmpty
            )
        }
    }

    @Test("The peer's close_notify and a bare EOF are told apart (peerEnd); after either, close sends no close_notify")
    func peerEnd() async throws {
        let pki = try await TestPKI.directory()
        for closeNotify in [true, false] {
            try withFakeLoop { fake in
                let probe = ConnectionProbe()
                let (io, server) = try tlsConnection(fake, probe, pki: pki)
                if closeNotify {
                    var alert: [UInt8] = []
                    server.shutdown(into: &alert)
                    fake.kernel.receive(alert, fd: fd)
                } else {
                    fake.kernel.complete(.recv, fd: fd, result: 0)
                }
                fake.turn()
                #expect(probe.failures.map(\.result) == [0])
                #expect(io.peerEnd == (closeNotify ? .closeNotify : .truncated))
                let start = fake.kernel.calls.count
                io.close()
                // No receive in flight after the end: closed at once, nothing sent.
                #expect(calls(fake, since: start) == [.shutdown(fd: fd), .willClose(fd: fd), .close(fd: fd)])
            }
        }
    }

    @Test("Cleartext: close shuts down at once; the peer's end is a plain EOF")
    func cleartext() throws {
        try withFakeLoop { fake in
            let probe = ConnectionProbe()
            let io = probe.connect(to: fake, fd: fd)
            io.armReceive()
            fake.kernel.complete(.recv, fd: fd, result: 0)
            fake.turn()
            #expect(io.peerEnd == .eof)
            let start = fake.kernel.calls.count
            io.close()
            #expect(calls(fake, since: start) == [.shutdown(fd: fd), .willClose(fd: fd), .close(fd: fd)])
            #expect(probe.finalized == 1)
        }
    }
}

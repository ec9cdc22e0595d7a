import Testing

@testable import CourierHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// Records the results of the operations it is the handler of.
final class ResultRecorder: IOCompletionHandler {
    var results: [Int32] = []
    override func complete(result: Int32, flags: UInt32) { results.append(result) }
}

/// The real backends that work in this process (io_uring can be blocked, e.g. by seccomp).
let availableBackends: [IOBackend] = URingBackend.probe() == 0 ? [.ioUring, .epoll] : [.epoll]

/// A real backend, set up on the test's thread, and a connected pair of Unix stream sockets.
final class BackendHarness {
    let backend: any EventLoopBackend
    let local: Int32
    let peer: Int32
    private var closed: Set<Int32> = []

    private let ownsBackend: Bool

    init(_ kind: IOBackend) throws {
        backend = try kind.makeBackend(entries: 64)
        try backend.setUp()
        ownsBackend = true
        (local, peer) = try Self.socketPair()
    }

    /// Another pair of sockets on `backend`, which the first harness owns.
    init(_ kind: IOBackend, sharing backend: any EventLoopBackend) throws {
        self.backend = backend
        ownsBackend = false
        (local, peer) = try Self.socketPair()
    }

    private static func socketPair() throws -> (Int32, Int32) {
        var pair: [Int32] = [-1, -1]
        try syscall("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &pair) }
        return (pair[0], pair[1])
    }

    deinit {
        for fd in [local, peer] where !closed.contains(fd) { close(fd) }
        if ownsBackend { backend.tearDown() }
    }

    /// Closes one of the two sockets now.
    func close(_ fd: Int32) {
        guard closed.insert(fd).inserted else { return }
        backend.willClose(fd: fd)
        backend.close(fd: fd)
    }

    /// Waits (a bounded number of times) until `recorder` has `count` results.
    func wait(for recorder: ResultRecorder, count: Int = 1, sourceLocation: SourceLocation = #_sourceLocation) {
        for _ in 0..<20 where recorder.results.count < count {
            backend.waitForCompletions(timeout: .seconds(1))
        }
        #expect(recorder.results.count == count, sourceLocation: sourceLocation)
    }

    /// Writes to the peer socket directly.
    func peerWrite(_ bytes: [UInt8]) throws {
        let written = try syscall("send") { bytes.withUnsafeBytes { send(peer, $0.baseAddress, $0.count, 0) } }
        #expect(written == bytes.count)
    }

    /// Reads what the peer socket has.
    func peerRead(upTo count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let read = try syscall("recv") { buffer.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, 0) } }
        return Array(buffer.prefix(read))
    }
}

@Suite("The real backends keep the completion contract")
struct BackendTests {
    @Test("A receive completes with the bytes the peer sent", arguments: availableBackends)
    func receive(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let recorder = ResultRecorder()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        harness.backend.submitRecv(fd: harness.local, buffer: buffer.baseAddress!, count: 16, handler: recorder)
        try harness.peerWrite([1, 2, 3])
        harness.wait(for: recorder)
        #expect(recorder.results == [3])
        #expect(Array(buffer.prefix(3)) == [1, 2, 3])
    }

    @Test(
        "A cancelled receive completes with -ECANCELED; the next receive gets the bytes",
        arguments: availableBackends
    )
    func cancelReceive(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        let recorder = ResultRecorder()
        harness.backend.submitRecv(fd: harness.local, buffer: buffer.baseAddress!, count: 16, handler: recorder)
        harness.backend.waitForCompletions(timeout: .zero)  // the receive is in the kernel's hands
        #expect(recorder.results.isEmpty)
        harness.backend.cancelRecv(fd: harness.local, handler: recorder)
        #expect(recorder.results.isEmpty, "never delivered from inside the call")
        harness.wait(for: recorder)
        #expect(recorder.results == [-ECANCELED])

        // Cancelling a handler with nothing in flight does nothing.
        harness.backend.cancelRecv(fd: harness.local, handler: recorder)
        harness.backend.waitForCompletions(timeout: .zero)
        #expect(recorder.results == [-ECANCELED])

        harness.backend.submitRecv(fd: harness.local, buffer: buffer.baseAddress!, count: 16, handler: recorder)
        try harness.peerWrite([4, 5])
        harness.wait(for: recorder, count: 2)
        #expect(recorder.results == [-ECANCELED, 2])
        #expect(Array(buffer.prefix(2)) == [4, 5])
    }

    @Test("A send completes with the count sent", arguments: availableBackends)
    func send(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let recorder = ResultRecorder()
        let bytes: [UInt8] = [9, 8, 7, 6]
        bytes.withUnsafeBytes { raw in
            harness.backend.submitSend(fd: harness.local, buffer: raw.baseAddress!, count: raw.count, handler: recorder)
            harness.wait(for: recorder)
        }
        #expect(recorder.results == [4])
        #expect(try harness.peerRead(upTo: 16) == bytes)
    }

    @Test("A pending receive ends with 0 when the peer closes or the socket is shut down", arguments: availableBackends)
    func endOfStream(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        let first = ResultRecorder()
        harness.backend.submitRecv(fd: harness.local, buffer: buffer.baseAddress!, count: 16, handler: first)
        harness.close(harness.peer)
        harness.wait(for: first)
        #expect(first.results == [0])

        let other = try BackendHarness(kind)
        let second = ResultRecorder()
        other.backend.submitRecv(fd: other.local, buffer: buffer.baseAddress!, count: 16, handler: second)
        other.backend.shutdown(fd: other.local)
        other.wait(for: second)
        #expect(second.results == [0])
    }

    @Test("A send to a closed peer fails with -EPIPE, and raises no signal", arguments: availableBackends)
    func brokenPipe(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        harness.close(harness.peer)
        let recorder = ResultRecorder()
        let bytes: [UInt8] = [1]
        bytes.withUnsafeBytes { raw in
            harness.backend.submitSend(fd: harness.local, buffer: raw.baseAddress!, count: 1, handler: recorder)
            harness.wait(for: recorder)
        }
        #expect(recorder.results == [-EPIPE])
    }

    @Test("A completion is never delivered from inside the submit call", arguments: availableBackends)
    func notReentrant(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let recorder = ResultRecorder()
        let bytes: [UInt8] = [1, 2]
        bytes.withUnsafeBytes { raw in
            // epoll performs this send at once; its completion still waits for the next wait.
            harness.backend.submitSend(fd: harness.local, buffer: raw.baseAddress!, count: 2, handler: recorder)
            #expect(recorder.results.isEmpty)
            harness.wait(for: recorder)
        }
        #expect(recorder.results == [2])
    }

    @Test("Accept completes with a new descriptor, connect with 0", arguments: availableBackends)
    func acceptAndConnect(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let (listener, bound) = try Sockets.listen(on: .ipv4(host: "127.0.0.1", port: 0))
        defer { harness.close(listener) }
        let client = try syscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0) }
        defer { harness.close(client) }
        let accepted = ResultRecorder()
        let connected = ResultRecorder()
        harness.backend.submitAccept(fd: listener, handler: accepted)
        try bound.withSockAddr { address, length in
            harness.backend.submitConnect(fd: client, address: address, length: length, handler: connected)
            for _ in 0..<20 where accepted.results.isEmpty || connected.results.isEmpty {
                harness.backend.waitForCompletions(timeout: .seconds(1))
            }
        }
        #expect(connected.results == [0])
        let fd = try #require(accepted.results.first)
        #expect(fd >= 0)
        if fd >= 0 {
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
            harness.close(fd)
        }
    }

    @Test("Connecting to a port nobody listens on fails with -ECONNREFUSED", arguments: availableBackends)
    func connectionRefused(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        // A port that was just free: bind, learn it, close.
        let (listener, bound) = try Sockets.listen(on: .ipv4(host: "127.0.0.1", port: 0))
        harness.close(listener)
        let client = try syscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0) }
        defer { harness.close(client) }
        let connected = ResultRecorder()
        try bound.withSockAddr { address, length in
            harness.backend.submitConnect(fd: client, address: address, length: length, handler: connected)
            harness.wait(for: connected)
        }
        #expect(connected.results == [-ECONNREFUSED])
    }

    @Test("A wake-up from another thread ends a wait without a limit", arguments: availableBackends)
    func wakeUp(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let backend = harness.backend
        try onAnotherThread { backend.wakeUp() }
        let start = ContinuousClock.now
        backend.waitForCompletions(timeout: nil)
        #expect(start.duration(to: .now) < .seconds(5))
        // The wake-up was consumed: a zero-timeout wait returns too, and so does the next wake-up.
        backend.waitForCompletions(timeout: .zero)
        try onAnotherThread { backend.wakeUp() }
        backend.waitForCompletions(timeout: nil)
        withExtendedLifetime(harness) {}
    }

    @Test("A descriptor number reused after willClose and close starts from nothing", arguments: availableBackends)
    func reusedDescriptor(kind: IOBackend) throws {
        let harness = try BackendHarness(kind)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        let first = ResultRecorder()
        harness.backend.submitRecv(fd: harness.local, buffer: buffer.baseAddress!, count: 16, handler: first)
        try harness.peerWrite([1])
        harness.wait(for: first)
        // epoll keeps the read interest after a receive; willClose drops it, so a new socket that gets the
        // same number (usually) is registered afresh.
        harness.close(harness.local)
        let reused = try BackendHarness(kind, sharing: harness.backend)
        let second = ResultRecorder()
        harness.backend.submitRecv(fd: reused.local, buffer: buffer.baseAddress!, count: 16, handler: second)
        try reused.peerWrite([5, 6])
        harness.wait(for: second)
        #expect(second.results == [2])
        reused.close(reused.local)
        reused.close(reused.peer)
        withExtendedLifetime(harness) {}
    }
}

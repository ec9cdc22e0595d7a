@_spi(CourierInternals) import Courier
import Synchronization
import Testing

@testable import CourierHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// A backend that plays the kernel: it records what the loop submits, and completes an operation only
/// when the test says so, with the result the test chooses, in the order the test chooses. Completions are
/// delivered in the loop's next ``waitForCompletions(timeout:)``, as a kernel's would be.
///
/// Use it through ``FakeLoop``: a loop whose thread is the test's own, driven one turn at a time, so every
/// test is deterministic and none sleeps. File descriptors are just numbers: nothing reaches the kernel.
final class FakeBackend: EventLoopBackend, @unchecked Sendable {
    // @unchecked Sendable: `wakeUps` is atomic; everything else is touched on the loop's thread, which is
    // the test's (the loop runs with `.caller`).

    enum OperationKind: Equatable, Sendable {
        case recv, send, connect, accept
    }

    /// An operation the loop submitted and the test hasn't completed yet.
    struct Operation {
        let kind: OperationKind
        let fd: Int32
        let count: Int
        fileprivate let buffer: UnsafeRawPointer?
        fileprivate let handler: IOCompletionHandler

        /// The first `count` bytes of the operation's buffer, as they are now.
        func peek(_ count: Int) -> [UInt8] {
            guard let buffer else { return [] }
            return Array(UnsafeRawBufferPointer(start: buffer, count: min(count, self.count)))
        }

        /// What a send's buffer holds now.
        var bytes: [UInt8] {
            guard kind == .send, let buffer else { return [] }
            return Array(UnsafeRawBufferPointer(start: buffer, count: count))
        }
    }

    /// Every call the loop made that isn't a submission, in order.
    enum Call: Equatable {
        case sendWithoutWaiting(fd: Int32, count: Int)
        /// The loop asked to cancel the receive on `fd`; the test completes it (`-ECANCELED`, or data).
        case cancelRecv(fd: Int32)
        case shutdown(fd: Int32)
        case shutdownOutput(fd: Int32)
        case willClose(fd: Int32)
        case close(fd: Int32)
        case submit
        case wait(timeout: Duration?)
    }

    let kind: IOBackend
    var usesDeferredTaskRun: Bool { false }

    /// Operations submitted and not yet completed, in submission order.
    private(set) var pending: [Operation] = []
    /// Every submission so far, in order.
    private(set) var submitted: [(kind: OperationKind, fd: Int32, count: Int)] = []
    /// The loop's other calls, in order.
    private(set) var calls: [Call] = []
    /// Completions the test has made, delivered in this order by the next wait.
    private var completions: [(handler: IOCompletionHandler, result: Int32)] = []
    /// What ``sendWithoutWaiting(fd:buffer:count:)`` returns; nil: everything fits.
    var sendWithoutWaitingResult: Int32?
    private(set) var isSetUp = false
    private(set) var isTornDown = false

    private let wakeUpCount = Atomic<Int>(0)
    /// How many times ``wakeUp()`` was called (from any thread).
    var wakeUps: Int { wakeUpCount.load(ordering: .relaxed) }

    /// The timeouts of the loop's kernel entries so far.
    var waits: [Duration?] {
        calls.compactMap { if case .wait(let timeout) = $0 { timeout } else { nil } }
    }

    init(kind: IOBackend = .epoll) {
        self.kind = kind
    }

    // MARK: EventLoopBackend

    func setUp() throws(IOError) { isSetUp = true }
    func tearDown() { isTornDown = true }

    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler) {
        record(Operation(kind: .recv, fd: fd, count: count, buffer: UnsafeRawPointer(buffer), handler: handler))
    }

    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler) {
        record(Operation(kind: .send, fd: fd, count: count, buffer: buffer, handler: handler))
    }

    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler) {
        record(Operation(kind: .connect, fd: fd, count: Int(length), buffer: nil, handler: handler))
    }

    func submitAccept(fd: Int32, handler: IOCompletionHandler) {
        record(Operation(kind: .accept, fd: fd, count: 0, buffer: nil, handler: handler))
    }

    func cancelRecv(fd: Int32, handler: IOCompletionHandler) {
        calls.append(.cancelRecv(fd: fd))
    }

    func sendWithoutWaiting(fd: Int32, buffer: UnsafeRawPointer, count: Int) -> Int32 {
        calls.append(.sendWithoutWaiting(fd: fd, count: count))
        return sendWithoutWaitingResult ?? Int32(count)
    }

    func shutdown(fd: Int32) { calls.append(.shutdown(fd: fd)) }
    func shutdownOutput(fd: Int32) { calls.append(.shutdownOutput(fd: fd)) }
    func willClose(fd: Int32) { calls.append(.willClose(fd: fd)) }
    func close(fd: Int32) { calls.append(.close(fd: fd)) }

    func wakeUp() {
        wakeUpCount.add(1, ordering: .relaxed)
    }

    func submit() { calls.append(.submit) }

    func waitForCompletions(timeout: Duration?) {
        calls.append(.wait(timeout: timeout))
        // Completions made by the handlers run here (none, in practice) wait for the next turn, as a
        // kernel's would.
        let batch = completions
        completions.removeAll()
        for completion in batch { completion.handler.complete(result: completion.result, flags: 0) }
    }

    private func record(_ operation: Operation) {
        pending.append(operation)
        submitted.append((operation.kind, operation.fd, operation.count))
    }

    // MARK: Playing the kernel

    /// The oldest pending operation of a kind on an fd.
    func pending(_ kind: OperationKind, fd: Int32) -> Operation? {
        pending.first { $0.kind == kind && $0.fd == fd }
    }

    /// Completes the oldest pending operation of a kind on an fd with `result`.
    func complete(_ kind: OperationKind, fd: Int32, result: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let index = pending.firstIndex(where: { $0.kind == kind && $0.fd == fd }) else {
            Issue.record("no \(kind) pending on fd \(fd)", sourceLocation: sourceLocation)
            return
        }
        completions.append((pending.remove(at: index).handler, result))
    }

    /// Completes the pending receive on `fd` with `bytes` (at most its count) in its buffer.
    func receive(_ bytes: [UInt8], fd: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let operation = pending(.recv, fd: fd), let buffer = operation.buffer else {
            Issue.record("no recv pending on fd \(fd)", sourceLocation: sourceLocation)
            return
        }
        let count = min(bytes.count, operation.count)
        UnsafeMutableRawPointer(mutating: buffer).copyMemory(from: bytes, byteCount: count)
        complete(.recv, fd: fd, result: Int32(count), sourceLocation: sourceLocation)
    }

    /// Completes the pending send on `fd`, having sent `count` bytes (all of them if nil).
    ///
    /// - Returns: The bytes sent.
    @discardableResult
    func send(fd: Int32, count: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
        guard let operation = pending(.send, fd: fd) else {
            Issue.record("no send pending on fd \(fd)", sourceLocation: sourceLocation)
            return []
        }
        let sent = count ?? operation.count
        complete(.send, fd: fd, result: Int32(sent), sourceLocation: sourceLocation)
        return Array(operation.bytes.prefix(sent))
    }
}

/// A loop over a ``FakeBackend`` whose thread is the caller's: the test is the loop's thread and the
/// kernel at once.
struct FakeLoop {
    let loop: EventLoop
    let kernel: FakeBackend

    /// Runs one turn of the loop: jobs, timers, flushes, then the completions the test has made.
    func turn() {
        #expect(loop.runTurn(), "the loop has stopped")
    }
}

/// Runs `body` with a fresh ``FakeLoop``, then stops the loop and runs it to its end.
func withFakeLoop<Result>(
    kind: IOBackend = .epoll,
    _ body: (FakeLoop) throws -> Result
) throws -> Result {
    let kernel = FakeBackend(kind: kind)
    let loop = try EventLoop(name: "fake", io: kernel, thread: .caller)
    defer {
        loop.stop()
        while loop.runTurn() {}
    }
    return try body(FakeLoop(loop: loop, kernel: kernel))
}

/// Runs `body` on a new thread and waits for it to return.
func onAnotherThread(_ body: @escaping @Sendable () -> Void) throws {
    LoopThread.join(try LoopThread.start(body))
}

/// A value shared between threads behind a lock.
final class Locked<Value: Sendable>: Sendable {
    private let storage: CourierMutex<Value>

    init(_ value: Value) { storage = CourierMutex(value) }

    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

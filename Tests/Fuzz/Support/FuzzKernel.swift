internal import Synchronization

@testable internal import CourierHTTP2

#if canImport(Glibc)
internal import Glibc
#endif

/// The kernel the fuzz targets play: an ``EventLoopBackend`` that completes nothing by itself. The target
/// fills a pending receive with the fuzzer's bytes, completes sends (the peer reads everything), completes
/// connects, and runs the loop's turns on its own thread (the loop runs with `.caller`): deterministic, no
/// sockets, no sleeping. A trimmed copy of the test suite's `FakeBackend` (which uses Swift Testing).
///
/// File descriptors are real, unconnected sockets (Courier asks them for their peer and sets options on
/// them): nothing is read from or written to them, and the loop's `close` closes them for real.
final class FuzzKernel: EventLoopBackend, @unchecked Sendable {
    // @unchecked Sendable: `wakeUps` is atomic; everything else is touched on the loop's thread, the
    // fuzzer's.

    enum Kind: Equatable { case recv, send, connect, accept }

    struct Operation {
        let kind: Kind
        let fd: Int32
        let count: Int
        let buffer: UnsafeRawPointer?
        let handler: IOCompletionHandler
    }

    let kind: IOBackend = .epoll
    var usesDeferredTaskRun: Bool { false }

    private(set) var pending: [Operation] = []
    private var completions: [(handler: IOCompletionHandler, result: Int32)] = []
    /// Descriptors the loop has closed.
    private(set) var closed: Set<Int32> = []
    /// Bytes the loop sent, per descriptor (only counted).
    private(set) var sentBytes: [Int32: Int] = [:]
    /// The last bytes sent, per descriptor, kept when ``keepsOutput`` is set (seed making, debugging).
    private(set) var output: [Int32: [UInt8]] = [:]
    var keepsOutput = false
    private let wakeUpCount = Atomic<Int>(0)
    var wakeUps: Int { wakeUpCount.load(ordering: .relaxed) }

    init() {}

    func setUp() throws(IOError) {}
    func tearDown() {}

    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler) {
        pending.append(Operation(kind: .recv, fd: fd, count: count, buffer: UnsafeRawPointer(buffer), handler: handler))
    }

    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler) {
        pending.append(Operation(kind: .send, fd: fd, count: count, buffer: buffer, handler: handler))
    }

    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler) {
        pending.append(Operation(kind: .connect, fd: fd, count: Int(length), buffer: nil, handler: handler))
    }

    func submitAccept(fd: Int32, handler: IOCompletionHandler) {
        pending.append(Operation(kind: .accept, fd: fd, count: 0, buffer: nil, handler: handler))
    }

    func cancelRecv(fd: Int32, handler: IOCompletionHandler) {
        guard let index = pending.firstIndex(where: { $0.kind == .recv && $0.fd == fd && $0.handler === handler })
        else { return }
        completions.append((pending.remove(at: index).handler, -ECANCELED))
    }

    func sendWithoutWaiting(fd: Int32, buffer: UnsafeRawPointer, count: Int) -> Int32 {
        record(fd: fd, UnsafeRawBufferPointer(start: buffer, count: count))
        return Int32(count)
    }

    func shutdown(fd: Int32) {}
    func shutdownOutput(fd: Int32) {}
    func willClose(fd: Int32) {}

    func close(fd: Int32) {
        closed.insert(fd)
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    func wakeUp() { wakeUpCount.add(1, ordering: .relaxed) }
    func submit() {}

    func waitForCompletions(timeout: Duration?) {
        let batch = completions
        completions.removeAll()
        for completion in batch { completion.handler.complete(result: completion.result, flags: 0) }
    }

    private func record(fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        sentBytes[fd, default: 0] += bytes.count
        if keepsOutput { output[fd, default: []].append(contentsOf: bytes) }
    }

    // MARK: Playing the kernel

    func hasPending(_ kind: Kind, fd: Int32) -> Bool {
        pending.contains { $0.kind == kind && $0.fd == fd }
    }

    /// Completes the oldest pending operation of a kind on `fd` with `result`, in the next turn.
    func complete(_ kind: Kind, fd: Int32, result: Int32) {
        guard let index = pending.firstIndex(where: { $0.kind == kind && $0.fd == fd }) else { return }
        completions.append((pending.remove(at: index).handler, result))
    }

    /// Fills the pending receive on `fd` with as much of `bytes` as fits; returns how many. Zero bytes
    /// is an end of stream (the peer closed).
    func receive(_ bytes: ArraySlice<UInt8>, fd: Int32) -> Int {
        guard let operation = pending.first(where: { $0.kind == .recv && $0.fd == fd }), let buffer = operation.buffer
        else { return 0 }
        let count = min(bytes.count, operation.count)
        bytes.withUnsafeBytes { source in
            UnsafeMutableRawPointer(mutating: buffer).copyMemory(from: source.baseAddress!, byteCount: count)
        }
        complete(.recv, fd: fd, result: Int32(count))
        return count
    }

    /// Completes every pending send on `fd` in full. Returns whether there was one.
    func drainSends(fd: Int32) -> Bool {
        var any = false
        while let operation = pending.first(where: { $0.kind == .send && $0.fd == fd }) {
            if let buffer = operation.buffer {
                record(fd: fd, UnsafeRawBufferPointer(start: buffer, count: operation.count))
            }
            complete(.send, fd: fd, result: Int32(operation.count))
            any = true
        }
        return any
    }

    /// Whether a send, connect or accept is pending on `fd`.
    func hasAny(fd: Int32) -> Bool {
        pending.contains { $0.fd == fd && $0.kind != .recv }
    }

    /// Forgets that `fd` was closed (the number is used again).
    func forget(fd: Int32) {
        closed.remove(fd)
    }

    /// Fails every operation still pending on `fd` (the peer is gone).
    func failAll(fd: Int32, errno: Int32) {
        while let operation = pending.first(where: { $0.fd == fd }) {
            complete(operation.kind, fd: fd, result: -errno)
        }
    }
}

extension FuzzKernel {
    /// The descriptor of the oldest pending operation of a kind.
    func pendingFD(_ kind: Kind) -> Int32? {
        pending.first { $0.kind == kind }?.fd
    }
}

/// A counter shared with tasks on other threads.
final class Counter: Sendable {
    private let storage = Atomic<Int>(0)
    var value: Int { storage.load(ordering: .relaxed) }
    func add(_ delta: Int) { storage.add(delta, ordering: .relaxed) }
}

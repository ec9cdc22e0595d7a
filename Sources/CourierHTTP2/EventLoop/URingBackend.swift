internal import CCourierLinux
internal import CURing

#if canImport(Glibc)
internal import Glibc
#endif

/// The io_uring backend: each operation is an SQE whose user data is its handler, submitted with the
/// loop's one kernel entry per turn; completions are reaped in batches.
///
/// The ring is created on the loop's thread with `SINGLE_ISSUER|DEFER_TASKRUN` (plain if the kernel says
/// `EINVAL`), so only that thread may submit to it. Other threads wake it through an eventfd whose read
/// is kept armed on the ring.
final class URingBackend: EventLoopBackend, @unchecked Sendable {
    // @unchecked Sendable: the ring and everything but `eventFD` is touched on the loop's thread only
    // (the protocol's rule); `eventFD` is immutable and ``wakeUp()`` only writes to it.

    var kind: IOBackend { .ioUring }
    private(set) var usesDeferredTaskRun = false

    private let entries: UInt32
    private let ring: UnsafeMutablePointer<io_uring>
    private var ringInitialized = false
    private let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    private static let cqeBatch: UInt32 = 256
    private let eventFD: EventFD
    private let eventBuffer: UnsafeMutablePointer<UInt64>

    /// User data of the eventfd read; handlers' user data are pointers, never this small.
    private static let eventFDUserData: UInt64 = 1
    /// User data of an SQE whose completion nobody waits for.
    private static let ignoredUserData: UInt64 = 2

    /// Creates the backend; the ring itself is created by ``setUp()`` on the loop's thread.
    ///
    /// - Parameter entries: The submission queue's size.
    init(entries: UInt32 = 1024) throws(IOError) {
        self.entries = entries
        eventFD = try EventFD()
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        cqes = .allocate(capacity: Int(Self.cqeBatch))
        eventBuffer = .allocate(capacity: 1)
        eventBuffer.initialize(to: 0)
    }

    deinit {
        assert(!ringInitialized, "URingBackend released with its ring open")
        ring.deallocate()
        cqes.deallocate()
        eventBuffer.deallocate()
    }

    /// Creates and destroys a tiny ring: whether this process may use io_uring.
    ///
    /// - Returns: 0, or the errno of `io_uring_setup` (`EPERM` under Docker's default seccomp profile,
    ///   `ENOSYS` on old kernels).
    static func probe() -> Int32 {
        var ring = io_uring()
        let rc = io_uring_queue_init(2, &ring, 0)
        guard rc == 0 else { return -rc }
        io_uring_queue_exit(&ring)
        return 0
    }

    func setUp() throws(IOError) {
        var params = io_uring_params()
        params.flags = CURing_SETUP_SINGLE_ISSUER | CURing_SETUP_DEFER_TASKRUN
        var rc = io_uring_queue_init_params(entries, ring, &params)
        if rc == -EINVAL {
            // A kernel older than 6.1: no DEFER_TASKRUN.
            params = io_uring_params()
            rc = io_uring_queue_init_params(entries, ring, &params)
        } else if rc == 0 {
            usesDeferredTaskRun = true
        }
        guard rc == 0 else { throw IOError(errno: -rc, call: "io_uring_queue_init_params") }
        ringInitialized = true
        armEventRead()
    }

    func tearDown() {
        guard ringInitialized else { return }
        io_uring_queue_exit(ring)
        ringInitialized = false
    }

    // MARK: Operations

    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler) {
        let sqe = makeSQE()
        io_uring_prep_recv(sqe, fd, buffer, count, 0)
        setHandler(handler, on: sqe)
    }

    func cancelRecv(fd: Int32, handler: IOCompletionHandler) {
        let sqe = makeSQE()
        io_uring_prep_cancel64(sqe, UInt64(UInt(bitPattern: Unmanaged.passUnretained(handler).toOpaque())), 0)
        // The cancel's own completion (0, or -ENOENT when the receive has completed already) is not needed:
        // the receive's completion says what happened.
        io_uring_sqe_set_data64(sqe, Self.ignoredUserData)
    }

    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler) {
        let sqe = makeSQE()
        io_uring_prep_send(sqe, fd, buffer, count, Int32(MSG_NOSIGNAL))
        setHandler(handler, on: sqe)
    }

    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler) {
        let sqe = makeSQE()
        io_uring_prep_connect(sqe, fd, address, length)
        setHandler(handler, on: sqe)
    }

    func submitAccept(fd: Int32, handler: IOCompletionHandler) {
        let sqe = makeSQE()
        io_uring_prep_accept(sqe, fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        setHandler(handler, on: sqe)
    }

    func sendWithoutWaiting(fd: Int32, buffer: UnsafeRawPointer, count: Int) -> Int32 {
        completionSyscall("send") { Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }

    func shutdown(fd: Int32) {
        do {
            try Posix.shutdown(fd)
        } catch {
            // Best effort: the socket is closed once its operations complete, which ends it anyway.
            return
        }
    }

    func shutdownOutput(fd: Int32) {
        do {
            try Posix.shutdown(fd, how: SHUT_WR)
        } catch {
            // Best effort: the drain's linger closes the socket anyway.
            return
        }
    }

    func willClose(fd: Int32) {
        // The ring keeps no per-descriptor state.
    }

    func close(fd: Int32) {
        do {
            try Posix.close(fd)
        } catch {
            // The descriptor is released whatever close(2) reports; a socket has nothing to write back.
            return
        }
    }

    /// A submission queue entry; submits the pending ones first if the queue is full.
    private func makeSQE() -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        let submitted = io_uring_submit(ring)
        guard let sqe = io_uring_get_sqe(ring) else {
            let reason =
                submitted < 0
                ? IOError(errno: -submitted, call: "io_uring_submit").description : "\(submitted) submitted"
            fatalError("io_uring submission queue is still full after io_uring_submit (\(reason))")
        }
        return sqe
    }

    /// Sets a handler as an SQE's user data.
    @inline(__always)
    private func setHandler(_ handler: IOCompletionHandler, on sqe: UnsafeMutablePointer<io_uring_sqe>) {
        io_uring_sqe_set_data64(sqe, UInt64(UInt(bitPattern: Unmanaged.passUnretained(handler).toOpaque())))
    }

    // MARK: Waking and waiting

    func wakeUp() {
        eventFD.signal()
    }

    func submit() {
        let rc = io_uring_submit(ring)
        if rc < 0 { Self.check(rc, "io_uring_submit") }
    }

    func waitForCompletions(timeout: Duration?) {
        let rc: Int32
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        if let timeout {
            if timeout <= .zero {
                rc = io_uring_submit_and_get_events(ring)
            } else {
                var ts = __kernel_timespec(timeout)
                rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            }
        } else {
            rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, nil, nil)
        }
        if rc < 0 { Self.check(rc, "io_uring_enter") }
        reapCompletions()
    }

    /// Decides what a failed kernel entry means. The SQEs stay queued when it fails, so the next entry
    /// submits them again.
    private static func check(_ rc: Int32, _ call: StaticString) {
        switch -rc {
        case ETIME, EINTR:
            // The timeout passed, or a signal arrived: the loop turns and waits again.
            return
        case EAGAIN, EBUSY, ENOMEM:
            // Short of resources, or the completion queue overflowed: reaping makes room.
            return
        default:
            // EBADF, EFAULT, EINVAL, EEXIST (submitted from another thread), ENXIO, EBADR (lost
            // completions): the ring is unusable or this program is wrong; continuing would hang the loop.
            preconditionFailure(IOError(errno: -rc, call: "\(call)").description)
        }
    }

    private func armEventRead() {
        let sqe = makeSQE()
        io_uring_prep_read(sqe, eventFD.fd, eventBuffer, 8, 0)
        io_uring_sqe_set_data64(sqe, Self.eventFDUserData)
    }

    private func reapCompletions() {
        while true {
            let count = io_uring_peek_batch_cqe(ring, cqes, Self.cqeBatch)
            if count == 0 { return }
            for index in 0..<Int(count) {
                let cqe = cqes[index]!.pointee
                switch cqe.user_data {
                case Self.eventFDUserData:
                    armEventRead()
                case Self.ignoredUserData, 0:
                    break
                default:
                    let handler = Unmanaged<IOCompletionHandler>
                        .fromOpaque(UnsafeRawPointer(bitPattern: UInt(cqe.user_data))!)
                        .takeUnretainedValue()
                    handler.complete(result: cqe.res, flags: cqe.flags)
                }
            }
            io_uring_cq_advance(ring, count)
            if count < Self.cqeBatch { return }
        }
    }
}

extension __kernel_timespec {
    /// A timeout; zero for durations that aren't positive.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) {
            self.init(tv_sec: 0, tv_nsec: 0)
        } else {
            self.init(tv_sec: seconds, tv_nsec: attoseconds / 1_000_000_000)
        }
    }
}

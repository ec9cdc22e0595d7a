internal import CCourierLinux

#if canImport(Glibc)
internal import Glibc
#endif

/// The epoll backend: non-blocking operations performed when their descriptor is ready, with the same
/// completion handlers and results (a count, or a negative errno) as io_uring's.
///
/// At most one read-side and one write-side operation per descriptor, registered level-triggered for
/// exactly the events they need. A send is tried at once (sockets are usually writable) and waits for
/// `EPOLLOUT` only on `EAGAIN`. Completions found at submit time are delivered in the next
/// ``waitForCompletions(timeout:)``, never re-entrantly.
final class EpollBackend: EventLoopBackend, @unchecked Sendable {
    // @unchecked Sendable: everything but `eventFD` is touched on the loop's thread only (the protocol's
    // rule); `eventFD` is immutable and ``wakeUp()`` only writes to it.

    private enum Operation {
        case recv(UnsafeMutableRawPointer, Int)
        case send(UnsafeRawPointer, Int)
        case connect
        case accept
        case readEventFD
    }

    private struct Pending {
        var operation: Operation
        var handler: IOCompletionHandler?
    }

    private struct Registration {
        var read: Pending?
        var write: Pending?
        var registeredEvents: UInt32 = 0
    }

    var kind: IOBackend { .epoll }
    var usesDeferredTaskRun: Bool { false }

    private var epollFD: Int32 = -1
    private let eventFD: EventFD
    private var registrations: [Int32: Registration] = [:]
    /// Operations that completed at once, delivered in the next wait (never re-entrantly from submit).
    private var completed: [(IOCompletionHandler, Int32)] = []
    private let events: UnsafeMutablePointer<epoll_event>
    private static let eventCapacity: Int32 = 256

    private static let readInterest = EPOLLIN.rawValue | EPOLLRDHUP.rawValue

    /// Creates the backend; the epoll instance is created by ``setUp()`` on the loop's thread.
    init() throws(IOError) {
        eventFD = try EventFD()
        events = .allocate(capacity: Int(Self.eventCapacity))
    }

    deinit {
        assert(epollFD < 0, "EpollBackend released with its epoll instance open")
        events.deallocate()
    }

    func setUp() throws(IOError) {
        let fd = try syscall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        var event = epoll_event()
        event.events = Self.readInterest
        event.data.fd = eventFD.fd
        do {
            try syscall("epoll_ctl(ADD, eventfd)") { epoll_ctl(fd, EPOLL_CTL_ADD, eventFD.fd, &event) }
        } catch {
            try? Posix.close(fd)  // already failing; the descriptor is released whatever close(2) says
            throw error
        }
        epollFD = fd
        // The eventfd stays armed for the loop's whole life.
        registrations[eventFD.fd] = Registration(
            read: Pending(operation: .readEventFD, handler: nil),
            registeredEvents: Self.readInterest
        )
    }

    func tearDown() {
        guard epollFD >= 0 else { return }
        do {
            try Posix.close(epollFD)
        } catch {
            // The descriptor is released whatever close(2) reports; an epoll instance writes nothing back.
        }
        epollFD = -1
    }

    // MARK: Operations

    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler) {
        register(fd, read: Pending(operation: .recv(buffer, count), handler: handler))
    }

    func cancelRecv(fd: Int32, handler: IOCompletionHandler) {
        guard var registration = registrations[fd], let read = registration.read, read.handler === handler,
            case .recv = read.operation
        else { return }
        registration.read = nil
        completed.append((handler, -ECANCELED))
        // The receiver re-arms as soon as the cancellation is delivered: keep the interest registered.
        update(fd, &registration, keepReadInterest: true)
    }

    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler) {
        // Sockets are usually writable: try now, wait for EPOLLOUT only if the buffer is full.
        let result = completionSyscall("send") { Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        if result != -EAGAIN && result != -EWOULDBLOCK {
            completed.append((handler, result))
            return
        }
        register(fd, write: Pending(operation: .send(buffer, count), handler: handler))
    }

    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler) {
        let nonBlocking = setNonBlocking(fd, onlyIfNeeded: false)
        guard nonBlocking == 0 else {
            completed.append((handler, nonBlocking))
            return
        }
        let result = completionSyscall("connect") { Int(Glibc.connect(fd, address, length)) }
        if result == -EINPROGRESS || result == -EAGAIN {
            register(fd, write: Pending(operation: .connect, handler: handler))
        } else {
            completed.append((handler, result))
        }
    }

    func submitAccept(fd: Int32, handler: IOCompletionHandler) {
        let nonBlocking = setNonBlocking(fd, onlyIfNeeded: true)
        guard nonBlocking == 0 else {
            completed.append((handler, nonBlocking))
            return
        }
        register(fd, read: Pending(operation: .accept, handler: handler))
    }

    /// Sets `O_NONBLOCK`; returns 0 or the negative errno, the failed operation's result.
    private func setNonBlocking(_ fd: Int32, onlyIfNeeded: Bool) -> Int32 {
        let flags = completionSyscall("fcntl(F_GETFL)") { Int(fcntl(fd, F_GETFL)) }
        if flags < 0 { return flags }
        if onlyIfNeeded, flags & O_NONBLOCK != 0 { return 0 }
        let result = completionSyscall("fcntl(F_SETFL)") { Int(fcntl(fd, F_SETFL, flags | O_NONBLOCK)) }
        return min(result, 0)
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

    /// Drops the descriptor's interest, so that a later descriptor with the same number starts from nothing.
    func willClose(fd: Int32) {
        guard let registration = registrations.removeValue(forKey: fd), registration.registeredEvents != 0 else {
            return
        }
        remove(fd)
    }

    func close(fd: Int32) {
        do {
            try Posix.close(fd)
        } catch {
            // The descriptor is released whatever close(2) reports; a socket has nothing to write back.
            return
        }
    }

    // MARK: Interest

    private func register(_ fd: Int32, read: Pending? = nil, write: Pending? = nil) {
        var registration = registrations[fd] ?? Registration()
        if let read { registration.read = read }
        if let write { registration.write = write }
        update(fd, &registration)
    }

    /// Sets the fd's interest to its pending operations; forgets it when none is left.
    ///
    /// With `keepReadInterest`, a read interest that just lost its operation (a receive completed) stays
    /// registered: the connection re-arms its receive as soon as the completion is delivered, and
    /// dropping and re-adding the interest would cost two `epoll_ctl` calls per receive. If readiness
    /// arrives while nothing is pending, the interest is dropped then (see ``waitForCompletions(timeout:)``).
    /// This is why an fd must be forgotten (``willClose(fd:)``) before it is closed.
    private func update(_ fd: Int32, _ registration: inout Registration, keepReadInterest: Bool = false) {
        var wanted: UInt32 = 0
        if registration.read != nil { wanted |= Self.readInterest }
        if registration.write != nil { wanted |= EPOLLOUT.rawValue }
        if keepReadInterest, registration.write == nil, registration.registeredEvents == Self.readInterest {
            wanted = Self.readInterest
        }
        if wanted == registration.registeredEvents {
            registrations[fd] = wanted == 0 ? nil : registration
            return
        }
        if wanted == 0 {
            remove(fd)
            registrations[fd] = nil
            return
        }
        var event = epoll_event()
        event.events = wanted
        event.data.fd = fd
        var op = registration.registeredEvents == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
        var status = control(op, fd, &event)
        if status == -ENOENT, op == EPOLL_CTL_MOD {
            // A kept interest whose fd was closed (the kernel dropped it) and whose number was reused.
            op = EPOLL_CTL_ADD
            status = control(op, fd, &event)
        }
        if status != 0 {
            // The fd can't be watched (closed underneath, or a regular file): its operations fail now
            // with epoll_ctl's errno, as io_uring would fail them.
            if let handler = registration.read?.handler { completed.append((handler, status)) }
            if let handler = registration.write?.handler { completed.append((handler, status)) }
            if registration.registeredEvents != 0 { remove(fd) }
            registrations[fd] = nil
            return
        }
        registration.registeredEvents = wanted
        registrations[fd] = registration
    }

    /// `epoll_ctl` for an fd's interest: 0 or the negative errno, which is the result of the fd's
    /// operations when it fails. Not ``syscall(_:_:)``: a closed descriptor (`EBADF`) fails its operations,
    /// as io_uring fails them, instead of stopping the program.
    private func control(_ op: Int32, _ fd: Int32, _ event: inout epoll_event) -> Int32 {
        while true {
            if epoll_ctl(epollFD, op, fd, &event) == 0 { return 0 }
            let error = errno
            if error == EINTR { continue }
            precondition(error != EFAULT, "epoll_ctl failed with EFAULT: a bad pointer")
            return -error
        }
    }

    /// Removes an fd from the interest list.
    private func remove(_ fd: Int32) {
        var event = epoll_event()
        let status = control(EPOLL_CTL_DEL, fd, &event)
        // ENOENT/EBADF: the kernel has already dropped the interest (the fd was closed underneath): the
        // goal is met. Anything else (ENOMEM) leaves at worst a stale interest, which the next wait drops.
        assert(status == 0 || status == -ENOENT || status == -EBADF, "epoll_ctl(DEL) failed: \(-status)")
    }

    // MARK: Waking and waiting

    func wakeUp() {
        eventFD.signal()
    }

    func submit() {
        // Nothing is queued: operations were performed or registered when they were submitted.
    }

    func waitForCompletions(timeout: Duration?) {
        wait(timeout: timeout)
        reap()
    }

    /// Waits for readiness (up to `timeout`; `nil` is forever, zero polls) and runs what became possible.
    private func wait(timeout: Duration?) {
        var milliseconds: Int32 = -1
        if !completed.isEmpty {
            milliseconds = 0
        } else if let timeout {
            let (seconds, attoseconds) = timeout.components
            let total = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            milliseconds = Int32(clamping: max(0, total))
        }
        let count = epoll_wait(epollFD, events, Self.eventCapacity, milliseconds)
        if count < 0 {
            let error = errno
            // EINTR: a signal; the loop turns and waits again with a fresh timeout (a retry here would
            // overshoot it). Anything else (EBADF, EFAULT, EINVAL) is a bug that would hang the loop.
            precondition(error == EINTR, IOError(errno: error, call: "epoll_wait").description)
            return
        }
        for index in 0..<Int(count) {
            let event = events[index]
            let fd = event.data.fd
            guard var registration = registrations[fd] else { continue }
            if registration.read == nil, registration.write == nil {
                // A kept read interest became ready with nothing to do (the reader stopped): drop it,
                // or level-triggered readiness would wake the loop until someone reads.
                update(fd, &registration)
                continue
            }
            let error = event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
            var receiveCompleted = false
            if let read = registration.read, event.events & Self.readInterest != 0 || error {
                if perform(fd, read, hangUp: error) {
                    registration.read = nil
                    if case .recv = read.operation { receiveCompleted = true }
                }
            }
            if let write = registration.write, event.events & EPOLLOUT.rawValue != 0 || error {
                if perform(fd, write, hangUp: error) { registration.write = nil }
            }
            update(fd, &registration, keepReadInterest: receiveCompleted && !error)
        }
    }

    /// Runs an operation on a ready fd; false if it would still block.
    private func perform(_ fd: Int32, _ pending: Pending, hangUp: Bool) -> Bool {
        let result: Int32
        switch pending.operation {
        case .recv(let buffer, let count):
            result = completionSyscall("recv") { Glibc.recv(fd, buffer, count, Int32(MSG_DONTWAIT)) }
        case .send(let buffer, let count):
            result = completionSyscall("send") { Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        case .connect:
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            let status = completionSyscall("getsockopt(SO_ERROR)") {
                Int(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length))
            }
            if status < 0 { error = -status }
            if error == EINPROGRESS { return false }
            completed.append((pending.handler!, -error))
            return true
        case .accept:
            result = completionSyscall("accept") { Int(Glibc.accept(fd, nil, nil)) }
            if result >= 0 {
                // accept4(SOCK_CLOEXEC) is a GNU extension Swift's Glibc doesn't declare.
                let status = completionSyscall("fcntl(F_SETFD)") { Int(fcntl(result, F_SETFD, FD_CLOEXEC)) }
                if status < 0 {
                    // A new descriptor that fcntl refuses: give it back and report the error.
                    close(fd: result)
                    completed.append((pending.handler!, status))
                    return true
                }
            } else if result == -EAGAIN || result == -EWOULDBLOCK, hangUp {
                // A Unix listening socket that was shut down reports HUP but accept(2) says EAGAIN: it
                // will never accept again. Report it as shut down, as io_uring does.
                completed.append((pending.handler!, -EINVAL))
                return true
            }
        case .readEventFD:
            eventFD.drain()
            return false  // stays armed
        }
        if result == -EAGAIN || result == -EWOULDBLOCK { return false }
        completed.append((pending.handler!, result))
        return true
    }

    /// Delivers the completions gathered since the last call.
    private func reap() {
        while !completed.isEmpty {
            let batch = completed
            completed.removeAll(keepingCapacity: true)
            for (handler, result) in batch { handler.complete(result: result, flags: 0) }
        }
    }
}

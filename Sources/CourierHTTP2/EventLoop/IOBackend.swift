internal import CURing
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// How the event loops do I/O: io_uring, or epoll where io_uring is blocked (Docker's default seccomp
/// profile, many managed Kubernetes nodes, gVisor).
///
/// The default is automatic: io_uring if `io_uring_setup` works, else epoll. `COURIER_IO=uring|epoll` in
/// the environment, or a transport's configuration, forces one.
public enum IOBackend: String, Sendable, Hashable, CustomStringConvertible {
    /// io_uring (liburing): completions, one `io_uring_enter` per loop turn.
    case ioUring = "uring"
    /// epoll: readiness, non-blocking syscalls.
    case epoll

    public var description: String { rawValue }

    /// The backend to use when none is configured: `COURIER_IO` if set, else io_uring if this process
    /// may use it, else epoll. Decided once per process.
    public static var automatic: IOBackend { resolved.backend }

    /// Why ``automatic`` chose what it did, for a start-up log line.
    public static var automaticReason: String { resolved.reason }

    private static let resolved: (backend: IOBackend, reason: String) = {
        if let value = getenv("COURIER_IO").map({ String(cString: $0) }), !value.isEmpty {
            if let forced = IOBackend(rawValue: value) { return (forced, "COURIER_IO=\(value)") }
            return (probeUring() == 0 ? .ioUring : .epoll, "COURIER_IO=\(value) is not uring or epoll; ignored")
        }
        let error = probeUring()
        if error == 0 { return (.ioUring, "io_uring is available") }
        return (.epoll, "io_uring_setup failed (\(String(cString: strerror(error)))); using epoll")
    }()

    /// Creates and destroys a tiny ring; returns 0 or the errno.
    private static func probeUring() -> Int32 {
        var ring = io_uring()
        let rc = io_uring_queue_init(2, &ring, 0)
        guard rc == 0 else { return -rc }
        io_uring_queue_exit(&ring)
        return 0
    }
}

/// The epoll side of an ``EventLoop``: non-blocking operations completed when their file descriptor is
/// ready, with the same completion handlers and results (a count, or a negative errno) as io_uring's.
/// Loop-confined.
final class EpollPoller {
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

    let epollFD: Int32
    private var registrations: [Int32: Registration] = [:]
    /// Operations that completed at once, delivered in the next reap (never re-entrantly from submit).
    private var completed: [(IOCompletionHandler, Int32)] = []
    private var events: UnsafeMutablePointer<epoll_event>
    private let eventCapacity: Int32 = 256
    /// Called when the eventfd was read.
    var onEventFD: () -> Void = {}

    init() throws(IOError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw IOError(errno: errno, call: "epoll_create1") }
        epollFD = fd
        events = .allocate(capacity: Int(eventCapacity))
    }

    deinit {
        events.deallocate()
        close(epollFD)
    }

    var hasCompleted: Bool { !completed.isEmpty }

    func recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ handler: IOCompletionHandler) {
        register(fd, read: Pending(operation: .recv(buffer, count), handler: handler))
    }

    func send(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, _ handler: IOCompletionHandler) {
        // Sockets are usually writable: try now, wait for EPOLLOUT only if the buffer is full.
        let result = Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        if result >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
            completed.append((handler, result >= 0 ? Int32(result) : -errno))
            return
        }
        register(fd, write: Pending(operation: .send(buffer, count), handler: handler))
    }

    func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t, _ handler: IOCompletionHandler) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, address, length) == 0 {
            completed.append((handler, 0))
        } else if errno == EINPROGRESS || errno == EAGAIN {
            register(fd, write: Pending(operation: .connect, handler: handler))
        } else {
            completed.append((handler, -errno))
        }
    }

    func accept(_ fd: Int32, _ handler: IOCompletionHandler) {
        let flags = fcntl(fd, F_GETFL)
        if flags & O_NONBLOCK == 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        register(fd, read: Pending(operation: .accept, handler: handler))
    }

    func watchEventFD(_ fd: Int32) {
        register(fd, read: Pending(operation: .readEventFD, handler: nil))
    }

    /// The fd is about to be closed: drop its interest, so that a later fd with the same number starts
    /// from nothing.
    func forget(_ fd: Int32) {
        guard let registration = registrations.removeValue(forKey: fd), registration.registeredEvents != 0 else { return }
        var event = epoll_event()
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, &event)
    }

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
    /// arrives while nothing is pending, the interest is dropped then (see ``wait(timeout:)``).
    private func update(_ fd: Int32, _ registration: inout Registration, keepReadInterest: Bool = false) {
        var wanted: UInt32 = 0
        if registration.read != nil { wanted |= EPOLLIN.rawValue | EPOLLRDHUP.rawValue }
        if registration.write != nil { wanted |= EPOLLOUT.rawValue }
        let readInterest = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        if keepReadInterest, registration.write == nil, registration.registeredEvents == readInterest {
            wanted = readInterest
        }
        if wanted == registration.registeredEvents {
            registrations[fd] = wanted == 0 ? nil : registration
            return
        }
        var event = epoll_event()
        event.events = wanted
        event.data.fd = fd
        if wanted == 0 {
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, &event)
            registrations[fd] = nil
            return
        }
        var op = registration.registeredEvents == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
        var status = epoll_ctl(epollFD, op, fd, &event)
        if status != 0, errno == ENOENT, op == EPOLL_CTL_MOD {
            // A kept interest whose fd was closed (the kernel dropped it) and whose number was reused.
            op = EPOLL_CTL_ADD
            status = epoll_ctl(epollFD, op, fd, &event)
        }
        if status != 0 {
            // The fd can't be watched (closed underneath, or a regular file): fail its operations now.
            let error = -errno
            for pending in [registration.read, registration.write].compactMap({ $0 }) {
                if let handler = pending.handler { completed.append((handler, error)) }
            }
            if registration.registeredEvents != 0 { _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, &event) }
            registrations[fd] = nil
            return
        }
        registration.registeredEvents = wanted
        registrations[fd] = registration
    }

    /// Waits for readiness (up to `timeout`; `nil` is forever, zero polls) and runs what became possible.
    func wait(timeout: Duration?) {
        var milliseconds: Int32 = -1
        if !completed.isEmpty {
            milliseconds = 0
        } else if let timeout {
            let (seconds, attoseconds) = timeout.components
            let total = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            milliseconds = Int32(clamping: max(0, total))
        }
        let count = epoll_wait(epollFD, events, eventCapacity, milliseconds)
        guard count > 0 else { return }
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
            if let read = registration.read, event.events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 || error {
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
        let result: Int
        switch pending.operation {
        case .recv(let buffer, let count):
            result = Glibc.recv(fd, buffer, count, Int32(MSG_DONTWAIT))
        case .send(let buffer, let count):
            result = Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        case .connect:
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
            if error == EINPROGRESS { return false }
            completed.append((pending.handler!, -error))
            return true
        case .accept:
            let accepted = Glibc.accept(fd, nil, nil)
            if accepted >= 0 {
                _ = fcntl(accepted, F_SETFD, FD_CLOEXEC)
            } else if (errno == EAGAIN || errno == EWOULDBLOCK), hangUp {
                // A Unix listening socket that was shut down reports HUP but accept(2) says EAGAIN: it
                // will never accept again. Report it as shut down, as io_uring does.
                completed.append((pending.handler!, -EINVAL))
                return true
            }
            result = Int(accepted)
        case .readEventFD:
            var value: UInt64 = 0
            _ = read(fd, &value, 8)
            onEventFD()
            return false  // stays armed
        }
        if result < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
        completed.append((pending.handler!, result >= 0 ? Int32(result) : -errno))
        return true
    }

    /// Delivers the completions gathered since the last call.
    func reap() {
        while !completed.isEmpty {
            let batch = completed
            completed.removeAll(keepingCapacity: true)
            for (handler, result) in batch { handler.complete(result: result, flags: 0) }
        }
    }
}

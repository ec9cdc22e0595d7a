internal import CCourierLinux

#if canImport(Glibc)
internal import Glibc
#endif

/// The eventfd through which other threads wake a loop's backend: written by ``signal()`` (the loop writes
/// it only when its cross-thread queue goes from empty to non-empty), read by the backend on its thread.
///
/// Blocking on purpose: io_uring completes a read of a non-blocking eventfd at once with `-EAGAIN` instead
/// of waiting for a write, and epoll reads it only once it is readable.
struct EventFD: ~Copyable {
    let fd: Int32

    init() throws(IOError) {
        fd = try syscall("eventfd") { eventfd(0, CCourierLinux_EFD_CLOEXEC) }
    }

    deinit {
        // The counter is in memory: close(2) can report nothing worth acting on.
        try? Posix.close(fd)
    }

    /// Wakes the backend. Callable from any thread.
    func signal() {
        var one: UInt64 = 1
        do {
            try syscall("write(eventfd)") { write(fd, &one, 8) }
        } catch {
            // An 8-byte write to a blocking eventfd fails only for a bad descriptor or buffer (stopped in
            // syscall()) or EINVAL (a wrong size): all bugs. A lost wake-up would hang the loop, so stop.
            preconditionFailure("\(error)")
        }
    }

    /// Resets the counter. On the loop's thread, once the eventfd is readable (it blocks otherwise).
    func drain() {
        var value: UInt64 = 0
        do {
            try syscall("read(eventfd)") { read(fd, &value, 8) }
        } catch {
            // Readable, so the read can't block; it fails only for a bad descriptor or buffer (stopped in
            // syscall()) or EINVAL (a wrong size): all bugs.
            preconditionFailure("\(error)")
        }
    }
}

#if canImport(Glibc)
internal import Glibc
#endif

/// The thread a loop runs on: a plain pthread, so that the loop's body runs outside Swift's executors.
enum LoopThread {
    /// Starts a thread that runs `body`, holding it (and what it captures) until it returns.
    ///
    /// - Throws: ``IOError`` if the thread can't be created (`EAGAIN`: a limit on threads).
    static func start(_ body: @escaping () -> Void) throws(IOError) -> pthread_t {
        let start = Unmanaged.passRetained(ThreadStart(body))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, loopThreadEntry, start.toOpaque())
        guard rc == 0 else {
            start.release()
            throw IOError(errno: rc, call: "pthread_create")
        }
        return thread
    }

    /// Waits for a thread started by ``start(_:)`` to return (blocking).
    static func join(_ thread: pthread_t) {
        let rc = pthread_join(thread, nil)
        // EDEADLK (joining itself), EINVAL (joined twice), ESRCH (no such thread): all bugs.
        precondition(rc == 0, IOError(errno: rc, call: "pthread_join").description)
    }
}

/// The thread entry's payload.
private final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A pthread entry point: a free function, not a closure, so it carries no actor isolation.
private func loopThreadEntry(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
    start.body()
    return nil
}

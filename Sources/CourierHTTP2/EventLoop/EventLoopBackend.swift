#if canImport(Glibc)
internal import Glibc
#endif

/// Something that receives an I/O completion. Its owner keeps it alive until the last completion of
/// every operation it submitted (on io_uring, the one without `IORING_CQE_F_MORE`).
///
/// A class rather than a protocol so that an io_uring SQE's user data is an unretained pointer to it, and a
/// completion is a virtual call with no existential box.
class IOCompletionHandler {
    /// Handles one completion, on the loop's thread.
    ///
    /// - Parameters:
    ///   - result: What the operation returned: a byte count (0 at the end of a stream), a file descriptor
    ///     or 0, or a negative errno.
    ///   - flags: io_uring's CQE flags; 0 on other backends.
    func complete(result: Int32, flags: UInt32) {
        fatalError("IOCompletionHandler.complete must be overridden")
    }
}

/// What an ``EventLoop`` needs from the kernel: submit socket operations, learn of their completions, and
/// be woken from other threads.
///
/// The interface is completion-based, as io_uring is: an operation is submitted with an
/// ``IOCompletionHandler``, and later, inside ``waitForCompletions(timeout:)`` and never re-entrantly
/// from the submit call, the handler gets the operation's result exactly as io_uring would report it: a
/// byte count, a file descriptor or 0, or a negative errno. ``URingBackend`` submits SQEs; ``EpollBackend``
/// performs the operation with a non-blocking syscall when its descriptor is ready; a test's fake records
/// the operation and completes it when the test says so.
///
/// Buffers, addresses and handlers passed to the `submit` methods must stay valid until the completion.
/// At most one receive and one send is in flight per descriptor (epoll relies on it).
///
/// - Important: Threading. ``wakeUp()`` may be called from any thread, at any time after the backend was
///   created. Everything else is called on the loop's thread only, and ``setUp()`` first of all: a ring
///   created with `IORING_SETUP_SINGLE_ISSUER` belongs to the thread that created it.
protocol EventLoopBackend: AnyObject, Sendable {
    /// What the loop reports as its ``EventLoop/backend``.
    var kind: IOBackend { get }

    /// Whether completions run as deferred task work (io_uring's `SINGLE_ISSUER|DEFER_TASKRUN`).
    var usesDeferredTaskRun: Bool { get }

    /// Acquires the kernel resources (the ring, the epoll instance), on the loop's thread, before any other
    /// call but ``wakeUp()``.
    func setUp() throws(IOError)

    /// Releases what ``setUp()`` acquired, when the loop ends (on its thread). Operations still in flight
    /// never complete.
    func tearDown()

    /// Receives into `buffer`: the handler gets the byte count (0 at end of stream) or a negative errno.
    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler)

    /// Cancels the receive `handler` has in flight on `fd`, if any: its completion comes soon after, never
    /// re-entrantly, with `-ECANCELED`, or with what it received if the data won the race. Until that
    /// completion the kernel may still write into the receive's buffer.
    func cancelRecv(fd: Int32, handler: IOCompletionHandler)

    /// Sends from `buffer`: the handler gets the count sent (possibly short) or a negative errno.
    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler)

    /// Connects a socket: the handler gets 0 or a negative errno.
    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler)

    /// Accepts a connection: the handler gets the new descriptor (close-on-exec) or a negative errno.
    func submitAccept(fd: Int32, handler: IOCompletionHandler)

    /// Sends what fits now, without waiting and without a completion (a TLS alert on the way out).
    ///
    /// - Returns: The count sent, or a negative errno (`-EAGAIN` if nothing fits).
    func sendWithoutWaiting(fd: Int32, buffer: UnsafeRawPointer, count: Int) -> Int32

    /// Shuts a socket down in both directions: operations in flight on it complete soon after.
    func shutdown(fd: Int32)

    /// Shuts a socket's sending side down: the peer reads the end of the stream; receiving goes on.
    func shutdownOutput(fd: Int32)

    /// The descriptor is about to be closed: forget what is known about it, so that a later descriptor
    /// with the same number starts from nothing.
    ///
    /// - Important: Required before closing a descriptor that had operations on this backend. epoll keeps
    ///   a socket's read interest between receives; closed without this call, its number, once reused,
    ///   would look registered while the kernel watches nothing.
    func willClose(fd: Int32)

    /// Closes a descriptor (after ``willClose(fd:)``) whose operations have all completed.
    func close(fd: Int32)

    /// Makes a ``waitForCompletions(timeout:)`` in progress or the next one return without waiting.
    /// Callable from any thread.
    func wakeUp()

    /// Hands what was submitted so far to the kernel without waiting: the loop's early flush.
    func submit()

    /// Enters the kernel once: submits what is pending, waits until at least one completion is available,
    /// ``wakeUp()`` is called or `timeout` passes (`nil`: no limit; zero or less: no wait), then delivers
    /// every completion available to its handler.
    func waitForCompletions(timeout: Duration?)
}

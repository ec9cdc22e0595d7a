#if canImport(Glibc)
internal import Glibc
#endif

/// A failed system call: its errno and the call, named.
struct IOError: Error, CustomStringConvertible, Equatable {
    var errno: Int32
    var call: String

    init(errno: Int32, call: String) {
        self.errno = errno
        self.call = call
    }

    var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// What a call on a non-blocking descriptor did.
enum IOResult<Value> {
    /// The call did its work and returned this.
    case processed(Value)
    /// `EAGAIN`/`EWOULDBLOCK`: nothing to do until the descriptor is ready.
    case wouldBlock
}

// MARK: The helper

/// Runs a system call that returns -1 and sets `errno` on failure.
///
/// Retries `EINTR`. Any other failure throws an ``IOError`` naming the call, except `EBADF` and `EFAULT`: a
/// descriptor that isn't open or a pointer that isn't valid means this program's own state is wrong, so they
/// stop it (a precondition) instead of surfacing as errors.
///
/// - Parameters:
///   - call: The call's name for the error (evaluated only on failure), e.g. `"bind(\(address))"`.
///   - body: The call.
@inline(__always)
@discardableResult
func syscall<Result: FixedWidthInteger>(
    _ call: @autoclosure () -> String,
    _ body: () -> Result
) throws(IOError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = errno
        if error == EINTR { continue }
        preconditionIsNotProgrammingError(error, call())
        throw IOError(errno: error, call: call())
    }
}

/// ``syscall(_:_:)`` for a call on a non-blocking descriptor: `EAGAIN`/`EWOULDBLOCK` are a normal outcome
/// (``IOResult/wouldBlock``), not an error.
@inline(__always)
func nonBlockingSyscall<Result: FixedWidthInteger>(
    _ call: @autoclosure () -> String,
    _ body: () -> Result
) throws(IOError) -> IOResult<Result> {
    while true {
        let result = body()
        if result != -1 { return .processed(result) }
        let error = errno
        switch error {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        default:
            preconditionIsNotProgrammingError(error, call())
            throw IOError(errno: error, call: call())
        }
    }
}

/// ``syscall(_:_:)`` for an operation whose outcome is an I/O completion's result: the call's non-negative
/// result, or the negative errno, exactly as io_uring reports the same operation. Never throws, so the caller
/// must hand the result on.
///
/// Retries `EINTR`. `EFAULT` stops the program. `EBADF` is the operation's result, as io_uring would report
/// it, but stops debug builds: the owner closed the descriptor with an operation outstanding.
@inline(__always)
func completionSyscall(_ call: StaticString, _ body: () -> Int) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return Int32(truncatingIfNeeded: result) }
        let error = errno
        if error == EINTR { continue }
        precondition(error != EFAULT, "\(call) failed with EFAULT: a bad pointer")
        assert(error != EBADF, "\(call) failed with EBADF: the descriptor was closed with an operation outstanding")
        return -error
    }
}

/// Stops the program on `EBADF`/`EFAULT` (see ``syscall(_:_:)``).
@inline(__always)
func preconditionIsNotProgrammingError(_ error: Int32, _ call: @autoclosure () -> String) {
    precondition(
        error != EBADF && error != EFAULT,
        "\(call()) failed with \(error == EBADF ? "EBADF (not an open descriptor)" : "EFAULT (a bad pointer)")"
    )
}

// MARK: Calls with rules of their own

/// System calls whose error handling differs from ``syscall(_:_:)``'s.
enum Posix {
    /// Closes a descriptor.
    ///
    /// `EINTR` is not retried: Linux releases the descriptor whatever `close(2)` returns, and a retry could
    /// close a descriptor another thread has just been given. `EBADF` stops the program: a double close
    /// can close someone else's descriptor.
    ///
    /// - Throws: ``IOError`` for what the last write-back reported (`EIO`, …); the descriptor is closed anyway.
    static func close(_ fd: Int32) throws(IOError) {
        guard Glibc.close(fd) == -1 else { return }
        let error = errno
        if error == EINTR { return }
        preconditionIsNotProgrammingError(error, "close")
        throw IOError(errno: error, call: "close")
    }

    /// Shuts a socket down in both directions (or the direction `how` names), waking the operations in
    /// flight on it.
    ///
    /// `ENOTCONN` (the socket never connected, or the peer reset it) is not an error: there is nothing
    /// left to shut down.
    static func shutdown(_ fd: Int32, how: Int = Int(SHUT_RDWR)) throws(IOError) {
        do {
            try syscall("shutdown") { Glibc.shutdown(fd, Int32(how)) }
        } catch  where error.errno == ENOTCONN {
            return
        }
    }
}

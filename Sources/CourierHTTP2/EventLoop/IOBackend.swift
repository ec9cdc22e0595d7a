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
            return (URingBackend.probe() == 0 ? .ioUring : .epoll, "COURIER_IO=\(value) is not uring or epoll; ignored")
        }
        let error = URingBackend.probe()
        if error == 0 { return (.ioUring, "io_uring is available") }
        return (.epoll, "io_uring_setup failed (\(String(cString: strerror(error)))); using epoll")
    }()
}

extension IOBackend {
    /// A new, not yet set up, backend of this kind for one loop.
    func makeBackend(entries: UInt32) throws(IOError) -> any EventLoopBackend {
        switch self {
        case .ioUring: try URingBackend(entries: entries)
        case .epoll: try EpollBackend()
        }
    }
}

internal import CCourierLinux

#if canImport(Glibc)
internal import Glibc
#endif

extension Sockets {
    /// Turns off Nagle's algorithm: a connection's one send per loop turn goes out at once.
    ///
    /// - Returns: false if the option couldn't be set (not a TCP socket: a Unix socket, say).
    @discardableResult
    static func setNoDelay(_ fd: Int32) -> Bool {
        (try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)) != nil
    }
}

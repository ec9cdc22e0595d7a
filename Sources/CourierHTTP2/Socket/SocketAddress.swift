internal import CCourierLinux

#if canImport(Glibc)
internal import Glibc
#endif

/// An IPv4, IPv6 or Unix-domain socket address.
public enum SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// An IPv4 address and port.
    case ipv4(host: String, port: Int)
    /// An IPv6 address and port.
    case ipv6(host: String, port: Int)
    /// A Unix-domain socket path.
    case unix(path: String)
    /// A Unix-domain socket in Linux's abstract namespace (`unix-abstract:name`): no file, the name
    /// (without the leading NUL byte the kernel sees).
    case unixAbstract(name: String)

    /// The address in gRPC's peer notation: `ipv4:127.0.0.1:50051`, `ipv6:[::1]:50051`, `unix:/path`.
    public var description: String {
        switch self {
        case .ipv4(let host, let port): "ipv4:\(host):\(port)"
        case .ipv6(let host, let port): "ipv6:[\(host)]:\(port)"
        case .unix(let path): "unix:\(path)"
        case .unixAbstract(let name): "unix-abstract:\(name)"
        }
    }

    /// The port, for IP addresses.
    public var port: Int? {
        switch self {
        case .ipv4(_, let port), .ipv6(_, let port): port
        case .unix, .unixAbstract: nil
        }
    }

    var family: Int32 {
        switch self {
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        case .unix, .unixAbstract: AF_UNIX
        }
    }

    /// Calls `body` with the address as a `sockaddr`.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        switch self {
        case .ipv4(let host, let port):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
                throw IOError(errno: EINVAL, call: "inet_pton(\(host))")
            }
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .ipv6(let host, let port):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else {
                throw IOError(errno: EINVAL, call: "inet_pton(\(host))")
            }
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard bytes.count < capacity else { throw IOError(errno: ENAMETOOLONG, call: "unix socket path") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        case .unixAbstract(let name):
            // A NUL byte, then the name; the length counts exactly those bytes (no terminator).
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = [0] + Array(name.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard bytes.count <= capacity else { throw IOError(errno: ENAMETOOLONG, call: "unix socket name") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
            let length = MemoryLayout<sa_family_t>.size + bytes.count
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(length)) }
            }
        }
    }

    /// Whether `host` is an IPv4 or IPv6 address literal (not a name).
    static func isIPLiteral(_ host: String) -> Bool {
        var bytes = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &bytes) == 1 || inet_pton(AF_INET6, host, &bytes) == 1
    }

    /// The text form of a raw 4- or 16-byte IP address.
    static func ipText(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return string(buffer)
    }

    private static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Reads an address from a `sockaddr_storage`.
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var sinAddr = address.sin_addr
            // inet_ntop fails only for a buffer too small or an unknown family, neither possible here.
            guard inet_ntop(AF_INET, &sinAddr, &buffer, socklen_t(buffer.count)) != nil else { return nil }
            self = .ipv4(host: Self.string(buffer), port: Int(UInt16(bigEndian: address.sin_port)))
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            var sinAddr = address.sin6_addr
            guard inet_ntop(AF_INET6, &sinAddr, &buffer, socklen_t(buffer.count)) != nil else { return nil }
            self = .ipv6(host: Self.string(buffer), port: Int(UInt16(bigEndian: address.sin6_port)))
        case AF_UNIX:
            let offset = MemoryLayout<sa_family_t>.size
            let abstract = withUnsafeBytes(of: &storage) { $0.count > offset && $0[offset] == 0 }
            let path = withUnsafeBytes(of: &storage) { raw -> String in
                // An abstract name's length is in the address length, which isn't kept: up to a NUL.
                let bytes = raw[(offset + (abstract ? 1 : 0))...].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            self = abstract && !path.isEmpty ? .unixAbstract(name: path) : .unix(path: path)
        default:
            return nil
        }
    }
}

/// Blocking-free socket helpers (the loop does the I/O; these only set sockets up).
enum Sockets {
    /// Creates a listening socket.
    ///
    /// - Returns: The socket and the address it is bound to (with the real port when `port` was 0).
    static func listen(on address: SocketAddress, backlog: Int32 = 1024) throws -> (fd: Int32, bound: SocketAddress) {
        let fd = try syscall("socket") { socket(address.family, CCourierLinux_SOCK_STREAM_CLOEXEC, 0) }
        do {
            if case .unix(let path) = address {
                try removeStaleSocket(at: path)
            } else {
                try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
                if case .ipv6 = address { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            }
            try address.withSockAddr { pointer, length -> Void in
                try syscall("bind(\(address))") { bind(fd, pointer, length) }
            }
            try syscall("listen") { Glibc.listen(fd, backlog) }
            return (fd, try localAddress(of: fd) ?? address)
        } catch {
            // Already failing; the descriptor is released whatever close(2) reports.
            try? Posix.close(fd)
            throw error
        }
    }

    /// Removes what a previous listener left at a Unix socket path (nothing there is fine).
    static func removeStaleSocket(at path: String) throws(IOError) {
        do {
            try syscall("unlink(\(path))") { unlink(path) }
        } catch  where error.errno == ENOENT {
            return
        }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        try syscall("setsockopt") { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    static func localAddress(of fd: Int32) throws -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try withUnsafeMutablePointer(to: &storage) { pointer throws(IOError) -> Void in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(IOError) -> Void in
                try syscall("getsockname") { getsockname(fd, address, &length) }
            }
        }
        return SocketAddress(storage: storage)
    }

    /// The peer's address; nil when the peer is already gone (`ENOTCONN`) or unknown.
    static func peerAddress(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        do {
            try withUnsafeMutablePointer(to: &storage) { pointer throws(IOError) -> Void in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(IOError) -> Void in
                    try syscall("getpeername") { getpeername(fd, address, &length) }
                }
            }
        } catch {
            // ENOTCONN (reset before we asked) or ENOBUFS: the peer is reported as unknown.
            return nil
        }
        return SocketAddress(storage: storage)
    }
}

internal import CCourierLinux
internal import Courier

#if canImport(Glibc)
internal import Glibc
#endif

/// Resolves host names without blocking a loop or a caller: `getaddrinfo` runs on a short-lived thread of
/// its own and the result is posted to the loop that asked.
///
/// A thread per lookup rather than a shared resolver thread: lookups are rare (a connection attempt), a
/// thread costs tens of microseconds, and there is no process-wide state to start or stop.
/// (`getaddrinfo_a` would spawn its own threads as well, and notify through signals or yet another thread.)
enum DNSResolver {
    /// Resolves `host`; `completion` runs on `loop` with every distinct IPv4/IPv6 address, in the
    /// resolver's order, or an `UNAVAILABLE` error.
    static func resolve(
        host: String,
        port: Int,
        on loop: EventLoop,
        _ completion: @escaping @Sendable (Result<[SocketAddress], RPCError>) -> Void
    ) {
        let job = Unmanaged.passRetained(
            ResolverJob {
                let result = lookUp(host: host, port: port)
                loop.execute { completion(result) }
            }
        )
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let rc = pthread_create(&thread, &attributes, resolverThreadEntry, job.toOpaque())
        if rc != 0 {
            job.release()
            let error = RPCError(
                code: .unavailable,
                message: "Could not resolve '\(host)': no thread for the lookup (errno \(rc))."
            )
            loop.execute { completion(.failure(error)) }
        }
    }

    /// The blocking lookup (on the resolver's thread).
    static func lookUp(host: String, port: Int) -> Result<[SocketAddress], RPCError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, result != nil else {
            let reason = String(cString: gai_strerror(rc))
            return .failure(
                RPCError(code: .unavailable, message: "Could not resolve '\(host.prefix(256))': \(reason).")
            )
        }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var entry = result
        while let current = entry {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.copyMemory(
                    from: UnsafeRawBufferPointer(start: current.pointee.ai_addr, count: Int(current.pointee.ai_addrlen))
                )
            }
            let address: SocketAddress? =
                switch SocketAddress(storage: storage) {
                case .ipv4(let ip, _): .ipv4(host: ip, port: port)
                case .ipv6(let ip, _): .ipv6(host: ip, port: port)
                default: nil
                }
            if let address, !addresses.contains(address) { addresses.append(address) }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else {
            return .failure(RPCError(code: .unavailable, message: "'\(host.prefix(256))' resolves to no IP address."))
        }
        return .success(addresses)
    }
}

/// What a resolver thread runs.
private final class ResolverJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A pthread entry point: a free function, so it carries no actor isolation.
private func resolverThreadEntry(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<ResolverJob>.fromOpaque(argument!).takeRetainedValue().body()
    return nil
}

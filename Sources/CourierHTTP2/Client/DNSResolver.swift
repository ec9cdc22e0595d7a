internal import CCourierLinux
internal import Courier

#if canImport(Glibc)
internal import Glibc
#endif

/// Resolves host names without blocking a loop or a caller: `getaddrinfo` runs on a short-lived thread of
/// its own and the caller awaits the result.
///
/// A thread per lookup rather than a shared resolver thread: lookups are rare (at most one per
/// ``HTTP2ClientTransport/Configuration/minimumResolutionInterval`` unless they fail), a thread costs
/// tens of microseconds, and there is no process-wide state to start or stop. (`getaddrinfo_a` would
/// spawn its own threads as well, and notify through signals or yet another thread.)
enum DNSResolver {
    /// Resolves `host`: every distinct IPv4/IPv6 address, in the resolver's order, or an `UNAVAILABLE`
    /// error. The calling task waits; no thread blocks but the lookup's own.
    static func resolve(host: String, port: Int) async -> Result<[SocketAddress], RPCError> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<[SocketAddress], RPCError>, Never>) in
            let job = Unmanaged.passRetained(
                ResolverJob { continuation.resume(returning: lookUp(host: host, port: port)) }
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
                    message: "Could not resolve '\(host.prefix(256))': no thread for the lookup (errno \(rc))."
                )
                continuation.resume(returning: .failure(error))
            }
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

internal import Courier

/// A client target, resolved as far as can be without I/O: the resolution (a fixed list, or the
/// sequence a resolver yields) and the default `:authority`.
struct ClientTarget: Sendable {
    let resolution: NameResolution
    let authority: String

    /// Known addresses (tests: several addresses without DNS).
    static func addresses(_ addresses: [SocketAddress]) -> ClientTarget {
        ClientTarget(resolution: NameResolution(addresses: addresses), authority: "localhost")
    }

    /// Parses `target` with `registry`'s resolvers (gRPC's naming doc; a scheme none knows means `dns`).
    ///
    /// - Throws: ``RuntimeError`` ``RuntimeError/Code/invalidArgument`` for a target that doesn't parse,
    ///   or whose scheme has no resolver.
    static func parse(_ target: String, registry: NameResolverRegistry = .defaults) throws(RuntimeError) -> ClientTarget
    {
        let parsed = ResolverTarget.parse(target, registry: registry)
        guard let resolver = registry.resolver(forScheme: parsed.scheme) else {
            throw RuntimeError(
                code: .invalidArgument,
                message: "Invalid target '\(target.prefix(256))': no resolver for the scheme '\(parsed.scheme)'."
            )
        }
        return ClientTarget(
            resolution: try resolver.resolution(for: parsed),
            authority: resolver.authority(for: parsed)
        )
    }

    static func invalid(_ target: ResolverTarget, _ why: String) -> RuntimeError {
        RuntimeError(code: .invalidArgument, message: "Invalid target '\(target.description.prefix(256))': \(why).")
    }

    /// Splits `host[:port]`, `[v6]:port` or `[v6]` (the port defaults to `defaultPort`).
    static func hostAndPort(
        _ text: Substring,
        defaultPort: Int,
        in target: ResolverTarget
    ) throws(RuntimeError) -> (host: String, port: Int) {
        let host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid(target, "unterminated IPv6 literal") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid(target, "unexpected text after ']'") }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else {
                throw invalid(target, "an IPv6 address needs brackets when a port follows ([addr]:port)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else { throw invalid(target, "missing host") }
        var port = defaultPort
        if let portText {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText),
                (1...65535).contains(value)
            else {
                throw invalid(target, "bad port '\(portText.prefix(16))'")
            }
            port = value
        }
        return (String(host), port)
    }

    /// An authority for `host` and `port` (`host:port`, `[v6]:port`).
    static func authority(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The host part of an authority (`host`, `host:port`, `[v6]:port`), for SNI and verification.
    static func host(ofAuthority authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        let colons = authority.filter { $0 == ":" }.count
        if colons == 1, let colon = authority.lastIndex(of: ":") { return String(authority[..<colon]) }
        return authority
    }
}

/// `dns:[//authority/]host[:port]` (port 443 by default), and every target without a known scheme. An IP
/// literal is used as it is; a name is resolved with `getaddrinfo` on a thread of its own, in pull mode.
/// A DNS server in the authority is refused: `getaddrinfo` asks the system's resolver.
struct DNSNameResolver: NameResolver {
    var scheme: String { "dns" }

    func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution {
        if let authority = target.authority, !authority.isEmpty {
            throw ClientTarget.invalid(
                target,
                "a DNS server authority is not supported (the system's resolver is used)"
            )
        }
        let (host, port) = try ClientTarget.hostAndPort(Substring(target.endpoint), defaultPort: 443, in: target)
        if SocketAddress.isIPLiteral(host) {
            return NameResolution(addresses: [
                host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
            ])
        }
        return NameResolution(updates: DNSLookups(host: host, port: port), mode: .pull)
    }

    func authority(for target: ResolverTarget) -> String {
        // `dns:///host:port` and `host:port` send `host:port`, as before the scheme existed.
        guard let (host, port) = try? ClientTarget.hostAndPort(Substring(target.endpoint), defaultPort: 443, in: target)
        else { return target.endpoint }
        return target.endpoint.hasSuffix(":\(port)") ? ClientTarget.authority(host: host, port: port) : host
    }
}

/// One `getaddrinfo` per `next()`.
struct DNSLookups: AsyncSequence, Sendable {
    typealias Element = Result<NameResolutionResult, RPCError>
    typealias Failure = Never

    let host: String
    let port: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        typealias Failure = Never
        let host: String
        let port: Int

        mutating func next() async -> Result<NameResolutionResult, RPCError>? {
            await DNSResolver.resolve(host: host, port: port).map { NameResolutionResult(addresses: $0) }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(host: host, port: port) }
}

/// `ipv4:addr[:port][,addr[:port]…]` and `ipv6:addr` / `ipv6:[addr][:port][,…]` (port 443 by default).
struct IPNameResolver: NameResolver {
    let scheme: String

    func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution {
        NameResolution(addresses: try addresses(of: target))
    }

    func addresses(of target: ResolverTarget) throws(RuntimeError) -> [SocketAddress] {
        if let authority = target.authority, !authority.isEmpty {
            throw ClientTarget.invalid(target, "an \(scheme) target has no authority")
        }
        let v6 = scheme == "ipv6"
        var addresses: [SocketAddress] = []
        for entry in target.endpoint.split(separator: ",", omittingEmptySubsequences: false) {
            guard !entry.isEmpty else { throw ClientTarget.invalid(target, "an empty address") }
            let host: String
            let port: Int
            if v6, !entry.hasPrefix("[") {
                (host, port) = (String(entry), 443)  // a bare IPv6 address: its colons are not a port
            } else {
                (host, port) = try ClientTarget.hostAndPort(entry, defaultPort: 443, in: target)
            }
            guard SocketAddress.isIPLiteral(host), host.contains(":") == v6 else {
                throw ClientTarget.invalid(target, "'\(host.prefix(64))' is not an \(v6 ? "IPv6" : "IPv4") address")
            }
            addresses.append(v6 ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port))
        }
        return addresses
    }

    func authority(for target: ResolverTarget) -> String {
        guard let first = try? addresses(of: target).first else { return target.endpoint }
        switch first {
        case .ipv4(let host, let port), .ipv6(let host, let port): return ClientTarget.authority(host: host, port: port)
        case .unix, .unixAbstract: return target.endpoint
        }
    }
}

/// `unix:path`, `unix:///absolute/path` and `unix-abstract:name` (Linux's abstract namespace).
struct UnixNameResolver: NameResolver {
    let scheme: String

    func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution {
        if scheme == "unix-abstract" {
            // Everything after the scheme is the name (it may hold any byte, '/' included).
            let name = target.authority.map { "//\($0)" + target.path } ?? target.path
            return NameResolution(addresses: [.unixAbstract(name: name)])
        }
        if let authority = target.authority, !authority.isEmpty {
            throw ClientTarget.invalid(target, "a unix target has no authority (unix:///absolute/path)")
        }
        guard !target.path.isEmpty, target.path != "/" else { throw ClientTarget.invalid(target, "no path") }
        if target.authority != nil, !target.path.hasPrefix("/") { throw ClientTarget.invalid(target, "no path") }
        return NameResolution(addresses: [.unix(path: target.path)])
    }

    func authority(for target: ResolverTarget) -> String { "localhost" }
}

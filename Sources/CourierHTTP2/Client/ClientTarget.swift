internal import Courier

/// A client target, parsed: where to connect, and the `:authority` to send. Parsing does no I/O; a name
/// is resolved later, off the loop and off the caller's thread (``DNSResolver``).
///
/// Accepted: `host:port`, `dns:///host:port`, `ipv4:addr:port`, `ipv6:[addr]:port`, `[v6]:port`,
/// `unix:path` and `unix:///absolute/path`.
enum ClientTarget: Equatable, Sendable {
    /// Addresses known without resolution (IP literals, a Unix socket).
    case addresses([SocketAddress])
    /// A name to resolve; every address it resolves to is tried in order.
    case dns(host: String, port: Int)

    /// Parses `target`, returning it and its default `:authority`.
    ///
    /// - Throws: ``RuntimeError`` ``RuntimeError/Code/invalidArgument`` for a target that doesn't parse.
    static func parse(_ target: String) throws(RuntimeError) -> (ClientTarget, authority: String) {
        func invalid(_ why: String) -> RuntimeError {
            RuntimeError(code: .invalidArgument, message: "Invalid target '\(target.prefix(256))': \(why).")
        }
        if target.hasPrefix("unix:") {
            let path = String(target.dropFirst("unix:".count).drop { $0 == "/" && target.hasPrefix("unix:///") })
            guard !path.isEmpty else { throw invalid("no path") }
            let absolute = target.hasPrefix("unix:///") ? "/" + path : path
            return (.addresses([.unix(path: absolute)]), "localhost")
        }
        var rest = Substring(target)
        for scheme in ["dns:///", "ipv4:", "ipv6:"] where rest.hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            break
        }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 literal") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw invalid("missing port") }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw invalid("missing port") }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard let port = Int(portText), (1...65535).contains(port) else { throw invalid("bad port") }
        guard !host.isEmpty else { throw invalid("missing host") }
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let hostString = String(host)
        if SocketAddress.isIPLiteral(hostString) {
            let address: SocketAddress =
                hostString.contains(":")
                ? .ipv6(host: hostString, port: port) : .ipv4(host: hostString, port: port)
            return (.addresses([address]), authority)
        }
        return (.dns(host: hostString, port: port), authority)
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

public import Courier
internal import CURing
#if canImport(Glibc)
internal import Glibc
#endif

/// A gRPC client transport over cleartext HTTP/2 (h2c, prior knowledge) on an io_uring event loop.
///
/// ```swift
/// let transport = try HTTP2ClientTransport(target: "127.0.0.1:50051")
/// try await withCourierClient(transport: transport) { client in ... }
/// ```
///
/// One connection multiplexes every RPC; streams beyond the server's MAX_CONCURRENT_STREAMS wait for a
/// free slot. The connection is made on the first RPC; RPCs started while it is being made wait for it,
/// and fail with `UNAVAILABLE` if it can't be made. Calls run with the connection's event loop as their
/// task executor, so the codec, the interceptors and the transport share its thread.
public final class HTTP2ClientTransport: ClientTransport, Sendable {
    /// Limits and tuning, with safe defaults.
    public struct Configuration: Sendable {
        /// The `:authority` to send; default: the target's `host:port`.
        public var authority: String?
        /// Each stream's receive window, opened only as the caller reads. Default 1 MiB.
        public var streamWindowBytes: Int
        /// The connection's receive window. Default 16 MiB.
        public var connectionWindowBytes: Int
        /// SETTINGS_MAX_HEADER_LIST_SIZE for responses. Default 16 KiB.
        public var maxHeaderListBytes: Int
        /// Request bytes buffered per stream before a writer suspends. Default 64 KiB.
        public var maxBufferedBytesPerStream: Int
        /// The delays between connection attempts while wait-for-ready calls wait.
        public var connectionBackoff: ConnectionBackoff
        /// TLS, or `nil` (the default) for cleartext HTTP/2 with prior knowledge (h2c). The server's name
        /// for SNI and certificate verification is the ``authority`` override's host, else the target's.
        /// See ``TLSConfiguration/client(trustRoots:certificateChainFile:privateKeyFile:)``.
        public var tls: TLSConfiguration?
        /// io_uring or epoll; `nil` (the default) is ``IOBackend/automatic``.
        public var ioBackend: IOBackend?

        /// The defaults.
        public init() {
            self.authority = nil
            self.streamWindowBytes = 1 << 20
            self.connectionWindowBytes = 16 << 20
            self.maxHeaderListBytes = 16 << 10
            self.maxBufferedBytesPerStream = 64 << 10
            self.connectionBackoff = ConnectionBackoff()
            self.tls = nil
            self.ioBackend = nil
        }

        /// The defaults.
        public static var defaults: Configuration { Configuration() }
    }

    private let loop: EventLoop
    let manager: HTTP2ConnectionManager
    /// The clock deadlines are enforced with: timers on the transport's loop.
    public let clock: any RPCClock

    private let streams = ClientStreamTracker()

    /// Creates a transport for a gRPC target: `host:port`, `dns:///host:port`, `ipv4:addr:port`,
    /// `ipv6:[addr]:port` or `unix:path`.
    ///
    /// - Parameters:
    ///   - target: Where the server is.
    ///   - configuration: Limits and tuning.
    /// - Throws: `RuntimeError`: `RuntimeError/Code/invalidArgument` for a target that doesn't parse
    ///   or resolve, `RuntimeError/Code/invalidConfiguration` for a TLS configuration whose files can't
    ///   be read or don't match.
    public init(target: String, configuration: Configuration = .defaults) throws {
        let (addresses, authority) = try Self.resolve(target)
        let tls = try configuration.tls.map { configuration throws(RuntimeError) in
            guard !configuration.isServer else {
                throw RuntimeError(code: .invalidConfiguration, message: "TLS: a client needs TLSConfiguration.client(...).")
            }
            return try TLSContext(configuration)
        }
        self.loop = try EventLoop(name: "courier-client", backend: configuration.ioBackend ?? .automatic)
        self.manager = HTTP2ConnectionManager(
            loop: loop,
            addresses: addresses,
            authority: configuration.authority ?? authority,
            configuration: configuration,
            tls: tls
        )
        self.clock = LoopClock(loop: loop)
    }

    deinit {
        let manager = self.manager
        loop.execute { manager.close() }
        loop.stop()
    }

    /// Waits until ``beginGracefulShutdown()`` has been called and every RPC has finished, then closes
    /// the connection and stops the loop. Cancelling the calling task closes at once.
    public func connect() async throws {
        await streams.waitUntilDrained()
        let manager = self.manager
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            loop.execute {
                manager.close()
                continuation.resume()
            }
        }
    }

    public func beginGracefulShutdown() {
        streams.beginShutdown()
    }

    /// Runs `body`, and the child tasks it creates, preferring the transport's event-loop thread.
    ///
    /// Every call runs its transport work on that thread; a caller already there makes its calls
    /// without a thread hop each way (a few microseconds per call). Load generators and other
    /// call-heavy code gain most; code that does heavy work of its own between calls should stay on the
    /// global executor so the loop keeps serving I/O.
    ///
    /// - Parameter body: The work.
    /// - Returns: What `body` returns.
    public func withExecutorPreference<Result>(_ body: () async throws -> Result) async rethrows -> Result {
        try await withTaskExecutorPreference(loop.taskExecutor) { try await body() }
    }

    public func withStream<Result: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ body: (any ClientTransportStream) async throws -> Result
    ) async throws -> Result {
        try streams.open()
        defer { streams.close() }
        let stream = HTTP2ClientStream(manager: manager, descriptor: descriptor, options: options)
        defer { stream.cancel() }
        return try await withTaskExecutorPreference(loop.taskExecutor) {
            try await body(stream)
        }
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

    /// Parses a target into the addresses to try, in order, and the default `:authority`.
    static func resolve(_ target: String) throws(RuntimeError) -> ([SocketAddress], String) {
        func invalid(_ why: String) -> RuntimeError {
            RuntimeError(code: .invalidArgument, message: "Invalid target '\(target.prefix(256))': \(why).")
        }
        if target.hasPrefix("unix:") {
            let path = String(target.dropFirst("unix:".count).drop { $0 == "/" && target.hasPrefix("unix:///") })
            guard !path.isEmpty else { throw invalid("no path") }
            let absolute = target.hasPrefix("unix:///") ? "/" + path : path
            return ([.unix(path: absolute)], "localhost")
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
        if let v4 = try? SocketAddress.ipv4(host: hostString, port: port).withSockAddr({ _, _ in true }), v4 {
            return ([.ipv4(host: hostString, port: port)], authority)
        }
        if let v6 = try? SocketAddress.ipv6(host: hostString, port: port).withSockAddr({ _, _ in true }), v6 {
            return ([.ipv6(host: hostString, port: port)], authority)
        }
        // A name: resolve it; every address is tried in order until one connects.
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(hostString, nil, &hints, &result) == 0, result != nil else {
            throw invalid("the host does not resolve")
        }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var entry = result
        while let current = entry {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(start: current.pointee.ai_addr, count: Int(current.pointee.ai_addrlen)))
            }
            switch SocketAddress(storage: storage) {
            case .ipv4(let address, _): addresses.append(.ipv4(host: address, port: port))
            case .ipv6(let address, _): addresses.append(.ipv6(host: address, port: port))
            default: break
            }
            entry = current.pointee.ai_next
        }
        var unique: [SocketAddress] = []
        for address in addresses where !unique.contains(address) { unique.append(address) }
        guard !unique.isEmpty else { throw invalid("the host resolves to no IP address") }
        return (unique, authority)
    }
}

extension ClientTransport where Self == HTTP2ClientTransport {
    /// A cleartext HTTP/2 (h2c) client transport.
    ///
    /// - Parameters:
    ///   - target: `host:port`, `dns:///host:port`, `ipv4:addr:port`, `ipv6:[addr]:port` or `unix:path`.
    ///   - configuration: Limits and tuning.
    public static func http2(target: String, configuration: HTTP2ClientTransport.Configuration = .defaults) throws -> Self {
        try HTTP2ClientTransport(target: target, configuration: configuration)
    }
}

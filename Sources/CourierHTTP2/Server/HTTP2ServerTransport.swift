@_spi(CourierInternals) public import Courier  // conforms to ServerTransport
public import Logging  // Configuration takes a Logger
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// A gRPC server transport over cleartext HTTP/2 (h2c, prior knowledge) on io_uring event loops.
///
/// ```swift
/// let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: 8080))
/// let server = CourierServer(transport: transport, services: [Greeter()])
/// try await server.run()
/// ```
///
/// Each connection is confined to one event loop (a thread with its own io_uring); each RPC's handler
/// runs in a task that prefers that loop as its executor, so receiving, decoding, the handler, encoding
/// and sending happen on one thread.
public final class HTTP2ServerTransport: ServerTransport, Sendable {
    /// Limits and tuning, with safe defaults.
    public struct Configuration: Sendable {
        /// Event loops (threads); default: one per core.
        public var loops: Int
        /// SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default 1024.
        public var maxConcurrentStreams: Int
        /// The flow-control window of each stream, opened only as the handler reads. Default 1 MiB.
        public var streamWindowBytes: Int
        /// The connection's flow-control window. Default 16 MiB.
        public var connectionWindowBytes: Int
        /// SETTINGS_MAX_HEADER_LIST_SIZE. Default 16 KiB.
        public var maxHeaderListBytes: Int
        /// Response bytes buffered per stream before the handler's writer suspends. Default 64 KiB.
        public var maxBufferedBytesPerStream: Int
        /// TLS, or `nil` (the default) for cleartext HTTP/2 with prior knowledge (h2c). See
        /// ``TLSConfiguration/server(certificateChainFile:privateKeyFile:clientCertificates:trustRoots:)``.
        public var tls: TLSConfiguration?
        /// io_uring or epoll; `nil` (the default) is ``IOBackend/automatic``: `COURIER_IO` if set, else
        /// io_uring where the process may use it, else epoll.
        public var ioBackend: IOBackend?
        /// Connections served at once; more are accepted and closed at once. Default 10,000.
        public var maxConnections: Int
        /// How long a new connection may take to complete its TLS handshake (if any) and send the HTTP/2
        /// preface and SETTINGS before it is closed (slowloris). Default 10 s.
        public var handshakeTimeout: Duration
        /// RST_STREAM frames a client may send per second on one connection before the server answers
        /// GOAWAY(ENHANCE_YOUR_CALM) and closes it (HTTP/2 Rapid Reset, CVE-2023-44487). Default 500.
        public var maxStreamResetsPerSecond: Int
        /// After this long without a frame from a client, the server pings it; `nil`: never. Default 2 h
        /// (grpc-go's `keepalive.ServerParameters.Time`).
        public var keepaliveTime: Duration?
        /// How long that PING may wait for its ACK before the connection is closed (its RPCs are
        /// cancelled). Default 20 s (`Timeout`).
        public var keepaliveTimeout: Duration
        /// The shortest interval between a client's PINGs the server tolerates; sooner ones are strikes
        /// (grpc-go's `keepalive.EnforcementPolicy.MinTime`). Default 5 min.
        public var minPingInterval: Duration
        /// Whether a client may ping while it has no stream open (`PermitWithoutStream`); if not, such PINGs
        /// are strikes unless two hours apart. Default false.
        public var permitPingsWithoutStreams: Bool
        /// Strikes tolerated; one more and the server sends GOAWAY(ENHANCE_YOUR_CALM) with debug data
        /// `too_many_pings` and closes the connection. HEADERS or DATA sent by the server forgive them (a
        /// client may ping in answer). Default 2 (grpc-go's).
        public var maxPingStrikes: Int
        /// A connection with no stream for this long is drained (two-phase GOAWAY); `nil` (the default):
        /// never (`MaxConnectionIdle`).
        public var maxConnectionIdle: Duration?
        /// A connection older than this, ±10 % jitter, is drained; `nil` (the default): never
        /// (`MaxConnectionAge`). Behind load balancers this spreads long-lived clients over new backends.
        public var maxConnectionAge: Duration?
        /// After an aged connection's drain began, how long its RPCs may still run before the connection
        /// is closed and they are cancelled; `nil` (the default): as long as they like
        /// (`MaxConnectionAgeGrace`).
        public var maxConnectionAgeGrace: Duration?
        /// How long the first GOAWAY's PING may wait for its ACK before the final GOAWAY is sent anyway.
        /// Default 1 min (grpc-go's).
        public var goAwayPingTimeout: Duration
        /// After this long with nothing received, a connection gives back the memory it holds only for
        /// traffic: its receive buffer's pages (≈4 KiB resident per connection) and the capacity of its
        /// empty send buffers (which large responses grow). Its streams are untouched; the next bytes fault
        /// in a page again. `nil`: never. Default 1 s (released 1–2 s after the last bytes arrived).
        public var releaseIdleBuffersAfter: Duration?
        /// Whether starting the server sets glibc's malloc for large messages: allocations up to 8 MiB come
        /// from malloc's arenas and are reused, instead of each being mapped and faulted in again (1 MiB
        /// messages ran 2.4× faster that way). Process-wide, once, by the first transport that starts with it
        /// set; skipped when `GLIBC_TUNABLES` sets a malloc tunable. Default true.
        public var tunesMalloc: Bool
        /// Where connection events are logged: accepted and closed (debug, with the reason), TLS handshake
        /// failures, GOAWAY sent (info when it closes the connection: `too_many_pings`, Rapid Reset,
        /// protocol errors), keepalive, idle and age timers that end a connection. Default: a logger that
        /// discards everything (a library never bootstraps logging). Metadata keys: `network.peer.address`,
        /// `courier.reason`, `courier.http2.error_code`, `courier.http2.debug_data`, `courier.timer`.
        public var logger: Logger
        /// Told when a connection or stream opens or closes (on the connection's loop), for gauges:
        /// `CourierMetrics`' `ConnectionMetrics`. `nil` (the default): nobody.
        public var connectionObserver: (any ConnectionObserver)?

        /// The defaults.
        public init() {
            self.loops = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            self.maxConcurrentStreams = 1024
            self.streamWindowBytes = 1 << 20
            self.connectionWindowBytes = 16 << 20
            self.maxHeaderListBytes = 16 << 10
            self.maxBufferedBytesPerStream = 64 << 10
            self.tls = nil
            self.ioBackend = nil
            self.maxConnections = 10_000
            self.handshakeTimeout = .seconds(10)
            self.maxStreamResetsPerSecond = 500
            self.keepaliveTime = .seconds(2 * 60 * 60)
            self.keepaliveTimeout = .seconds(20)
            self.minPingInterval = .seconds(5 * 60)
            self.permitPingsWithoutStreams = false
            self.maxPingStrikes = 2
            self.maxConnectionIdle = nil
            self.maxConnectionAge = nil
            self.maxConnectionAgeGrace = nil
            self.goAwayPingTimeout = .seconds(60)
            self.releaseIdleBuffersAfter = .seconds(1)
            self.tunesMalloc = true
            self.logger = Logger(label: "courier.http2.server", factory: { _ in SwiftLogNoOpLogHandler() })
            self.connectionObserver = nil
        }

        /// The defaults.
        public static var defaults: Configuration { Configuration() }
    }

    private let address: SocketAddress
    private let configuration: Configuration
    private let state = CourierMutex<State>(State())
    private let boundAddress = CourierMutex<
        (address: SocketAddress?, waiters: [UnsafeContinuation<SocketAddress, any Error>], failure: RuntimeError?)
    >((nil, [], nil))

    private struct State {
        var listener: Listener?
        var shutdownRequested = false
    }

    /// Creates a transport that will listen on `address` (port 0 picks a free port; see
    /// ``listeningAddress()``).
    ///
    /// - Parameters:
    ///   - address: Where to listen.
    ///   - configuration: Limits and tuning.
    public init(address: SocketAddress, configuration: Configuration = .defaults) {
        self.address = address
        self.configuration = configuration
    }

    /// The address the transport is listening on, once it is; with port 0, the port the kernel chose.
    ///
    /// - Throws: The `RuntimeError` that listening failed with.
    public func listeningAddress() async throws -> SocketAddress {
        try await withUnsafeThrowingContinuation { continuation in
            let ready = boundAddress.withLock { state -> Result<SocketAddress, any Error>? in
                if let address = state.address { return .success(address) }
                if let failure = state.failure { return .failure(failure) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func resolveBoundAddress(_ result: Result<SocketAddress, RuntimeError>) {
        let waiters = boundAddress.withLock { state -> [UnsafeContinuation<SocketAddress, any Error>] in
            switch result {
            case .success(let address): state.address = address
            case .failure(let error): state.failure = error
            }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result.mapError { $0 }) }
    }

    public func listen(
        options: ServerTransportOptions,
        _ streamHandler: @escaping @Sendable (any ServerTransportStream) async -> Void
    ) async throws {
        if configuration.tunesMalloc { MallocTuning.applyOnce() }
        let listener: Listener
        do {
            let tls = try configuration.tls.map { configuration throws(RuntimeError) in
                guard configuration.isServer else {
                    throw RuntimeError(
                        code: .invalidConfiguration,
                        message: "TLS: a server needs TLSConfiguration.server(...)."
                    )
                }
                return try TLSContext(configuration)
            }
            listener = try Listener(
                address: address,
                configuration: configuration,
                options: options,
                tls: tls,
                handler: streamHandler
            )
        } catch let error as RuntimeError {
            resolveBoundAddress(.failure(error))
            throw error
        } catch {
            let runtimeError = RuntimeError(
                code: .transportError,
                message: "Could not listen on \(address): \(error)",
                cause: error
            )
            resolveBoundAddress(.failure(runtimeError))
            throw runtimeError
        }
        let shutdownEarly = state.withLock { state -> Bool in
            state.listener = listener
            return state.shutdownRequested
        }
        resolveBoundAddress(.success(listener.boundAddress))
        listener.start()
        if shutdownEarly { listener.beginGracefulShutdown() }
        await withTaskCancellationHandler {
            await listener.waitUntilFinished()
        } onCancel: {
            listener.abort()
        }
        await listener.stopLoops()
    }

    /// Times a quiet connection gave its receive buffer's pages back (for tests; 0 before it listens).
    var idleBufferReleasesForTesting: Int {
        state.withLock { $0.listener }?.idleBufferReleaseCount ?? 0
    }

    /// Handler tasks the listener has started so far (for tests; 0 before it listens).
    var handlerTasksStartedForTesting: Int {
        state.withLock { $0.listener }?.handlerTasksStarted ?? 0
    }

    public func beginGracefulShutdown() {
        let listener = state.withLock { state -> Listener? in
            state.shutdownRequested = true
            return state.listener
        }
        listener?.beginGracefulShutdown()
    }
}

extension ServerTransport where Self == HTTP2ServerTransport {
    /// A cleartext HTTP/2 (h2c) server transport on io_uring event loops.
    ///
    /// - Parameters:
    ///   - address: Where to listen.
    ///   - configuration: Limits and tuning.
    public static func http2(
        address: SocketAddress,
        configuration: HTTP2ServerTransport.Configuration = .defaults
    ) -> Self {
        HTTP2ServerTransport(address: address, configuration: configuration)
    }
}

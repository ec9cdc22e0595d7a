@_spi(CourierInternals) public import Courier  // conforms to ClientTransport
public import Logging  // Configuration takes a Logger
internal import Synchronization

/// A gRPC client transport over HTTP/2 on an io_uring (or epoll) event loop: cleartext with prior
/// knowledge (h2c) by default, TLS with ``Configuration/tls``.
///
/// ```swift
/// let transport = try HTTP2ClientTransport(target: "127.0.0.1:50051")
/// try await withCourierClient(transport: transport) { client in ... }
/// ```
///
/// Creating the transport does no I/O and starts no thread: ``connect()`` (which `CourierClient/run()`
/// calls) starts its event loop and reads its TLS files, and stops the loop before it returns. RPCs made
/// before `connect()` has started wait for it. A name is resolved off the loop and off the caller's
/// thread when the first RPC needs a connection; a name that doesn't resolve fails RPCs with
/// `UNAVAILABLE` (wait-for-ready RPCs keep waiting while the transport retries with gRPC's connection
/// backoff).
///
/// One connection multiplexes every RPC; streams beyond the server's MAX_CONCURRENT_STREAMS wait for a
/// free slot. The connection is made on the first RPC. Calls run with the connection's event loop as
/// their task executor, so the codec, the interceptors and the transport share its thread.
///
/// Connection management: an attempt that hasn't connected, completed TLS and received the server's
/// SETTINGS within ``Configuration/connectTimeout`` (at least the current backoff delay) moves on to the
/// next address, or fails with `UNAVAILABLE`; a connection unused for ``Configuration/idleTimeout`` is
/// closed (the next RPC makes a new one); with ``Configuration/keepalive`` a connection that stops
/// answering is declared dead, its RPCs fail with `UNAVAILABLE` at once, and the next RPC makes a new
/// one.
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
        /// Keepalive PINGs (gRFC A8); `nil` (the default) sends none, as in gRPC.
        public var keepalive: Keepalive?
        /// How long a connection may go without RPCs before it is closed; the next RPC connects again.
        /// Default 30 minutes (grpc-go's channel idle timeout); `nil` keeps connections open. The check
        /// runs once per timeout, so an unused connection closes between one and two timeouts after its
        /// last RPC.
        public var idleTimeout: Duration?
        /// How long one connection attempt to one address may take, from the TCP connect to the server's
        /// SETTINGS (TLS included): gRPC's `MIN_CONNECT_TIMEOUT` (grpc/grpc doc/connection-backoff.md).
        /// An attempt gets the larger of this and the current backoff delay; when it runs out, the next
        /// address is tried, or the attempt fails with `UNAVAILABLE` and the backoff follows. Default 20 s;
        /// `nil`: no limit but the system's TCP timeouts.
        public var connectTimeout: Duration?
        /// Where connection events are logged: connected, connecting failed, closed and lost (with the
        /// reason), TLS handshake failures, GOAWAY received (info unless NO_ERROR, so `too_many_pings`
        /// shows), keepalive timeouts and idle closes. Default: a logger that discards everything (a library
        /// never bootstraps logging). Metadata keys: `server.address`, `courier.reason`,
        /// `courier.http2.error_code`, `courier.http2.debug_data`, `courier.event`.
        public var logger: Logger
        /// Told when a connection or stream opens or closes (on the connection's loop), for gauges:
        /// `CourierMetrics`' `ConnectionMetrics`. `nil` (the default): nobody.
        public var connectionObserver: (any ConnectionObserver)?
        /// Which connections carry the RPCs: ``LoadBalancingPolicy/pickFirst(shuffleAddressList:)`` (the
        /// default, as in gRPC: one connection) or ``LoadBalancingPolicy/roundRobin`` (one per address).
        public var loadBalancing: LoadBalancingPolicy
        /// The resolvers targets are resolved with, by scheme. Default: ``NameResolverRegistry/defaults``
        /// (`dns`, `ipv4`, `ipv6`, `unix`, `unix-abstract`); register your own for other schemes.
        public var resolvers: NameResolverRegistry
        /// The shortest time between two resolutions a pull-mode resolver (DNS) is asked for, when
        /// connections are lost or get GOAWAY: 30 s by default, gRPC's. Failed resolutions are retried
        /// with ``connectionBackoff`` instead.
        public var minimumResolutionInterval: Duration
        /// Whether connecting sets glibc's malloc for large messages, as
        /// ``HTTP2ServerTransport/Configuration/tunesMalloc`` describes (process-wide, once; skipped when
        /// `GLIBC_TUNABLES` sets a malloc tunable). Default true.
        public var tunesMalloc: Bool
        /// After this long with nothing received, a connection gives back the memory it holds only for
        /// traffic: its receive buffer's pages and the capacity of its empty send buffers, as the server's
        /// ``HTTP2ServerTransport/Configuration/releaseIdleBuffersAfter`` does. `nil`: never. Default 1 s.
        public var releaseIdleBuffersAfter: Duration?

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
            self.keepalive = nil
            self.idleTimeout = .seconds(30 * 60)
            self.connectTimeout = .seconds(20)
            self.logger = Logger(label: "courier.http2.client", factory: { _ in SwiftLogNoOpLogHandler() })
            self.connectionObserver = nil
            self.loadBalancing = .pickFirst()
            self.resolvers = .defaults
            self.minimumResolutionInterval = .seconds(30)
            self.tunesMalloc = true
            self.releaseIdleBuffersAfter = .seconds(1)
        }

        /// The defaults.
        public static var defaults: Configuration { Configuration() }

        /// Client-side keepalive (gRFC A8, grpc-go's `keepalive.ClientParameters`): after ``time``
        /// without receiving anything, the client sends a PING; if nothing arrives within ``timeout``
        /// after it, the connection is dead.
        ///
        /// Any received bytes count as activity, not only the PING's ACK. Activity is checked when the
        /// timer fires (grpc-go's way: no timer work per frame), so a PING goes out between one and two
        /// times ``time`` after the last bytes read. A server whose ping policy is stricter answers
        /// GOAWAY `too_many_pings`; the transport then doubles ``time`` for its later connections (A8).
        /// Servers limit pings (grpc's defaults: one per 5 minutes while streams are open, one per 2 hours
        /// without): agree on ``time`` with the server's owners.
        public struct Keepalive: Sendable, Hashable {
            /// The time without received bytes after which a PING is sent. Values below
            /// ``minimumTime`` (10 s) are raised to it, as in grpc-go.
            public var time: Duration
            /// How long to wait after the PING for any bytes before the connection is declared dead.
            /// Default 20 s; zero or less means the default.
            public var timeout: Duration
            /// Whether PINGs are sent while no RPC is open. Default false: an idle connection is not
            /// pinged (servers treat such pings as abuse unless they permit them); the first RPC after
            /// a quiet spell sends a PING before its HEADERS instead.
            public var permitWithoutCalls: Bool
            /// Lets tests use a time below ``minimumTime`` (package-internal).
            var allowsTimeBelowMinimum = false

            /// The smallest keepalive time: 10 s (gRFC A8, grpc-go).
            public static let minimumTime: Duration = .seconds(10)
            /// The default timeout: 20 s.
            public static let defaultTimeout: Duration = .seconds(20)

            /// Creates keepalive settings.
            ///
            /// - Parameters:
            ///   - time: The time without received bytes after which a PING is sent (at least 10 s).
            ///   - timeout: How long to wait for any bytes after the PING.
            ///   - permitWithoutCalls: Whether to ping while no RPC is open.
            public init(time: Duration, timeout: Duration = defaultTimeout, permitWithoutCalls: Bool = false) {
                self.time = time
                self.timeout = timeout
                self.permitWithoutCalls = permitWithoutCalls
            }

            /// ``time``, raised to ``minimumTime``.
            var effectiveTime: Duration {
                allowsTimeBelowMinimum ? max(time, .milliseconds(1)) : max(time, Self.minimumTime)
            }

            /// ``timeout``, or the default when it is not positive.
            var effectiveTimeout: Duration {
                timeout > .zero ? timeout : Self.defaultTimeout
            }
        }
    }

    /// The `user-agent` Courier sends.
    static let userAgent = "grpc-swift-courier/0.1"

    private let target: ClientTarget
    private let authority: String
    private let configuration: Configuration
    private let streams = ClientStreamTracker()
    private let lifecycle: Lifecycle
    /// The policy a service config chose (``applyLoadBalancingConfig(_:)``), over the configuration's.
    private let serviceConfigPolicy = CourierMutex<LoadBalancingPolicy?>(nil)
    private let connectivity = ConnectivityBroadcaster()
    /// What callers prefer and the loop runs task jobs on (the loop once it runs, else the global executor).
    private let executor = ClientTaskExecutor()
    /// The clock deadlines are enforced with: timers on the transport's loop (once it runs).
    public let clock: any RPCClock

    /// Creates a transport for a gRPC target (grpc/grpc doc/naming.md): `dns:[//authority/]host[:port]`
    /// (port 443 by default), `host:port` (the same as `dns:///host:port`), `ipv4:addr[:port][,addr[:port]…]`,
    /// `ipv6:addr` or `ipv6:[addr][:port][,…]`, `unix:path`, `unix:///absolute/path`, `unix-abstract:name`,
    /// or a scheme of a resolver registered in ``Configuration/resolvers``. Parses the target only: no
    /// I/O, no thread; a name that doesn't resolve fails RPCs with `UNAVAILABLE` later, not here.
    ///
    /// - Parameters:
    ///   - target: Where the server is.
    ///   - configuration: Limits and tuning.
    /// - Throws: `RuntimeError` `RuntimeError/Code/invalidArgument` for a target that doesn't parse,
    ///   `RuntimeError/Code/invalidConfiguration` for a TLS configuration meant for a server.
    public convenience init(target: String, configuration: Configuration = .defaults) throws {
        let parsed = try ClientTarget.parse(target, registry: configuration.resolvers)
        try self.init(target: parsed, authority: parsed.authority, configuration: configuration)
    }

    /// Creates a transport for a parsed target (tests: several addresses without DNS).
    init(target: ClientTarget, authority: String, configuration: Configuration) throws(RuntimeError) {
        if let tls = configuration.tls, tls.isServer {
            throw RuntimeError(
                code: .invalidConfiguration,
                message: "TLS: a client needs TLSConfiguration.client(...)."
            )
        }
        self.target = target
        self.authority = configuration.authority ?? authority
        self.configuration = configuration
        self.lifecycle = Lifecycle()
        self.clock = TransportClock(lifecycle: lifecycle)
    }

    /// Takes the load-balancing policy from a service config (`CourierClient` calls this when it is
    /// created): the first of `configs` this transport supports replaces ``Configuration/loadBalancing``
    /// for the connections `connect()` makes. Unsupported names are skipped; with none supported, the
    /// configuration's policy stays.
    ///
    /// - Parameter configs: The service config's `loadBalancingConfig`, in its order of preference.
    public func applyLoadBalancingConfig(_ configs: [LoadBalancingConfig]) {
        guard let policy = LoadBalancingPolicy.choosing(from: configs) else { return }
        serviceConfigPolicy.withLock { $0 = policy }
    }

    /// The load-balancing policy the next `connect()` uses.
    var effectiveLoadBalancing: LoadBalancingPolicy {
        serviceConfigPolicy.withLock { $0 } ?? configuration.loadBalancing
    }

    /// Starts the event loop and runs the connections until ``beginGracefulShutdown()`` has been called
    /// and every RPC has finished, then closes them and stops the loop. Cancelling the calling task
    /// closes at once.
    ///
    /// - Throws: `RuntimeError`: `RuntimeError/Code/transportIsAlreadyRunning` when called twice,
    ///   `RuntimeError/Code/invalidConfiguration` for TLS files that can't be read or don't match,
    ///   `RuntimeError/Code/transportError` if the event loop can't start.
    public func connect() async throws {
        try lifecycle.claim()
        if configuration.tunesMalloc { MallocTuning.applyOnce() }
        let running: Running
        // A pull-mode resolver resolves when the manager asks (one request pending at most).
        let requests: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)?
        if case .updates(.pull, _) = target.resolution.source {
            requests = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        } else {
            requests = nil
        }
        do {
            let tls = try configuration.tls.map { try TLSContext($0) }
            let loop: EventLoop
            do {
                loop = try EventLoop(
                    name: "courier-client",
                    backend: configuration.ioBackend ?? .automatic,
                    taskExecutor: executor
                )
            } catch {
                throw RuntimeError(
                    code: .transportError,
                    message: "Could not start the event loop: \(error)",
                    cause: error
                )
            }
            var configuration = self.configuration
            configuration.loadBalancing = effectiveLoadBalancing
            let manager = ClientConnectionManager(
                loop: loop,
                resolution: target.resolution.source,
                resolutionRequests: requests?.continuation,
                authority: authority,
                configuration: configuration,
                tls: tls,
                connectivity: connectivity
            )
            running = Running(loop: loop, manager: manager)
            executor.attach(loop)
        } catch {
            lifecycle.stop(failure: error as? RuntimeError)
            connectivity.publish(.shutdown)
            throw error
        }
        lifecycle.start(running)
        let manager = running.manager
        await withDiscardingTaskGroup { group in
            if case .updates(let mode, let makeIterator) = target.resolution.source {
                group.addTask {
                    await Self.runResolver(
                        mode: mode,
                        makeIterator: makeIterator,
                        requests: requests?.stream,
                        loop: running.loop,
                        manager: manager
                    )
                }
            }
            await streams.waitUntilDrained()
            // The connections close cleanly (TLS close_notify) and their sockets are closed before the loop
            // stops.
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                running.loop.execute {
                    manager.close { continuation.resume() }
                }
            }
            group.cancelAll()
        }
        connectivity.publish(.shutdown)
        lifecycle.stop(failure: nil)
        running.loop.stop()
        await running.loop.waitUntilStopped()
        executor.detach()
    }

    /// Reads the resolver's sequence: in pull mode one element per request the manager makes, in push
    /// mode every element as it comes; each result is applied on the loop. Ends with the sequence, the
    /// requests (the manager closed) or cancellation.
    private static func runResolver(
        mode: NameResolution.UpdateMode,
        makeIterator: @Sendable () -> ResolutionIterator,
        requests: AsyncStream<Void>?,
        loop: EventLoop,
        manager: ClientConnectionManager
    ) async {
        let iterator = makeIterator()
        switch mode {
        case .pull:
            guard let requests else { return }
            for await _ in requests {
                guard let result = await iterator.next() else { return }
                loop.execute { manager.resolved(result) }
            }
        case .push:
            while !Task.isCancelled, let result = await iterator.next() {
                loop.execute { manager.resolved(result) }
            }
        }
    }

    // MARK: Connectivity

    /// The transport's connectivity state now (grpc-go's `GetState`): ``ConnectivityState/idle`` until
    /// an RPC needs a connection, ``ConnectivityState/connecting`` while resolving or connecting,
    /// ``ConnectivityState/ready`` while a connection takes RPCs, ``ConnectivityState/transientFailure``
    /// after resolution or every connection failed (retrying with backoff), ``ConnectivityState/shutdown``
    /// once ``connect()`` has returned.
    public var connectivityState: ConnectivityState { connectivity.current }

    /// The connectivity state now, then every change, until ``ConnectivityState/shutdown`` (the last
    /// element). Changes come in order; a slow reader gets every one (the stream buffers them).
    ///
    /// - Returns: A sequence of states; cancel the reading task or drop it to stop watching.
    public func connectivityStateChanges() -> AsyncStream<ConnectivityState> {
        connectivity.changes()
    }

    /// Waits until the connectivity state is no longer `state` (grpc-go's `WaitForStateChange`), and
    /// returns the new one; returns at once when it already differs, and returns the state then when the
    /// calling task is cancelled.
    ///
    /// - Parameter state: The state to wait out.
    /// - Returns: The state it changed to.
    public func waitForStateChange(from state: ConnectivityState) async -> ConnectivityState {
        var last = connectivity.current
        for await next in connectivity.changes() {
            last = next
            if next != state { return next }
        }
        return last
    }

    public func beginGracefulShutdown() {
        streams.beginShutdown()
        lifecycle.shutDownBeforeStart()
    }

    /// Runs `body`, and the child tasks it creates, preferring the transport's event-loop thread while
    /// ``connect()`` runs it. Before the loop starts and after it stops, the same tasks run on the global
    /// concurrent executor, so `body` may start before ``connect()`` (around `withCourierClient`, say) and
    /// may outlive it.
    ///
    /// Every call runs its transport work on that thread; a caller already there makes its calls
    /// without a thread hop each way (a few microseconds per call). Load generators and other
    /// call-heavy code gain most; code that does heavy work of its own between calls should stay on the
    /// global executor so the loop keeps serving I/O.
    ///
    /// - Parameter body: The work.
    /// - Returns: What `body` returns.
    public func withExecutorPreference<Result>(_ body: () async throws -> Result) async rethrows -> Result {
        try await executor.withPreference { try await body() }
    }

    public func withStream<Result: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ body: (any ClientTransportStream) async throws -> Result
    ) async throws -> Result {
        try streams.open()
        defer { streams.close() }
        let running = try await lifecycle.waitUntilRunning()
        let stream = HTTP2ClientStream(
            loop: running.loop,
            router: running.manager,
            descriptor: descriptor,
            options: options,
            configuration: configuration
        )
        defer { stream.cancel() }
        // A caller on the loop's thread already prefers the loop (only its preferring tasks run there): no
        // preference to take, nor to look up (the lookup takes the task's status-record lock).
        if running.loop.inEventLoop { return try await body(stream) }
        return try await executor.withPreference { try await body(stream) }
    }

    /// The parts that exist while ``connect()`` runs.
    struct Running: Sendable {
        let loop: EventLoop
        let manager: ClientConnectionManager
    }

    /// Whether the caller runs on the transport's loop thread (false when no loop runs) (tests).
    var callerIsOnLoopThread: Bool { lifecycle.running?.loop.inEventLoop ?? false }

    /// Connection attempts made so far (tests).
    var connectionAttempts: Int {
        get async {
            guard let running = lifecycle.running else { return 0 }
            return await withUnsafeContinuation { continuation in
                running.loop.execute { continuation.resume(returning: running.manager.connectionAttempts) }
            }
        }
    }

    /// The subchannels' addresses and states, in address-list order (tests).
    var subchannelStates: [(addresses: [SocketAddress], state: LoadBalancerStateMachine.Subchannel.State)] {
        get async {
            guard let running = lifecycle.running else { return [] }
            return await withUnsafeContinuation { continuation in
                running.loop.execute { continuation.resume(returning: running.manager.subchannelStates) }
            }
        }
    }

    /// What the connection manager counted so far (tests).
    var counters: ClientConnectionManager.Counters {
        get async {
            guard let running = lifecycle.running else { return .init() }
            return await withUnsafeContinuation { continuation in
                running.loop.execute { continuation.resume(returning: running.manager.counters) }
            }
        }
    }

    /// Waits (for at most `timeout`) until `predicate` holds for the manager's counters: an explicit
    /// signal for tests. Returns the counters then, or `nil` if `timeout` passed first or the transport
    /// stopped.
    func waitForCounters(
        within timeout: Duration = .seconds(30),
        until predicate: @escaping @Sendable (ClientConnectionManager.Counters) -> Bool
    ) async throws -> ClientConnectionManager.Counters? {
        let running = try await lifecycle.waitUntilRunning()
        return await withUnsafeContinuation { continuation in
            running.loop.execute {
                running.manager.whenCounters(within: timeout, predicate) { continuation.resume(returning: $0) }
            }
        }
    }
}

extension HTTP2ClientTransport {
    /// Whether ``connect()`` has started, runs, or has stopped; RPCs made before it runs wait for it.
    final class Lifecycle: Sendable {
        private enum Phase {
            case notStarted
            case starting
            case running(Running)
            case stopped(RuntimeError?)
        }

        private struct State {
            var phase = Phase.notStarted
            var waiters: [UInt64: UnsafeContinuation<Running, any Error>] = [:]
            var nextWaiter: UInt64 = 0

            mutating func takeWaiters() -> [UnsafeContinuation<Running, any Error>] {
                defer { waiters.removeAll() }
                return Array(waiters.values)
            }
        }

        private let state = CourierMutex(State())

        /// The running parts, while `connect()` runs.
        var running: Running? {
            state.withLock { if case .running(let running) = $0.phase { running } else { nil } }
        }

        /// Marks `connect()` as started. Throws if it has been called before.
        func claim() throws(RuntimeError) {
            try state.withLock { state throws(RuntimeError) in
                guard case .notStarted = state.phase else {
                    throw RuntimeError(
                        code: .transportIsAlreadyRunning,
                        message: "The client transport is already running."
                    )
                }
                state.phase = .starting
            }
        }

        func start(_ running: Running) {
            let waiters = state.withLock { state in
                state.phase = .running(running)
                return state.takeWaiters()
            }
            for waiter in waiters { waiter.resume(returning: running) }
        }

        func stop(failure: RuntimeError?) {
            let waiters = state.withLock { state in
                state.phase = .stopped(failure)
                return state.takeWaiters()
            }
            let error = Self.notRunning(failure)
            for waiter in waiters { waiter.resume(throwing: error) }
        }

        /// Graceful shutdown before `connect()` runs: RPCs waiting for it fail.
        func shutDownBeforeStart() {
            let waiters = state.withLock { state -> [UnsafeContinuation<Running, any Error>] in
                guard case .notStarted = state.phase else { return [] }
                return state.takeWaiters()
            }
            let error = RPCError(code: .unavailable, message: "The client transport is shutting down.")
            for waiter in waiters { waiter.resume(throwing: error) }
        }

        private static func notRunning(_ failure: RuntimeError?) -> RPCError {
            RPCError(code: .unavailable, message: "The client transport is not running.", cause: failure)
        }

        /// The running parts; waits (cancellably) until `connect()` has started them.
        func waitUntilRunning() async throws -> Running {
            if let running { return running }
            let id = state.withLock { state -> UInt64 in
                defer { state.nextWaiter += 1 }
                return state.nextWaiter
            }
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Running, any Error>) in
                    let ready = state.withLock { state -> Result<Running, any Error>? in
                        switch state.phase {
                        case .running(let running):
                            return .success(running)
                        case .stopped(let failure):
                            return .failure(Self.notRunning(failure))
                        case .notStarted, .starting:
                            if Task.isCancelled {
                                return .failure(RPCError(code: .cancelled, message: "The RPC was cancelled."))
                            }
                            state.waiters[id] = continuation
                            return nil
                        }
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            } onCancel: {
                let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.resume(throwing: RPCError(code: .cancelled, message: "The RPC was cancelled."))
            }
        }
    }

    /// The transport's ``RPCClock``: timers on its loop. Deadlines are computed before a call's stream
    /// exists, so the clock exists before the loop does; timers are only scheduled once the loop runs.
    struct TransportClock: RPCClock {
        let lifecycle: Lifecycle

        var now: ContinuousClock.Instant { .now }

        func scheduleTimer(
            at deadline: ContinuousClock.Instant,
            _ action: @escaping @Sendable () -> Void
        ) -> any RPCTimer {
            if let loop = lifecycle.running?.loop { return loop.scheduleTimer(at: deadline, action) }
            return SystemRPCClock().scheduleTimer(at: deadline, action)
        }
    }
}

extension ClientTransport where Self == HTTP2ClientTransport {
    /// An HTTP/2 client transport (h2c unless the configuration has TLS).
    ///
    /// - Parameters:
    ///   - target: `host:port`, `dns:///host:port`, `ipv4:addr:port`, `ipv6:[addr]:port` or `unix:path`.
    ///   - configuration: Limits and tuning.
    /// - Throws: See ``HTTP2ClientTransport/init(target:configuration:)``.
    public static func http2(
        target: String,
        configuration: HTTP2ClientTransport.Configuration = .defaults
    ) throws -> Self {
        try HTTP2ClientTransport(target: target, configuration: configuration)
    }
}

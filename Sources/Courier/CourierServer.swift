public import Logging  // Configuration takes a Logger
internal import Synchronization

/// A gRPC server: routes the streams a ``ServerTransport`` accepts to the services' handlers.
///
/// ```swift
/// let server = CourierServer(transport: transport, services: [Greeter()])
/// try await server.run()  // until beginGracefulShutdown(), or cancelled
/// ```
///
/// Unknown methods are answered with `UNIMPLEMENTED`. A handler that throws an ``RPCError`` sends its
/// status; any other error is sent as `UNKNOWN` without its text. Each RPC runs in a task of its own,
/// made by the transport, and that task is cancelled when the client cancels, the connection is lost
/// or the deadline passes.
public final class CourierServer: Sendable {
    /// Limits applied to every RPC, on top of the transport's own.
    public struct Configuration: Sendable {
        /// The largest request message accepted, in bytes; larger ones fail the RPC with
        /// `RESOURCE_EXHAUSTED`. Default 4 MiB, as in gRPC. `nil` means no limit. The one knob for it:
        /// the transport receives it (``ServerTransportOptions``) and rejects a larger message from its
        /// length prefix, before buffering it, and stops decompressing at it.
        public var maxRequestMessageBytes: Int?
        /// The largest response message sent, in bytes; `nil` (the default) means no limit.
        public var maxResponseMessageBytes: Int?

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - maxRequestMessageBytes: See ``maxRequestMessageBytes``.
        ///   - maxResponseMessageBytes: See ``maxResponseMessageBytes``.
        public init(maxRequestMessageBytes: Int? = 4 * 1024 * 1024, maxResponseMessageBytes: Int? = nil) {
            self.maxRequestMessageBytes = maxRequestMessageBytes
            self.maxResponseMessageBytes = maxResponseMessageBytes
        }

        /// A 4 MiB request limit and no response limit.
        public static var defaults: Configuration { Configuration() }
    }

    private enum State {
        case notStarted
        case running
        case stopping
        case stopped
    }

    private let transport: any ServerTransport
    private let router: RPCRouter
    private let environment: ServerRPCEnvironment
    /// Per method, when some interceptors are conditional: the environment with that method's interceptors.
    private let environments: [String: ServerRPCEnvironment]?
    private let state = CourierMutex(State.notStarted)
    private let grace = GracePeriod()
    /// The drain signal and the service names, shared with every RPC's context.
    private let shared: ServerShared
    /// The interceptors that observe RPCs to methods nobody serves (metrics, request logs).
    private let unregisteredObservers: [any UnregisteredMethodObserving]

    /// Creates a server.
    ///
    /// - Parameters:
    ///   - transport: Where RPCs come from.
    ///   - services: The services to serve; a later service's method replaces an earlier one's.
    ///   - interceptors: Applied to every RPC, first to last.
    ///   - configuration: Limits.
    ///   - logger: Where the server logs (at debug level and below); nothing is logged by default.
    public convenience init(
        transport: some ServerTransport,
        services: [any RegistrableRPCService],
        interceptors: [any ServerInterceptor] = [],
        configuration: Configuration = .defaults,
        logger: Logger = Logger(label: "courier.server", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        var router = RPCRouter()
        for service in services { service.registerMethods(with: &router) }
        self.init(
            transport: transport,
            router: router,
            interceptors: interceptors,
            configuration: configuration,
            logger: logger
        )
    }

    /// Creates a server from a router built by hand.
    ///
    /// - Parameters:
    ///   - transport: Where RPCs come from.
    ///   - router: The handlers.
    ///   - interceptors: Applied to every RPC, first to last.
    ///   - configuration: Limits.
    ///   - logger: Where the server logs.
    public convenience init(
        transport: some ServerTransport,
        router: RPCRouter,
        interceptors: [any ServerInterceptor] = [],
        configuration: Configuration = .defaults,
        logger: Logger = Logger(label: "courier.server", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.init(
            transport: transport,
            router: router,
            interceptors: interceptors.map { .apply($0, to: .all) },
            configuration: configuration,
            logger: logger
        )
    }

    /// Creates a server whose interceptors apply to some methods only.
    ///
    /// Which interceptors a method gets is decided here, once per method of `services`: an RPC pays
    /// nothing for the conditions.
    ///
    /// - Parameters:
    ///   - transport: Where RPCs come from.
    ///   - services: The services to serve; a later service's method replaces an earlier one's.
    ///   - interceptors: Applied, first to last, to the methods of their subjects.
    ///   - configuration: Limits.
    ///   - logger: Where the server logs.
    public convenience init(
        transport: some ServerTransport,
        services: [any RegistrableRPCService],
        interceptors: [ConditionalInterceptor<any ServerInterceptor>],
        configuration: Configuration = .defaults,
        logger: Logger = Logger(label: "courier.server", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        var router = RPCRouter()
        for service in services { service.registerMethods(with: &router) }
        self.init(
            transport: transport,
            router: router,
            interceptors: interceptors,
            configuration: configuration,
            logger: logger
        )
    }

    /// Creates a server from a router built by hand, with interceptors that apply to some methods only.
    ///
    /// - Parameters:
    ///   - transport: Where RPCs come from.
    ///   - router: The handlers.
    ///   - interceptors: Applied, first to last, to the methods of their subjects.
    ///   - configuration: Limits.
    ///   - logger: Where the server logs.
    public init(
        transport: some ServerTransport,
        router: RPCRouter,
        interceptors: [ConditionalInterceptor<any ServerInterceptor>],
        configuration: Configuration = .defaults,
        logger: Logger = Logger(label: "courier.server", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.transport = transport
        self.router = router
        let environment = ServerRPCEnvironment(
            interceptors: Courier.interceptors(interceptors, applyingTo: nil),
            maxRequestMessageBytes: configuration.maxRequestMessageBytes,
            maxResponseMessageBytes: configuration.maxResponseMessageBytes,
            logger: logger
        )
        self.environment = environment
        self.shared = ServerShared(
            serviceNames: Set(router.handlers.values.map(\.descriptor.service.fullyQualifiedService)).sorted()
        )
        // An unknown method belongs to no service nor method: only interceptors of every method see it.
        self.unregisteredObservers = Courier.interceptors(interceptors.filter(\.subject.isAll), applyingTo: nil)
            .compactMap { $0 as? any UnregisteredMethodObserving }
        if interceptors.allSatisfy(\.subject.isAll) {
            self.environments = nil
        } else {
            var environments: [String: ServerRPCEnvironment] = [:]
            for (path, route) in router.handlers {
                var specific = environment
                specific.interceptors = Courier.interceptors(interceptors, applyingTo: route.descriptor)
                environments[path] = specific
            }
            self.environments = environments
        }
    }

    /// Serves RPCs until ``beginGracefulShutdown(grace:)`` has been called and every running RPC has finished.
    ///
    /// Cancelling the calling task aborts: listening stops and every running RPC is cancelled.
    ///
    /// - Throws: ``RuntimeError`` ``RuntimeError/Code/serverIsAlreadyRunning`` if the server runs or has
    ///   run; the transport's ``RuntimeError`` if listening fails.
    public func run() async throws {
        let start = state.withLock { state -> State in
            let old = state
            if case .notStarted = old { state = .running }
            return old
        }
        switch start {
        case .notStarted:
            break
        case .stopping, .stopped:
            // Shut down before it started: nothing to serve.
            state.withLock { $0 = .stopped }
            return
        case .running:
            throw RuntimeError(code: .serverIsAlreadyRunning, message: "The server is already running.")
        }
        defer { state.withLock { $0 = .stopped } }

        let router = self.router
        let environment = self.environment
        let environments = self.environments
        let transport = self.transport
        let grace = self.grace
        let shared = self.shared
        let unregisteredObservers = self.unregisteredObservers
        let options = ServerTransportOptions(maxRequestMessageBytes: environment.maxRequestMessageBytes)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await transport.listen(options: options) { stream in
                    await Self.serve(
                        stream: stream,
                        router: router,
                        environment: environment,
                        environments: environments,
                        shared: shared,
                        unregisteredObservers: unregisteredObservers
                    )
                }
            }
            // Ends the drain when its grace period has passed: cancelling `listen` aborts, which cancels the
            // RPCs still running and closes their connections.
            group.addTask {
                guard let period = await grace.waitForStart() else { return }
                do {
                    try await Task.sleep(for: period)
                } catch {
                    return  // cancelled: listen returned first (every RPC finished in time)
                }
                throw GracePeriod.Expired()
            }
            do {
                try await group.next()
            } catch is GracePeriod.Expired {
                environment.logger.debug("The shutdown's grace period passed; cancelling the RPCs left")
            }
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    /// Stops accepting RPCs; running ones finish, then ``run()`` returns.
    ///
    /// Over HTTP/2 every connection gets gRPC's two-phase GOAWAY: a first GOAWAY and a PING, so that RPCs
    /// the client sent meanwhile are still served, then the final GOAWAY; each connection closes when its
    /// last RPC has finished. Handlers see ``ServerContext/isDraining`` turn true and
    /// ``ServerContext/waitForDraining()`` return, so that long-lived streams can end.
    ///
    /// - Parameter grace: How long running RPCs may take; when it has passed they are cancelled (their
    ///   handlers' tasks too) and the connections closed, and ``run()`` returns. `nil` (the default): as
    ///   long as they take. The first grace given counts; later ones are ignored.
    public func beginGracefulShutdown(grace: Duration? = nil) {
        state.withLock { state in
            switch state {
            case .notStarted: state = .stopped
            case .running: state = .stopping
            case .stopping, .stopped: break
            }
        }
        if let grace { self.grace.start(grace) }
        shared.begin()
        transport.beginGracefulShutdown()
    }

    private static func serve(
        stream: any ServerTransportStream,
        router: RPCRouter,
        environment: ServerRPCEnvironment,
        environments: [String: ServerRPCEnvironment]?,
        shared: ServerShared,
        unregisteredObservers: [any UnregisteredMethodObserving]
    ) async {
        let path = stream.path
        guard let route = router.handlers[path] else {
            let start = unregisteredObservers.isEmpty ? nil : ContinuousClock.now
            let message = "Method '\(path.prefix(256))' is not implemented."
            try? await stream.write(.status(Status(code: .unimplemented, message: message), [:]))
            if let start {
                let duration = start.duration(to: .now)
                for observer in unregisteredObservers {
                    observer.observeUnregisteredMethod(path: path, peer: stream.peer, duration: duration)
                }
            }
            return
        }
        // The stream's own clock: over HTTP/2, the deadline is a timer on the loop serving the stream.
        let clock = stream.clock
        // A `let`, made whole: passed on without a copy (a `var` set after init was copied, a retain of
        // each of its references per RPC).
        let context = ServerContext(
            descriptor: route.descriptor,
            peer: stream.peer,
            deadline: stream.timeout.map { clock.now.advanced(by: $0) },
            clock: clock,
            requestCompression: stream.requestCompression,
            peerIdentity: stream.peerIdentity,
            transportStream: stream,
            server: shared
        )
        await route.handler(stream, context, environments?[path] ?? environment)
    }
}

/// The grace period of a graceful shutdown, waited for by ``CourierServer/run()``.
private final class GracePeriod: Sendable {
    struct Expired: Error {}

    private struct State {
        var period: Duration?
        var waiter: UnsafeContinuation<Duration?, Never>?
        var cancelled = false
    }

    private let state = CourierMutex(State())

    /// Starts the grace period; once started, later calls are ignored.
    func start(_ period: Duration) {
        let waiter = state.withLock { state -> UnsafeContinuation<Duration?, Never>? in
            guard state.period == nil else { return nil }
            state.period = period
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: period)
    }

    /// Suspends until a grace period starts; `nil` if the waiting task is cancelled first (the server stopped).
    func waitForStart() async -> Duration? {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Duration?, Never>) in
                let ready = state.withLock { state -> Duration?? in
                    if state.cancelled { return .some(nil) }
                    if let period = state.period { return .some(period) }
                    state.waiter = continuation
                    return .none
                }
                if case .some(let value) = ready { continuation.resume(returning: value) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> UnsafeContinuation<Duration?, Never>? in
                state.cancelled = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

/// Runs a server for the duration of `body`, then shuts it down gracefully.
///
/// The server runs in a child task. When `body` returns, the server stops accepting RPCs and this
/// function returns once running RPCs have finished. If `body` throws, the server is aborted (running
/// RPCs are cancelled) and the error is rethrown.
///
/// - Parameters:
///   - transport: Where RPCs come from.
///   - services: The services to serve.
///   - interceptors: Applied to every RPC, first to last.
///   - configuration: Limits.
///   - logger: Where the server logs.
///   - isolation: The caller's actor, inferred.
///   - body: Runs while the server serves.
/// - Returns: What `body` returns.
public func withCourierServer<Result: Sendable>(
    transport: some ServerTransport,
    services: [any RegistrableRPCService],
    interceptors: [any ServerInterceptor] = [],
    configuration: CourierServer.Configuration = .defaults,
    logger: Logger = Logger(label: "courier.server", factory: { _ in SwiftLogNoOpLogHandler() }),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (CourierServer) async throws -> Result
) async throws -> Result {
    let server = CourierServer(
        transport: transport,
        services: services,
        interceptors: interceptors,
        configuration: configuration,
        logger: logger
    )
    return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
        group.addTask { try await server.run() }
        do {
            let result = try await body(server)
            server.beginGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

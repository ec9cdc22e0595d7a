public import Courier
internal import CURing
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
        }

        /// The defaults.
        public static var defaults: Configuration { Configuration() }
    }

    private let address: SocketAddress
    private let configuration: Configuration
    private let state = Mutex<State>(State())
    private let boundAddress = Mutex<(address: SocketAddress?, waiters: [UnsafeContinuation<SocketAddress, any Error>], failure: RuntimeError?)>((nil, [], nil))

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
        let listener: Listener
        do {
            let tls = try configuration.tls.map { configuration throws(RuntimeError) in
                guard configuration.isServer else {
                    throw RuntimeError(
                        code: .invalidConfiguration, message: "TLS: a server needs TLSConfiguration.server(...)."
                    )
                }
                return try TLSContext(configuration)
            }
            listener = try Listener(
                address: address, configuration: configuration, options: options, tls: tls, handler: streamHandler
            )
        } catch let error as RuntimeError {
            resolveBoundAddress(.failure(error))
            throw error
        } catch {
            let runtimeError = RuntimeError(
                code: .transportError, message: "Could not listen on \(address): \(error)", cause: error
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
    public static func http2(address: SocketAddress, configuration: HTTP2ServerTransport.Configuration = .defaults) -> Self {
        HTTP2ServerTransport(address: address, configuration: configuration)
    }
}

extension HTTP2ServerTransport {
    /// Accepts connections, owns them and the handler tasks; the part of the transport that lives while
    /// it listens.
    final class Listener: @unchecked Sendable {
        // @unchecked Sendable: `connections` and the accept state are touched on loops[0] or the
        // connection's own loop only; shared counters are behind `state`.
        let loops: [EventLoop]
        let boundAddress: SocketAddress
        private let listenFD: Int32
        private let configuration: Configuration
        /// What the server asks of every stream.
        let options: ServerTransportOptions
        let tls: TLSContext?
        private let handler: @Sendable (any ServerTransportStream) async -> Void
        private var acceptHandler: AcceptHandler!
        private var accepting = false
        private var nextLoop = 0

        private struct Shared {
            var connections: [ObjectIdentifier: HTTP2ServerConnection] = [:]
            var tasks: [UInt64: Task<Void, Never>] = [:]
            var finishedTasks: Set<UInt64> = []
            var nextTaskID: UInt64 = 0
            var activeTasks = 0
            var shuttingDown = false
            var aborted = false
            var acceptClosed = false
            var finished = false
            var finishWaiters: [UnsafeContinuation<Void, Never>] = []
        }
        private let shared = Mutex(Shared())

        init(
            address: SocketAddress,
            configuration: Configuration,
            options: ServerTransportOptions,
            tls: TLSContext?,
            handler: @escaping @Sendable (any ServerTransportStream) async -> Void
        ) throws {
            self.tls = tls
            self.options = options
            let (fd, bound) = try Sockets.listen(on: address)
            self.listenFD = fd
            self.boundAddress = bound
            self.configuration = configuration
            self.handler = handler
            var loops: [EventLoop] = []
            do {
                for index in 0..<max(1, configuration.loops) {
                    loops.append(try EventLoop(name: "courier-loop-\(index)", backend: configuration.ioBackend ?? .automatic))
                }
            } catch {
                for loop in loops { loop.stop(); loop.join() }
                close(fd)
                throw error
            }
            self.loops = loops
            self.acceptHandler = AcceptHandler(listener: self)
        }

        func start() {
            loops[0].execute { self.armAccept() }
        }

        private func armAccept() {
            let closed = shared.withLock { $0.shuttingDown || $0.aborted }
            guard !closed else {
                closeListenSocketIfIdle()
                return
            }
            accepting = true
            loops[0].submitAccept(fd: listenFD, handler: acceptHandler)
        }

        fileprivate func accepted(_ result: Int32) {
            accepting = false
            if result >= 0 {
                let loop = loops[nextLoop % loops.count]
                nextLoop &+= 1
                let fd = result
                loop.execute { self.open(fd: fd, on: loop) }
            }
            // EMFILE and friends: keep accepting; the next connection may fit.
            armAccept()
        }

        private func closeListenSocketIfIdle() {
            guard !accepting else { return }
            let close = shared.withLock { state -> Bool in
                guard !state.acceptClosed else { return false }
                state.acceptClosed = true
                return true
            }
            if close {
                Glibc.close(listenFD)
                if case .unix(let path) = boundAddress { unlink(path) }
                checkFinished()
            }
        }

        private func open(fd: Int32, on loop: EventLoop) {
            let refused = shared.withLock {
                $0.shuttingDown || $0.aborted || $0.connections.count >= configuration.maxConnections
            }
            if refused {
                Glibc.close(fd)
                return
            }
            let connection = HTTP2ServerConnection(fd: fd, loop: loop, owner: self, configuration: configuration)
            shared.withLock { $0.connections[ObjectIdentifier(connection)] = connection }
            connection.start()
        }

        func connectionClosed(_ connection: HTTP2ServerConnection) {
            shared.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
            checkFinished()
        }

        /// Starts a handler task for a stream, preferring the stream's loop.
        func serve(_ stream: HTTP2ServerStream) {
            let id = shared.withLock { state -> UInt64 in
                state.nextTaskID += 1
                state.activeTasks += 1
                return state.nextTaskID
            }
            let handler = self.handler
            let task = Task(executorPreference: stream.connection.loop.taskExecutor) {
                await handler(stream)
                self.taskFinished(id)
            }
            shared.withLock { state in
                if state.finishedTasks.remove(id) == nil { state.tasks[id] = task }
                if state.aborted { task.cancel() }
            }
        }

        private func taskFinished(_ id: UInt64) {
            shared.withLock { state in
                if state.tasks.removeValue(forKey: id) == nil { state.finishedTasks.insert(id) }
                state.activeTasks -= 1
            }
            checkFinished()
        }

        func beginGracefulShutdown() {
            let connections = shared.withLock { state -> [HTTP2ServerConnection] in
                state.shuttingDown = true
                return Array(state.connections.values)
            }
            loops[0].execute {
                Glibc.shutdown(self.listenFD, Int32(SHUT_RDWR))
                self.closeListenSocketIfIdle()
            }
            for connection in connections {
                connection.loop.execute { connection.beginGracefulShutdown() }
            }
            checkFinished()
        }

        func abort() {
            let (connections, tasks) = shared.withLock { state -> ([HTTP2ServerConnection], [Task<Void, Never>]) in
                state.shuttingDown = true
                state.aborted = true
                return (Array(state.connections.values), Array(state.tasks.values))
            }
            loops[0].execute {
                Glibc.shutdown(self.listenFD, Int32(SHUT_RDWR))
                self.closeListenSocketIfIdle()
            }
            for connection in connections {
                connection.loop.execute { connection.close(reason: "server aborted") }
            }
            for task in tasks { task.cancel() }
        }

        private func checkFinished() {
            let waiters = shared.withLock { state -> [UnsafeContinuation<Void, Never>] in
                guard state.shuttingDown, !state.finished, state.acceptClosed, state.connections.isEmpty,
                    state.activeTasks == 0
                else { return [] }
                state.finished = true
                defer { state.finishWaiters = [] }
                return state.finishWaiters
            }
            for waiter in waiters { waiter.resume() }
        }

        func waitUntilFinished() async {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let done = shared.withLock { state -> Bool in
                    if state.finished { return true }
                    state.finishWaiters.append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
        }

        func stopLoops() async {
            for loop in loops { loop.stop() }
            for loop in loops { await loop.waitUntilStopped() }
        }
    }
}

/// Accept completions of the listening socket.
private final class AcceptHandler: IOCompletionHandler {
    unowned let listener: HTTP2ServerTransport.Listener
    init(listener: HTTP2ServerTransport.Listener) { self.listener = listener }
    override func complete(result: Int32, flags: UInt32) { listener.accepted(result) }
}

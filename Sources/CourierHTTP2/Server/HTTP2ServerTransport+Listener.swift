@_spi(CourierInternals) internal import Courier
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

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
        /// Each loop's handler tasks, in the order of `loops`.
        private var pools: [HandlerPool] = []
        private var accepting = false
        private var nextLoop = 0

        private struct Shared {
            var connections: [ObjectIdentifier: HTTP2ServerConnection] = [:]
            var shuttingDown = false
            var aborted = false
            var acceptClosed = false
            var finished = false
            var finishWaiters: [UnsafeContinuation<Void, Never>] = []
        }
        private let shared = CourierMutex(Shared())
        private let idleBufferReleases = Atomic<Int>(0)

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
                    loops.append(
                        try EventLoop(name: "courier-loop-\(index)", backend: configuration.ioBackend ?? .automatic)
                    )
                }
            } catch {
                for loop in loops {
                    loop.stop()
                    loop.join()
                }
                // Already failing; the descriptor is released whatever close(2) reports.
                try? Posix.close(fd)
                throw error
            }
            self.loops = loops
            self.acceptHandler = AcceptHandler(listener: self)
            self.pools = makePools()
        }

        /// A listener with no socket of its own, serving the connections its caller opens with
        /// ``open(fd:on:)`` on `loop`: the fuzz targets (Tests/Fuzz) use it to feed one connection arbitrary
        /// bytes through a fake backend, with the whole server path (HPACK, frames, streams, handlers) behind.
        /// Nothing else creates one; ``start()`` must not be called on it.
        init(
            testingOn loop: EventLoop,
            configuration: Configuration,
            options: ServerTransportOptions,
            handler: @escaping @Sendable (any ServerTransportStream) async -> Void
        ) {
            self.tls = nil
            self.options = options
            self.listenFD = -1
            self.boundAddress = .unix(path: "")
            self.configuration = configuration
            self.handler = handler
            self.loops = [loop]
            self.acceptHandler = AcceptHandler(listener: self)
            self.pools = makePools()
        }

        /// Handler tasks started so far, on every loop (for tests).
        var handlerTasksStarted: Int { pools.reduce(0) { $0 + $1.tasksStarted } }

        /// Times a quiet connection gave its receive buffer's pages back, so far (for tests).
        var idleBufferReleaseCount: Int { idleBufferReleases.load(ordering: .relaxed) }

        /// A connection gave its receive buffer's pages back.
        func connectionReleasedIdleBuffers() {
            idleBufferReleases.add(1, ordering: .relaxed)
        }

        private func makePools() -> [HandlerPool] {
            loops.map { loop in
                HandlerPool(executor: loop.taskExecutor, handler: handler) { [weak self] in self?.checkFinished() }
            }
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

        /// Shuts the listening socket down (waking the accept in flight) and closes it once idle. On loops[0];
        /// a second call (an abort after a graceful shutdown) finds it closed and does nothing.
        private func stopAccepting() {
            guard !shared.withLock({ $0.acceptClosed }) else { return }
            loops[0].shutdownSocket(fd: listenFD)
            closeListenSocketIfIdle()
        }

        private func closeListenSocketIfIdle() {
            guard !accepting else { return }
            let close = shared.withLock { state -> Bool in
                guard !state.acceptClosed else { return false }
                state.acceptClosed = true
                return true
            }
            if close {
                loops[0].closeSocket(fd: listenFD)
                // The socket file goes with the listener. If it is gone already (someone removed it) or
                // can't be removed, nothing depends on it any more: the next listen replaces a stale file.
                if case .unix(let path) = boundAddress, unlink(path) != 0, errno != ENOENT {}
                checkFinished()
            }
        }

        /// Serves an accepted socket on `loop`, unless the listener is shutting down or full. On `loop`.
        func open(fd: Int32, on loop: EventLoop) {
            let refused = shared.withLock {
                $0.shuttingDown || $0.aborted || $0.connections.count >= configuration.maxConnections
            }
            if refused {
                loop.closeSocket(fd: fd)  // nothing was submitted on it
                return
            }
            let pool = pools[loops.firstIndex { $0 === loop } ?? 0]
            let connection = HTTP2ServerConnection(
                fd: fd,
                loop: loop,
                owner: self,
                handlers: pool,
                configuration: configuration,
                options: options
            )
            shared.withLock { $0.connections[ObjectIdentifier(connection)] = connection }
            connection.start()
        }

        func connectionClosed(_ connection: HTTP2ServerConnection) {
            shared.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
            checkFinished()
        }

        func beginGracefulShutdown() {
            let connections = shared.withLock { state -> [HTTP2ServerConnection] in
                state.shuttingDown = true
                return Array(state.connections.values)
            }
            for pool in pools { _ = pool.beginShutdown(abort: false) }
            loops[0].execute { self.stopAccepting() }
            for connection in connections {
                connection.loop.execute { connection.beginGracefulShutdown() }
            }
            checkFinished()
        }

        func abort() {
            // The pools first: once `shuttingDown` is set, any loop may find the listener quiet and
            // close them.
            for pool in pools { _ = pool.beginShutdown(abort: true) }
            let connections = shared.withLock { state -> [HTTP2ServerConnection] in
                state.shuttingDown = true
                state.aborted = true
                return Array(state.connections.values)
            }
            loops[0].execute { self.stopAccepting() }
            for connection in connections {
                connection.loop.execute { connection.close(reason: "server aborted") }
            }
        }

        /// Finishes once accepting has stopped, every connection has closed, every handler has returned
        /// and every pool's parked tasks have ended (each pool is closed once no handler runs anywhere).
        private func checkFinished() {
            let ready = shared.withLock { state in
                state.shuttingDown && !state.finished && state.acceptClosed && state.connections.isEmpty
            }
            guard ready, pools.allSatisfy(\.isQuiet) else { return }
            for pool in pools { pool.close() }
            guard pools.allSatisfy(\.isFinished) else { return }
            let waiters = shared.withLock { state -> [UnsafeContinuation<Void, Never>] in
                guard !state.finished else { return [] }
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

internal import Courier

/// Owns a client transport's connections, on the transport's loop: resolves the target (off the loop),
/// makes a connection when the last has failed, closed or gone away, and keeps wait-for-ready RPCs waiting
/// (with gRPC's connection backoff between attempts) while none can be made.
///
/// It also holds what outlives one connection: the keepalive time, doubled for later connections each
/// time a server answers GOAWAY `too_many_pings` (gRFC A8), and the connect timeout of the next attempt,
/// `max(configured, backoff)` (grpc/grpc doc/connection-backoff.md).
///
/// The ``HTTP2StreamRouter`` streams are opened through, and the delegate of its connections: streams
/// never call connections' owners, connections never open streams elsewhere themselves.
final class ClientConnectionManager: HTTP2StreamRouter, HTTP2ClientConnectionDelegate, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only.
    let loop: EventLoop
    let configuration: HTTP2ClientTransport.Configuration
    private let target: ClientTarget
    private let authority: String
    private let tls: TLSContext?
    /// The target's addresses, once resolved.
    private var addresses: [SocketAddress]?
    private var resolving = false
    private var current: HTTP2ClientConnection?
    /// Every connection until its socket is closed (a replaced one may still be finishing streams).
    private var live: [ObjectIdentifier: HTTP2ClientConnection] = [:]
    /// Streams waiting for a connection: for the name to resolve, or (wait-for-ready) for the next attempt.
    private var waiting: [HTTP2ClientStream] = []
    private var backoff: ConnectionBackoff.Iterator
    private var reconnectTimer: LoopTimer?
    /// Why the last attempt failed.
    private var lastError: RPCError?
    private var closed = false
    private var closeCompletion: (() -> Void)?
    private var closeTimer: LoopTimer?
    /// The keepalive settings of the next connection (`time` doubles after `too_many_pings`).
    private var keepalive: ClientConnectionStateMachine.Configuration.Keepalive?
    /// What happened so far, for tests.
    private(set) var counters = Counters()
    private var counterWaiters:
        [UInt64: (predicate: (Counters) -> Bool, resume: (Counters?) -> Void, timer: LoopTimer?)] = [:]
    private var nextCounterWaiter: UInt64 = 0

    /// Connection attempts made so far (one per connection; it tries every resolved address).
    var connectionAttempts: Int { counters.connectionAttempts }

    /// Events counted for tests (loop-confined; read through ``HTTP2ClientTransport``).
    struct Counters: Sendable, Equatable {
        /// Connections made (each tries every resolved address).
        var connectionAttempts = 0
        /// Keepalive PINGs sent, over every connection.
        var keepalivePingsSent = 0
        /// Connections declared dead: no bytes within the keepalive timeout after a PING.
        var keepaliveTimeouts = 0
        /// Times keepalive went dormant (a quiet connection without streams, not pinged).
        var keepaliveDormancies = 0
        /// GOAWAY `too_many_pings` received (one per connection at most).
        var tooManyPings = 0
        /// Connections closed for being idle.
        var idleCloses = 0
        /// Connect timeouts (per address).
        var connectTimeouts = 0
        /// The keepalive time the next connection uses.
        var keepaliveTime: Duration?
    }

    init(
        loop: EventLoop,
        target: ClientTarget,
        authority: String,
        configuration: HTTP2ClientTransport.Configuration,
        tls: TLSContext?
    ) {
        self.loop = loop
        self.target = target
        self.authority = authority
        self.configuration = configuration
        self.tls = tls
        self.backoff = configuration.connectionBackoff.makeIterator()
        self.keepalive = configuration.keepalive.map {
            .init(time: $0.effectiveTime, timeout: $0.effectiveTimeout, permitWithoutCalls: $0.permitWithoutCalls)
        }
        self.counters.keepaliveTime = keepalive?.time
        if case .addresses(let known) = target { addresses = known }
    }

    // MARK: HTTP2StreamRouter

    func open(_ stream: HTTP2ClientStream) {
        loop.preconditionInEventLoop()
        guard !closed else {
            stream.connectionLost(RPCError(code: .unavailable, message: "The client transport is closed."))
            return
        }
        if reconnectTimer != nil {
            // Between attempts after a failure (gRPC's TRANSIENT_FAILURE): fail fast unless the call waits.
            if stream.options.waitForReady {
                stream.waitingForConnection(because: lastError?.message)
                waiting.append(stream)
            } else {
                stream.connectionLost(unreachable)
            }
            return
        }
        guard addresses != nil else {
            waiting.append(stream)
            resolve()
            return
        }
        connection().open(stream)
    }

    private var unreachable: RPCError {
        let reason = lastError.map { ": \($0.message)" } ?? "."
        return RPCError(code: .unavailable, message: "The server is unreachable; retrying the connection\(reason)")
    }

    private func connection() -> HTTP2ClientConnection {
        if let current, current.isUsable { return current }
        let management = ClientConnectionStateMachine.Configuration(
            connectTimeout: configuration.connectTimeout.map { max($0, backoff.upcoming) },
            keepalive: keepalive,
            idleTimeout: configuration.idleTimeout
        )
        let connection = HTTP2ClientConnection(
            delegate: self,
            loop: loop,
            addresses: addresses ?? [],
            authority: authority,
            configuration: configuration,
            management: management,
            tls: tls
        )
        current = connection
        live[ObjectIdentifier(connection)] = connection
        count { $0.connectionAttempts += 1 }
        connection.start()
        return connection
    }

    // MARK: Counters

    private func count(_ change: (inout Counters) -> Void) {
        change(&counters)
        guard !counterWaiters.isEmpty else { return }
        let snapshot = counters
        for (id, waiter) in counterWaiters where waiter.predicate(snapshot) {
            counterWaiters.removeValue(forKey: id)
            waiter.timer?.cancel()
            waiter.resume(snapshot)
        }
    }

    /// Calls `resume` with the counters once `predicate` holds for them (at once if it does now), or with
    /// `nil` after `timeout`. On the loop.
    func whenCounters(
        within timeout: Duration,
        _ predicate: @escaping (Counters) -> Bool,
        resume: @escaping (Counters?) -> Void
    ) {
        loop.preconditionInEventLoop()
        if predicate(counters) {
            resume(counters)
            return
        }
        let id = nextCounterWaiter
        nextCounterWaiter += 1
        // unowned(unsafe): see resolve(); close() cancels the timer.
        let timer = loop.scheduleTimer(at: .now.advanced(by: timeout)) { [unowned(unsafe) self] in
            self.counterWaiters.removeValue(forKey: id)?.resume(nil)
        }
        counterWaiters[id] = (predicate, resume, timer)
    }

    // MARK: Resolution

    private func resolve() {
        guard !resolving, case .dns(let host, let port) = target else { return }
        resolving = true
        DNSResolver.resolve(host: host, port: port, on: loop) { [unowned(unsafe) self] result in
            // unowned(unsafe): the manager outlives its loop's queued work (it is closed, and the loop
            // drained, before the transport lets go of it).
            self.resolved(result)
        }
    }

    private func resolved(_ result: Result<[SocketAddress], RPCError>) {
        resolving = false
        guard !closed else { return }
        switch result {
        case .success(let resolved):
            addresses = resolved
            let ready = waiting
            waiting = []
            for stream in ready { open(stream) }
        case .failure(let error):
            lastError = error
            failFastWaiting(with: error)
            scheduleReconnect()
        }
    }

    /// Fails the waiting streams that don't wait for ready.
    private func failFastWaiting(with error: RPCError) {
        var stillWaiting: [HTTP2ClientStream] = []
        for stream in waiting {
            if stream.options.waitForReady {
                stream.waitingForConnection(because: error.message)
                stillWaiting.append(stream)
            } else {
                stream.connectionLost(error)
            }
        }
        waiting = stillWaiting
    }

    // MARK: HTTP2ClientConnectionDelegate

    func connectionReady(_ connection: HTTP2ClientConnection) {
        backoff = configuration.connectionBackoff.makeIterator()
        lastError = nil
    }

    func connectionFailed(_ connection: HTTP2ClientConnection, waiting failed: [HTTP2ClientStream], error: RPCError) {
        if current === connection { current = nil }
        lastError = error
        for stream in failed {
            if stream.options.waitForReady && !closed {
                stream.waitingForConnection(because: error.message)
                waiting.append(stream)
            } else {
                stream.connectionLost(error)
            }
        }
        if case .dns = target { addresses = nil }  // resolve again before the next attempt
        scheduleReconnect()
    }

    func connectionGoingAway(_ connection: HTTP2ClientConnection) {
        if current === connection { current = nil }
    }

    func connectionClosed(_ connection: HTTP2ClientConnection) {
        if current === connection { current = nil }
        live.removeValue(forKey: ObjectIdentifier(connection))
        if closed, live.isEmpty { finishClosing() }
    }

    func reroute(_ stream: HTTP2ClientStream) {
        open(stream)
    }

    func connectionSentKeepalivePing(_ connection: HTTP2ClientConnection) {
        count { $0.keepalivePingsSent += 1 }
    }

    func connection(_ connection: HTTP2ClientConnection, observed event: ClientConnectionStateMachine.Event) {
        switch event {
        case .connectTimedOut:
            count { $0.connectTimeouts += 1 }
        case .keepaliveTimedOut:
            count { $0.keepaliveTimeouts += 1 }
        case .keepaliveDormant:
            count { $0.keepaliveDormancies += 1 }
        case .idle:
            if current === connection { current = nil }
            count { $0.idleCloses += 1 }
        case .tooManyPings:
            // gRFC A8: the server's ping policy is stricter than this client's keepalive time: later
            // connections use twice the time (capped far beyond any useful value, never overflowing).
            if var settings = keepalive {
                settings.time = min(settings.time * 2, .seconds(365 * 86_400))
                keepalive = settings
            }
            count {
                $0.tooManyPings += 1
                $0.keepaliveTime = keepalive?.time
            }
        }
    }

    private func scheduleReconnect() {
        guard reconnectTimer == nil, !closed else { return }
        let delay = backoff.next()
        // unowned(unsafe): see resolve(); the timer is cancelled in close().
        reconnectTimer = loop.scheduleTimer(at: .now.advanced(by: delay)) { [unowned(unsafe) self] in
            self.reconnectTimer = nil
            let waiting = self.waiting
            self.waiting = []
            // Nothing needs a connection: the next RPC makes one.
            for stream in waiting { self.open(stream) }
        }
    }

    // MARK: Closing

    /// Closes every connection (cleanly: TLS close_notify), then calls `completion` once their sockets
    /// are closed, or after ``closeWait`` at most, so that the loop can stop.
    func close(completion: @escaping () -> Void = {}) {
        loop.preconditionInEventLoop()
        closeCompletion = completion
        closed = true
        reconnectTimer?.cancel()
        reconnectTimer = nil
        let error = RPCError(code: .unavailable, message: "The client transport is closed.")
        let pending = waiting
        waiting = []
        for stream in pending { stream.connectionLost(error) }
        for connection in live.values { connection.close() }
        current?.close()
        let waiters = counterWaiters.values
        counterWaiters.removeAll()
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.resume(nil)
        }
        if live.isEmpty {
            finishClosing()
            return
        }
        // unowned(unsafe): see resolve(); the transport waits for the completion before letting go.
        closeTimer = loop.scheduleTimer(at: .now.advanced(by: Self.closeWait)) { [unowned(unsafe) self] in
            self.finishClosing()
        }
    }

    /// How long ``close(completion:)`` waits for the sockets to close (a TLS close lingers at most 1 s).
    static let closeWait: Duration = .seconds(2)

    private func finishClosing() {
        closeTimer?.cancel()
        closeTimer = nil
        let completion = closeCompletion
        closeCompletion = nil
        completion?()
    }
}

internal import Courier

/// Owns a client transport's connections, on the transport's loop: resolves the target (off the loop),
/// makes a connection when the last has failed, closed or gone away, and keeps wait-for-ready RPCs waiting
/// (with gRPC's connection backoff between attempts) while none can be made.
///
/// The ``HTTP2StreamRouter`` streams are opened through, and the delegate of its connections: streams
/// never call connections' owners, connections never open streams elsewhere themselves.
final class ClientConnectionManager: HTTP2StreamRouter, HTTP2ClientConnectionDelegate, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only, except `connectionAttempts` (read by
    // tests after the fact).
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
    /// Connection attempts made so far (one per connection; it tries every resolved address).
    private(set) var connectionAttempts = 0

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
        let connection = HTTP2ClientConnection(
            delegate: self, loop: loop, addresses: addresses ?? [], authority: authority,
            configuration: configuration, tls: tls
        )
        current = connection
        live[ObjectIdentifier(connection)] = connection
        connectionAttempts += 1
        connection.start()
        return connection
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
            if stream.options.waitForReady { stillWaiting.append(stream) } else { stream.connectionLost(error) }
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
            if stream.options.waitForReady && !closed { waiting.append(stream) } else { stream.connectionLost(error) }
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
    }

    func reroute(_ stream: HTTP2ClientStream) {
        open(stream)
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

    func close() {
        loop.preconditionInEventLoop()
        closed = true
        reconnectTimer?.cancel()
        reconnectTimer = nil
        let error = RPCError(code: .unavailable, message: "The client transport is closed.")
        let pending = waiting
        waiting = []
        for stream in pending { stream.connectionLost(error) }
        for connection in live.values { connection.close() }
        current?.close()
    }
}

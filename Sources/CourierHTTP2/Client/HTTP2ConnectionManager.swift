internal import Courier

/// Owns a client transport's connection: makes a new one when the last has failed or closed, and keeps
/// wait-for-ready RPCs waiting (with gRPC's connection backoff between attempts) while none can be made.
/// Confined to the transport's loop.
final class HTTP2ConnectionManager: @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only, except `connectionAttempts`, which
    // tests read after the fact.
    let loop: EventLoop
    /// The clock the transport's deadlines are enforced with.
    var clock: LoopClock { LoopClock(loop: loop) }
    let configuration: HTTP2ClientTransport.Configuration
    private let addresses: [SocketAddress]
    private let authority: String
    private var current: HTTP2ClientConnection?
    /// Every connection until its socket is closed (a replaced one may still be finishing streams).
    private var live: [ObjectIdentifier: HTTP2ClientConnection] = [:]
    private var waiting: [(HTTP2ClientStream, Metadata)] = []
    private var backoff: ConnectionBackoff.Iterator
    private var reconnectTimer: LoopTimer?
    private var closed = false
    /// Connection attempts made so far (one per address tried).
    var connectionAttempts = 0

    let tls: TLSContext?

    init(
        loop: EventLoop,
        addresses: [SocketAddress],
        authority: String,
        configuration: HTTP2ClientTransport.Configuration,
        tls: TLSContext? = nil
    ) {
        self.tls = tls
        self.loop = loop
        self.addresses = addresses
        self.authority = authority
        self.configuration = configuration
        self.backoff = configuration.connectionBackoff.makeIterator()
    }

    /// Opens a stream on the current connection, making one if needed.
    func open(_ stream: HTTP2ClientStream, metadata: Metadata) {
        loop.preconditionInEventLoop()
        guard !closed else {
            stream.fail(RPCError(code: .unavailable, message: "The client transport is closed."))
            return
        }
        if reconnectTimer != nil {
            // Between attempts after a failure: fail fast unless the call waits for ready.
            if stream.options.waitForReady {
                waiting.append((stream, metadata))
            } else {
                stream.fail(RPCError(code: .unavailable, message: "The server is unreachable; retrying the connection."))
            }
            return
        }
        connection().open(stream, metadata: metadata)
    }

    private func connection() -> HTTP2ClientConnection {
        if let current, current.isUsable { return current }
        let connection = HTTP2ClientConnection(
            manager: self, addresses: addresses, authority: authority, configuration: configuration
        )
        current = connection
        live[ObjectIdentifier(connection)] = connection
        connection.startConnecting()
        return connection
    }

    func connectionReady(_ connection: HTTP2ClientConnection) {
        backoff = configuration.connectionBackoff.makeIterator()
    }

    func connectionFailed(_ connection: HTTP2ClientConnection, pending: [(HTTP2ClientStream, Metadata)], error: RPCError) {
        if current === connection { current = nil }
        for (stream, metadata) in pending {
            if stream.options.waitForReady && !closed {
                waiting.append((stream, metadata))
            } else {
                stream.fail(error)
            }
        }
        scheduleReconnect()
    }

    func connectionClosed(_ connection: HTTP2ClientConnection) {
        if current === connection { current = nil }
        live.removeValue(forKey: ObjectIdentifier(connection))
    }

    /// The connection received GOAWAY: the next stream gets a new connection.
    func connectionGoingAway(_ connection: HTTP2ClientConnection) {
        if current === connection { current = nil }
    }

    private func scheduleReconnect() {
        guard reconnectTimer == nil, !closed else { return }
        let delay = backoff.next()
        reconnectTimer = loop.scheduleTimer(at: .now.advanced(by: delay)) { [unowned self] in
            self.reconnectTimer = nil
            let waiting = self.waiting
            self.waiting = []
            if waiting.isEmpty { return }  // nothing needs a connection; the next RPC makes one
            let connection = self.connection()
            for (stream, metadata) in waiting { connection.open(stream, metadata: metadata) }
        }
    }

    func close() {
        loop.preconditionInEventLoop()
        closed = true
        reconnectTimer?.cancel()
        reconnectTimer = nil
        let error = RPCError(code: .unavailable, message: "The client transport is closed.")
        for (stream, _) in waiting { stream.fail(error) }
        waiting = []
        for connection in live.values { connection.close() }
        current?.close()
    }
}

/// gRPC's connection backoff (grpc/grpc doc/connection-backoff.md): 1 s, ×1.6 per attempt, ±20 % jitter,
/// at most 120 s.
public struct ConnectionBackoff: Sendable, Hashable {
    /// The first delay. Default 1 s.
    public var initial: Duration
    /// The growth per attempt. Default 1.6.
    public var multiplier: Double
    /// The random spread, as a fraction of the delay. Default 0.2.
    public var jitter: Double
    /// The longest delay. Default 120 s.
    public var maximum: Duration

    /// Creates a backoff.
    ///
    /// - Parameters:
    ///   - initial: The first delay.
    ///   - multiplier: The growth per attempt.
    ///   - jitter: The random spread, as a fraction.
    ///   - maximum: The longest delay.
    public init(initial: Duration = .seconds(1), multiplier: Double = 1.6, jitter: Double = 0.2, maximum: Duration = .seconds(120)) {
        self.initial = initial
        self.multiplier = multiplier
        self.jitter = jitter
        self.maximum = maximum
    }

    struct Iterator {
        let backoff: ConnectionBackoff
        var current: Double

        mutating func next() -> Duration {
            let base = min(current, Self.seconds(backoff.maximum))
            current = min(current * backoff.multiplier, Self.seconds(backoff.maximum))
            let spread = base * backoff.jitter
            return .milliseconds(Int64(max(0, base + Double.random(in: -spread...spread)) * 1000))
        }

        static func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
    }

    func makeIterator() -> Iterator {
        Iterator(backoff: self, current: Iterator.seconds(initial))
    }
}

internal import Courier

/// The lifecycle of one client connection, as a value: events in, actions out. No C, no I/O.
///
/// ```
///  idle ─▶ connecting(i) ─TCP up─▶ handshaking ─server SETTINGS─▶ ready ─GOAWAY─▶ goingAway ─drained─▶ closed
///            │  └─failed, more addresses─▶ connecting(i+1)  │                 │                          ▲
///            └─failed, none left──────────────┴─TLS/IO/protocol failure───────┴──────lost────────────────┘
/// ```
///
/// Streams opened before the server's SETTINGS wait (its MAX_CONCURRENT_STREAMS is unknown until then,
/// and streams beyond it would be refused instead of queued). ``HTTP2ClientConnection`` performs the
/// actions. Keepalive, idle and connect timers belong here as ``Action/armTimer`` cases.
struct ClientConnectionStateMachine {
    enum State: Equatable {
        case idle
        /// A TCP connect to the address at this index is in flight.
        case connecting(addressIndex: Int)
        /// The socket is connected; TLS (if any) and the server's SETTINGS are pending.
        case handshaking
        /// Streams open at once.
        case ready
        /// The server sent GOAWAY: no new streams; the connection closes once its streams have ended.
        case goingAway(lastStreamID: Int32)
        /// Closed, after a failure (the error RPCs on it got) or a clean close.
        case closed(RPCError?)
    }

    /// What to do with a stream the caller wants opened here.
    enum StreamDecision: Equatable {
        /// Submit it now.
        case open
        /// Keep it until the connection is ready.
        case wait
        /// This connection takes no new streams: open it elsewhere.
        case reroute
        /// Fail it with this error.
        case fail(RPCError)
    }

    enum Action: Equatable {
        case none
        /// Start a TCP connect to the address at `addressIndex`.
        case connect(addressIndex: Int)
        /// The socket is connected: set up TLS (if any) and the session, send the preface and SETTINGS.
        case startSession
        /// The connection is ready: submit the waiting streams.
        case openWaitingStreams
        /// Connecting failed: the waiting streams fail (or wait elsewhere) with `error`; close.
        case connectFailed(RPCError)
        /// The server sent GOAWAY: waiting streams go elsewhere; open streams above `lastStreamID` were
        /// never processed and are sent again elsewhere; close once the rest have ended.
        case goingAway(lastStreamID: Int32)
        /// The connection is lost: every stream on it fails with `error`; close.
        case lost(RPCError)
        /// Close the socket (drained after GOAWAY, or closed by the owner).
        case close
    }

    let addresses: [SocketAddress]
    private(set) var state: State = .idle

    init(addresses: [SocketAddress]) {
        precondition(!addresses.isEmpty, "a connection needs an address")
        self.addresses = addresses
    }

    /// The address being connected to (or connected).
    private(set) var addressIndex = 0

    var address: SocketAddress { addresses[addressIndex] }

    /// Whether new streams can be opened here (now or once ready).
    var isUsable: Bool {
        switch state {
        case .idle, .connecting, .handshaking, .ready: true
        case .goingAway, .closed: false
        }
    }

    var isClosed: Bool {
        if case .closed = state { true } else { false }
    }

    mutating func start() -> Action {
        guard state == .idle else { return .none }
        state = .connecting(addressIndex: 0)
        addressIndex = 0
        return .connect(addressIndex: 0)
    }

    /// The TCP connect finished: `errno` is 0 on success.
    mutating func connectCompleted(errno: Int32, description: String) -> Action {
        guard case .connecting(let index) = state else { return .none }
        if errno == 0 {
            state = .handshaking
            return .startSession
        }
        if index + 1 < addresses.count {
            // Try the next address the name resolved to.
            addressIndex = index + 1
            state = .connecting(addressIndex: index + 1)
            return .connect(addressIndex: index + 1)
        }
        return connectFailed(RPCError(code: .unavailable, message: "Could not connect to \(addresses[index]): \(description)."))
    }

    /// The server's first SETTINGS arrived.
    mutating func receivedSettings() -> Action {
        guard state == .handshaking else { return .none }
        state = .ready
        return .openWaitingStreams
    }

    /// A stream should be opened here.
    func streamRequested() -> StreamDecision {
        switch state {
        case .ready: .open
        case .idle, .connecting, .handshaking: .wait
        case .goingAway: .reroute
        case .closed(let error): .fail(error ?? RPCError(code: .unavailable, message: "The connection is closed."))
        }
    }

    /// The server sent GOAWAY. A later GOAWAY may lower the last stream ID (grpc-go sends two).
    mutating func receivedGoAway(lastStreamID: Int32) -> Action {
        switch state {
        case .handshaking, .ready, .connecting:
            state = .goingAway(lastStreamID: lastStreamID)
            return .goingAway(lastStreamID: lastStreamID)
        case .goingAway(let previous):
            guard lastStreamID < previous else { return .none }
            state = .goingAway(lastStreamID: lastStreamID)
            return .goingAway(lastStreamID: lastStreamID)
        case .idle, .closed:
            return .none
        }
    }

    /// No stream is open or waiting any more.
    mutating func streamsDrained() -> Action {
        guard case .goingAway = state else { return .none }
        state = .closed(nil)
        return .close
    }

    /// TLS failed (the handshake, the certificate, a bad record).
    mutating func tlsFailed(_ reason: String) -> Action {
        switch state {
        case .connecting, .handshaking:
            return connectFailed(RPCError(code: .unavailable, message: "TLS with \(address) failed: \(reason)."))
        case .ready, .goingAway:
            return lose("TLS failed: \(reason)")
        case .idle, .closed:
            return .none
        }
    }

    /// The socket failed or the server closed it.
    mutating func transportFailed(_ reason: String) -> Action {
        switch state {
        case .connecting, .handshaking:
            return connectFailed(RPCError(code: .unavailable, message: "The connection to \(address) failed before it was ready: \(reason)."))
        case .ready, .goingAway:
            return lose(reason)
        case .idle, .closed:
            return .none
        }
    }

    /// The server's bytes are not HTTP/2, or nghttp2 ended the session (it wants neither to read nor to
    /// write): nothing more will come, so every RPC on the connection fails now.
    mutating func protocolViolation(_ reason: String) -> Action {
        transportFailed(reason)
    }

    /// The owner closes the connection.
    mutating func close() -> Action {
        guard !isClosed else { return .none }
        let error = RPCError(code: .unavailable, message: "The connection was closed.")
        state = .closed(error)
        return .lost(error)
    }

    private mutating func connectFailed(_ error: RPCError) -> Action {
        state = .closed(error)
        return .connectFailed(error)
    }

    private mutating func lose(_ reason: String) -> Action {
        let error = RPCError(code: .unavailable, message: "The connection was lost: \(reason).")
        state = .closed(error)
        return .lost(error)
    }
}

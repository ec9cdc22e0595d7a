/// The lifecycle of one server connection, as a value: events in, actions out. No C, no I/O, no clock
/// of its own (instants come with the events).
///
/// ```
///  handshaking ──SETTINGS──▶ active ──graceful shutdown──▶ draining ──last stream closed──▶ closing ──▶ closed
///       │                      │                               │                               ▲
///       └──handshake timer─────┴──connection error (GOAWAY)────┴───────────────────────────────┘
/// ```
///
/// ``HTTP2ServerConnection`` performs the actions: it owns the timers, the nghttp2 session and the socket.
/// A new timer (keepalive, idle, age) is a ``Timer`` case armed and handled here; a new frame the
/// connection reacts to is an event method here.
struct ServerConnectionStateMachine {
    struct Configuration {
        /// How long TLS, the preface and the client's SETTINGS may take.
        var handshakeTimeout: Duration
        /// RST_STREAMs a client may send per second before the connection is an attack (Rapid Reset).
        var maxStreamResetsPerSecond: Int
    }

    enum State: Equatable {
        /// Accepted; the client's preface and SETTINGS haven't arrived.
        case handshaking
        /// Serving.
        case active
        /// GOAWAY sent for a graceful shutdown: the open streams are served, no new ones.
        case draining
        /// Nothing more is served; the socket closes once the output (a GOAWAY) is out.
        case closing
        /// The socket is closed (or closing now).
        case closed
    }

    /// The connection's timers.
    enum Timer: Hashable {
        /// Closes a connection that hasn't completed its handshake.
        case handshake
    }

    enum Action: Equatable {
        case none
        case armTimer(Timer, at: ContinuousClock.Instant)
        case cancelTimer(Timer)
        /// Send GOAWAY(NO_ERROR) naming `lastStreamID`; close once it is out when `thenClose`.
        case goAway(lastStreamID: Int32, thenClose: Bool)
        /// A connection error: GOAWAY with `code` naming `lastStreamID`, every stream cancelled, no more
        /// reading; close once the GOAWAY is out.
        case terminate(lastStreamID: Int32, code: HTTP2ErrorCode)
        /// Stop reading; close once what is queued (nghttp2's own GOAWAY) is out.
        case closeWhenFlushed
        /// Close the socket now, cancelling every stream.
        case close(reason: String)
    }

    let configuration: Configuration
    private(set) var state: State = .handshaking
    /// Streams with a live request (counted from their first HEADERS to their close).
    private(set) var openStreams = 0
    /// The highest stream ID the client has opened.
    private(set) var highestStreamID: Int32 = 0
    private var resetWindowStart: ContinuousClock.Instant?
    private var resetsInWindow = 0

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether the connection still reads and serves new streams.
    var isServing: Bool { state == .handshaking || state == .active || state == .draining }

    /// The connection was accepted and its session set up.
    mutating func start(now: ContinuousClock.Instant) -> Action {
        .armTimer(.handshake, at: now.advanced(by: configuration.handshakeTimeout))
    }

    /// The client's SETTINGS arrived: the handshake is complete.
    mutating func receivedSettings() -> Action {
        guard state == .handshaking else { return .none }
        state = .active
        return .cancelTimer(.handshake)
    }

    /// A timer fired.
    mutating func timerFired(_ timer: Timer) -> Action {
        switch timer {
        case .handshake:
            guard state == .handshaking else { return .none }
            state = .closed
            return .close(reason: "no HTTP/2 preface and SETTINGS within the handshake timeout")
        }
    }

    /// A HEADERS frame begins on `streamID`. HEADERS that would open a stream at or below the highest ID
    /// already opened (stream-ID reuse) are a connection error (RFC 9113 §5.1.1) that nghttp2 alone would
    /// ignore; trailers on a stream nghttp2 still knows (`streamIsOpen`) are fine.
    mutating func headersBegin(streamID: Int32, streamIsOpen: Bool) -> Action {
        guard streamID > 0, isServing else { return .none }
        if streamID > highestStreamID {
            highestStreamID = streamID
            return .none
        }
        if streamIsOpen { return .none }
        return terminate(.protocolError)
    }

    /// A request head begins. False when nothing more is served (after a connection error).
    mutating func streamOpened() -> Bool {
        guard isServing else { return false }
        openStreams += 1
        return true
    }

    /// A stream that ``streamOpened()`` counted has closed.
    mutating func streamClosed() -> Action {
        openStreams -= 1
        guard state == .draining, openStreams == 0 else { return .none }
        state = .closing
        return .closeWhenFlushed
    }

    /// The client reset a stream; too many per second is an attack (Rapid Reset, CVE-2023-44487).
    mutating func receivedReset(now: ContinuousClock.Instant) -> Action {
        guard isServing else { return .none }
        if let start = resetWindowStart, start.duration(to: now) < .seconds(1) {
            resetsInWindow += 1
        } else {
            resetWindowStart = now
            resetsInWindow = 1
        }
        guard resetsInWindow > configuration.maxStreamResetsPerSecond else { return .none }
        return terminate(.enhanceYourCalm)
    }

    /// Graceful shutdown: GOAWAY now; the connection closes when its open streams have finished.
    mutating func beginGracefulShutdown(lastProcessedStreamID: Int32) -> Action {
        guard state == .handshaking || state == .active else { return .none }
        if openStreams == 0 {
            state = .closing
            return .goAway(lastStreamID: lastProcessedStreamID, thenClose: true)
        }
        state = .draining
        return .goAway(lastStreamID: lastProcessedStreamID, thenClose: false)
    }

    /// nghttp2 found a connection error in the received bytes (and has queued its GOAWAY).
    mutating func receivedProtocolViolation() -> Action {
        guard isServing else { return .none }
        state = .closing
        return .closeWhenFlushed
    }

    /// Everything queued has been sent. `sessionFinished`: nghttp2 wants neither to read nor to write.
    mutating func outputFlushed(sessionFinished: Bool) -> Action {
        switch state {
        case .closing:
            state = .closed
            return .close(reason: "closing")
        case .closed:
            return .none
        case .handshaking, .active, .draining:
            guard sessionFinished else { return .none }
            state = .closed
            return .close(reason: "session finished")
        }
    }

    /// The peer closed the socket, or an I/O or TLS operation failed.
    mutating func transportFailed(reason: String) -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .close(reason: reason)
    }

    private mutating func terminate(_ code: HTTP2ErrorCode) -> Action {
        state = .closing
        return .terminate(lastStreamID: highestStreamID, code: code)
    }
}

/// The lifecycle of one server connection, as a value: events in, actions out. No C, no I/O, no clock
/// of its own (instants come with the events).
///
/// ```
///  handshaking ──SETTINGS──▶ active ──drain──▶ draining ──PING ACK (or timeout): final GOAWAY──▶ … ──last stream──▶ closing ──▶ closed
///       │                      │                  │                                                                 ▲
///       └──handshake timer─────┴──connection error, too many pings, keepalive timeout, age grace───────────────────┘
/// ```
///
/// A drain — graceful shutdown, max connection idle, max connection age — is gRPC's two-phase GOAWAY:
/// GOAWAY with last-stream-id 2³¹−1 and a PING; once the PING is acknowledged (or a timeout passes), the
/// final GOAWAY with the real last stream ID. Streams that raced the first GOAWAY are served, not refused.
///
/// ``HTTP2ServerConnection`` performs the actions: it owns the timers, the nghttp2 session and the socket.
/// A new timer is a ``Timer`` case armed and handled here; a new frame the connection reacts to is an event
/// method here.
struct ServerConnectionStateMachine {
    struct Configuration {
        /// How long TLS, the preface and the client's SETTINGS may take.
        var handshakeTimeout: Duration
        /// RST_STREAMs a client may send per second before the connection is an attack (Rapid Reset).
        var maxStreamResetsPerSecond: Int
        /// After this long without a frame from the client, ping it; `nil`: never.
        var keepaliveTime: Duration? = nil
        /// How long a keepalive PING may wait for its ACK before the connection is closed.
        var keepaliveTimeout: Duration = .seconds(20)
        /// The shortest interval between the client's PINGs the server tolerates (grpc's enforcement policy).
        var minPingInterval: Duration = .seconds(300)
        /// Whether the client may ping while it has no stream open.
        var permitPingsWithoutStreams = false
        /// PINGs that break the policy before the server answers GOAWAY(ENHANCE_YOUR_CALM, `too_many_pings`).
        var maxPingStrikes = 2
        /// A connection with no stream for this long is drained; `nil`: never.
        var maxConnectionIdle: Duration? = nil
        /// A connection older than this (±10 % jitter) is drained; `nil`: never.
        var maxConnectionAge: Duration? = nil
        /// How long an aged connection's streams may run after its drain began; then it is closed. `nil`: as
        /// long as they like.
        var maxConnectionAgeGrace: Duration? = nil
        /// How long the first GOAWAY's PING may wait for its ACK before the final GOAWAY goes anyway.
        var goAwayPingTimeout: Duration = .seconds(60)
        /// After this long with nothing received, the connection gives its idle buffers back; `nil`: never.
        var releaseIdleBuffersAfter: Duration? = nil
    }

    enum State: Equatable {
        /// Accepted; the client's preface and SETTINGS haven't arrived.
        case handshaking
        /// Serving.
        case active
        /// Draining (see ``drainPhase``): the open streams are served.
        case draining
        /// Nothing more is served; the socket closes once the output (a GOAWAY) is out.
        case closing
        /// The socket is closed (or closing now).
        case closed
    }

    /// Where a drain is.
    enum DrainPhase: Equatable {
        /// The first GOAWAY (last-stream-id 2³¹−1) and its PING are out; streams still arrive and are served.
        case awaitingPingAck
        /// The final GOAWAY is out: no new streams; the connection closes when the last stream has.
        case final
    }

    /// The connection's timers.
    enum Timer: Hashable, CaseIterable {
        /// Closes a connection that hasn't completed its handshake.
        case handshake
        /// Pings a client that has been silent, then closes the connection if the ACK doesn't come.
        case keepalive
        /// Drains a connection that has had no stream for ``Configuration/maxConnectionIdle``.
        case idle
        /// Drains a connection older than ``Configuration/maxConnectionAge``.
        case age
        /// Closes an aged connection once its grace has passed.
        case ageGrace
        /// Sends the final GOAWAY when the first GOAWAY's PING isn't acknowledged in time.
        case goAwayPing
        /// Releases the idle buffers of a connection that received nothing for
        /// ``Configuration/releaseIdleBuffersAfter``.
        case quiet
    }

    enum Action: Equatable {
        case none
        case armTimer(Timer, at: ContinuousClock.Instant)
        case cancelTimer(Timer)
        /// Send GOAWAY(NO_ERROR) naming `lastStreamID`; the machine closes once it is out when `thenClose`.
        case goAway(lastStreamID: Int32, thenClose: Bool)
        /// Send a PING with this payload.
        case ping(UInt64)
        /// A connection error: GOAWAY with `code` and `debugData` naming `lastStreamID`, every stream
        /// cancelled, no more reading; close once the GOAWAY is out.
        case terminate(lastStreamID: Int32, code: HTTP2ErrorCode, debugData: String)
        /// Stop reading; close once what is queued (nghttp2's own GOAWAY) is out.
        case closeWhenFlushed
        /// Close the socket now (orderly: TLS's close_notify goes first), cancelling every stream.
        case close(reason: String)
        /// After the last GOAWAY is out (a connection error's, or a drain's final one): read and discard until the peer stops sending (or a
        /// short linger passes), then close as ``close(reason:)`` does. Closing a socket with unread bytes
        /// makes the kernel reset the connection, and a reset discards on the peer's side what it hasn't
        /// read yet, the GOAWAY that says why.
        case closeAfterDrainingInput(reason: String)
        /// Close the socket now without close_notify (the peer is gone), cancelling every stream.
        case abort(reason: String)
        /// Nothing arrived for a while: give back the buffers that a quiet connection doesn't need (the
        /// receive buffer's pages, empty send buffers' capacity). The streams are untouched.
        case releaseIdleBuffers

        /// Whether the action drains or closes the connection (what the connection logs a timer for).
        var endsConnection: Bool {
            switch self {
            case .goAway, .terminate, .close, .closeAfterDrainingInput, .abort: true
            case .none, .armTimer, .cancelTimer, .ping, .closeWhenFlushed, .releaseIdleBuffers: false
            }
        }
    }

    /// The payload of keepalive PINGs.
    static let keepalivePing: UInt64 = 0x636F_7572_6B61_6C76
    /// The payload of the first GOAWAY's PING.
    static let goAwayPing: UInt64 = 0x636F_7572_676F_6177
    /// The first GOAWAY's last stream ID: every stream the client may have sent is still served.
    static let maxStreamID = Int32.max

    let configuration: Configuration
    private(set) var state: State = .handshaking
    private(set) var drainPhase: DrainPhase?
    /// Streams with a live request (counted from their first HEADERS to their close).
    private(set) var openStreams = 0
    /// The highest stream ID the client has opened.
    private(set) var highestStreamID: Int32 = 0
    private var resetWindowStart: ContinuousClock.Instant?
    private var resetsInWindow = 0

    // Keepalive: a frame arrived since the timer last looked (a store per frame, nothing else).
    private(set) var activity = false
    private(set) var keepalivePingOutstanding = false

    // Ping enforcement, grpc-go's rule: a strike for each PING sooner than the policy allows; sending
    // HEADERS or DATA (which may make a client ping) forgives them.
    private var lastPingAt: ContinuousClock.Instant?
    private(set) var pingStrikes = 0
    /// The connection is closing because of a connection error (its GOAWAY has an error code).
    private(set) var closingAfterError = false
    private var forgivePingStrikes = false

    /// Since when the connection has had no stream (for max connection idle).
    private var idleSince: ContinuousClock.Instant?

    // Quiet connections: bytes arrived since the quiet timer last looked (a store per receive), and
    // whether the buffers were released (the timer is then disarmed until bytes arrive).
    private(set) var receivedSinceQuietCheck = false
    private(set) var idleBuffersReleased = false

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether the connection still reads and serves new streams.
    var isServing: Bool { state == .handshaking || state == .active || state == .draining }

    // MARK: Start and handshake

    /// The connection was accepted and its session set up. `ageJitter` in -1...1 spreads the age limit by
    /// ±10 % (so that connections made together don't all drain together).
    mutating func start(now: ContinuousClock.Instant, ageJitter: Double = 0) -> [Action] {
        var actions: [Action] = [.armTimer(.handshake, at: now.advanced(by: configuration.handshakeTimeout))]
        if let time = configuration.keepaliveTime { actions.append(.armTimer(.keepalive, at: now.advanced(by: time))) }
        if let idle = configuration.maxConnectionIdle {
            idleSince = now
            actions.append(.armTimer(.idle, at: now.advanced(by: idle)))
        }
        if let age = configuration.maxConnectionAge {
            let factor = 1 + 0.1 * min(1, max(-1, ageJitter))
            let (seconds, attoseconds) = age.components
            let milliseconds = (Double(seconds) * 1000 + Double(attoseconds) / 1e15) * factor
            actions.append(.armTimer(.age, at: now.advanced(by: .milliseconds(Int64(milliseconds.rounded())))))
        }
        if let quiet = configuration.releaseIdleBuffersAfter {
            actions.append(.armTimer(.quiet, at: now.advanced(by: quiet)))
        }
        return actions
    }

    /// The client's SETTINGS arrived: the handshake is complete.
    mutating func receivedSettings() -> Action {
        guard state == .handshaking else { return .none }
        state = .active
        return .cancelTimer(.handshake)
    }

    // MARK: Timers

    /// A timer fired.
    mutating func timerFired(_ timer: Timer, now: ContinuousClock.Instant) -> [Action] {
        switch timer {
        case .handshake:
            guard state == .handshaking else { return [] }
            state = .closed
            return [.close(reason: "no HTTP/2 preface and SETTINGS within the handshake timeout")]
        case .keepalive:
            guard isServing, let time = configuration.keepaliveTime else { return [] }
            if activity {
                activity = false
                keepalivePingOutstanding = false
                return [.armTimer(.keepalive, at: now.advanced(by: time))]
            }
            if keepalivePingOutstanding {
                state = .closed
                return [.abort(reason: "keepalive: no PING ACK within \(configuration.keepaliveTimeout)")]
            }
            keepalivePingOutstanding = true
            return [
                .ping(Self.keepalivePing), .armTimer(.keepalive, at: now.advanced(by: configuration.keepaliveTimeout)),
            ]
        case .idle:
            guard isServing, drainPhase == nil, let idle = configuration.maxConnectionIdle else { return [] }
            guard openStreams == 0, let since = idleSince else {
                return [.armTimer(.idle, at: now.advanced(by: idle))]  // busy: look again later
            }
            let due = since.advanced(by: idle)
            guard now >= due else { return [.armTimer(.idle, at: due)] }
            return drain(now: now)
        case .age:
            guard isServing else { return [] }
            var actions = drain(now: now)
            if let grace = configuration.maxConnectionAgeGrace {
                actions.append(.armTimer(.ageGrace, at: now.advanced(by: grace)))
            }
            return actions
        case .ageGrace:
            guard isServing else { return [] }
            state = .closed
            return [.close(reason: "max connection age: the grace period has passed")]
        case .goAwayPing:
            return finalGoAway()
        case .quiet:
            guard isServing, let quiet = configuration.releaseIdleBuffersAfter else { return [] }
            if receivedSinceQuietCheck {
                receivedSinceQuietCheck = false
                return [.armTimer(.quiet, at: now.advanced(by: quiet))]
            }
            // Not armed again until bytes arrive: a quiet connection costs no timer events.
            idleBuffersReleased = true
            return [.releaseIdleBuffers]
        }
    }

    // MARK: Frames

    /// Bytes arrived (one store per receive; `now` is read only when the buffers had been released, to
    /// arm the quiet timer again).
    mutating func bytesReceived(now: @autoclosure () -> ContinuousClock.Instant) -> Action {
        receivedSinceQuietCheck = true
        guard idleBuffersReleased, isServing, let quiet = configuration.releaseIdleBuffersAfter else { return .none }
        idleBuffersReleased = false
        receivedSinceQuietCheck = false
        return .armTimer(.quiet, at: now().advanced(by: quiet))
    }

    /// A frame arrived (anything counts as activity for keepalive).
    mutating func frameReceived() {
        activity = true
    }

    /// HEADERS or DATA went out: the client may ping in answer, so its strikes are forgiven.
    mutating func headersOrDataSent() {
        forgivePingStrikes = true
    }

    /// The client's PING (not an ACK): counted against the ping policy.
    mutating func receivedPing(now: ContinuousClock.Instant) -> Action {
        guard isServing else { return .none }
        defer { lastPingAt = now }
        if forgivePingStrikes {
            forgivePingStrikes = false
            pingStrikes = 0
            return .none
        }
        if let last = lastPingAt {
            // Without streams a client that doesn't have permission shouldn't ping at all: grpc-go allows one
            // every two hours then.
            let allowed =
                openStreams == 0 && !configuration.permitPingsWithoutStreams
                ? Duration.seconds(7200) : configuration.minPingInterval
            if last.duration(to: now) < allowed { pingStrikes += 1 }
        }
        guard pingStrikes > configuration.maxPingStrikes else { return .none }
        state = .closing
        closingAfterError = true
        return .terminate(lastStreamID: highestStreamID, code: .enhanceYourCalm, debugData: "too_many_pings")
    }

    /// The client acknowledged one of our PINGs.
    mutating func receivedPingAck(payload: UInt64) -> [Action] {
        switch payload {
        case Self.keepalivePing:
            keepalivePingOutstanding = false
            return []
        case Self.goAwayPing:
            return finalGoAway()
        default:
            return []
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
        idleSince = nil
        return true
    }

    /// A stream that ``streamOpened()`` counted has closed. `now` is read only when the connection tracks
    /// idleness.
    mutating func streamClosed(now: @autoclosure () -> ContinuousClock.Instant) -> Action {
        openStreams -= 1
        if openStreams == 0, configuration.maxConnectionIdle != nil { idleSince = now() }
        guard state == .draining, drainPhase == .final, openStreams == 0 else { return .none }
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

    // MARK: Draining and closing

    /// Graceful shutdown: the two-phase GOAWAY; the connection closes when its streams have finished.
    mutating func beginGracefulShutdown(now: ContinuousClock.Instant) -> [Action] {
        drain(now: now)
    }

    /// The first phase of a drain: GOAWAY(2³¹−1) and a PING, with a timer in case the ACK doesn't come.
    private mutating func drain(now: ContinuousClock.Instant) -> [Action] {
        guard state == .handshaking || state == .active else { return [] }
        state = .draining
        drainPhase = .awaitingPingAck
        return [
            .cancelTimer(.idle),
            .goAway(lastStreamID: Self.maxStreamID, thenClose: false),
            .ping(Self.goAwayPing),
            .armTimer(.goAwayPing, at: now.advanced(by: configuration.goAwayPingTimeout)),
        ]
    }

    /// The second phase: the final GOAWAY, naming the last stream the server will serve.
    private mutating func finalGoAway() -> [Action] {
        guard state == .draining, drainPhase == .awaitingPingAck else { return [] }
        drainPhase = .final
        let close = openStreams == 0
        if close { state = .closing }
        return [.cancelTimer(.goAwayPing), .goAway(lastStreamID: highestStreamID, thenClose: close)]
    }

    /// nghttp2 found a connection error in the received bytes (and has queued its GOAWAY).
    mutating func receivedProtocolViolation() -> Action {
        guard isServing else { return .none }
        state = .closing
        closingAfterError = true
        return .closeWhenFlushed
    }

    /// Everything queued has been sent. `sessionFinished`: nghttp2 wants neither to read nor to write.
    mutating func outputFlushed(sessionFinished: Bool) -> Action {
        switch state {
        case .closing:
            state = .closed
            // Even after a graceful drain: the peer may have sent something (a WINDOW_UPDATE, a SETTINGS
            // ACK) since the final GOAWAY that a close would leave unread, and the reset would take the
            // GOAWAY with it.
            return .closeAfterDrainingInput(
                reason: closingAfterError ? "closing after a connection error" : "closing"
            )
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
        closingAfterError = true
        return .terminate(lastStreamID: highestStreamID, code: code, debugData: "")
    }
}

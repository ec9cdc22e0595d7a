internal import Courier

/// The lifecycle of one client connection, as a value: events in, actions out. No C, no I/O, no clock of
/// its own (instants come with the events).
///
/// ```
///  idle ─▶ connecting(i) ─TCP up─▶ handshaking ─server SETTINGS─▶ ready ─GOAWAY─▶ goingAway ─drained─▶ closed
///            │  └─failed or timed out, more addresses─▶ connecting(i+1)  │  │                    ▲
///            └─failed, none left; connect timer──────┴─TLS/IO/protocol failure, keepalive─┴─────lost─┘
///                                                              ready ─idle timer─▶ closed
/// ```
///
/// Streams opened before the server's SETTINGS wait (its MAX_CONCURRENT_STREAMS is unknown until then,
/// and streams beyond it would be refused instead of queued). ``HTTP2ClientConnection`` performs the
/// actions, in order, and owns one loop timer per ``Timer``.
///
/// ## Timers
/// - ``Timer/connect``: armed when a TCP connect starts (afresh for each address), cancelled once the
///   server's SETTINGS arrive. If it fires while connecting, the next address is tried; while handshaking
///   (TCP is up, TLS or SETTINGS are not), or at the last address, the attempt fails with `UNAVAILABLE`.
/// - ``Timer/keepalive`` (gRFC A8, as grpc-go does it): armed for the keepalive *time* once ready. The
///   connection only records *that* bytes arrived (one store per receive), and the machine looks at that
///   record when the timer fires: bytes arrived → armed again for the time; none, and streams are open
///   (or pings without calls are permitted) → a PING, and the timer is armed for the keepalive *timeout*;
///   none and no streams → dormant until a stream opens, which sends the PING at once. The PING's ACK
///   arms the timer for the time again (so a connection with a quiet stream is pinged once per time plus
///   a round trip); when the timeout fires first, any bytes received since the PING still count, and
///   with none the connection is lost (`UNAVAILABLE`). Measured from the check rather than from the last
///   byte, a PING goes out between one and two keepalive times after the last byte read.
/// - ``Timer/idle``: armed for the idle timeout once ready. When it fires with no stream open and none
///   opened since it was armed, the connection closes cleanly (the next RPC makes a new one); otherwise
///   it is armed again. An unused connection thus closes between one and two idle timeouts after its
///   last stream.
///
/// The connection cancels every timer when it closes; a timer that fires in a state it no longer
/// concerns returns no action.
struct ClientConnectionStateMachine {
    /// The connection-management settings of one connection (the manager computes them per connection:
    /// the connect timeout grows with the backoff, the keepalive time doubles after `too_many_pings`).
    struct Configuration: Equatable {
        /// How long a TCP connect, then TLS and the server's SETTINGS, may take, per address; `nil`: no
        /// limit but the system's.
        var connectTimeout: Duration?
        /// Keepalive pings; `nil`: off.
        var keepalive: Keepalive?
        /// How long a connection may go without RPCs before it is closed; `nil`: never.
        var idleTimeout: Duration?
        /// After this long with nothing received, the connection gives its idle buffers back; `nil`: never.
        var releaseIdleBuffersAfter: Duration? = nil

        struct Keepalive: Equatable {
            /// The time without received bytes after which a PING is sent.
            var time: Duration
            /// How long to wait, after the PING, for any received bytes.
            var timeout: Duration
            /// Whether PINGs are sent while no stream is open.
            var permitWithoutCalls: Bool
        }

        /// No timers at all.
        static let none = Configuration(connectTimeout: nil, keepalive: nil, idleTimeout: nil)
    }

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

    /// Where keepalive stands.
    enum KeepaliveState: Equatable {
        /// Not configured, or the connection isn't ready yet (or is closed).
        case off
        /// The timer runs for the keepalive time.
        case waiting
        /// A PING is out; the timer runs for the keepalive timeout.
        case pingOutstanding
        /// Nothing arrived for a keepalive time, no stream is open and pings without calls aren't
        /// permitted: no timer; the next stream sends a PING.
        case dormant
    }

    /// The connection's timers.
    enum Timer: Hashable, CaseIterable {
        /// The connect timeout of the current address.
        case connect
        /// Keepalive: the keepalive time, or (a PING outstanding) its timeout.
        case keepalive
        /// The idle timeout.
        case idle
        /// Releases the idle buffers of a connection that received nothing for
        /// ``Configuration/releaseIdleBuffersAfter``.
        case quiet
    }

    /// What the connection observed, handed to ``timerFired(_:now:observed:)``.
    struct Observation: Equatable {
        /// Bytes arrived since the keepalive timer was last armed.
        var receivedSinceKeepaliveArmed: Bool
        /// When bytes last arrived (kept while keepalive is on): the next keepalive time runs from it, as
        /// grpc-go's does; `nil`: from now.
        var lastReceived: ContinuousClock.Instant?
        /// A stream was opened since the idle timer was last armed.
        var streamOpenedSinceIdleArmed: Bool
        /// Streams open or waiting now.
        var streams: Int
        /// Bytes arrived since the quiet timer was last armed.
        var receivedSinceQuietArmed: Bool

        init(
            receivedSinceKeepaliveArmed: Bool = false,
            lastReceived: ContinuousClock.Instant? = nil,
            streamOpenedSinceIdleArmed: Bool = false,
            streams: Int = 0,
            receivedSinceQuietArmed: Bool = false
        ) {
            self.receivedSinceKeepaliveArmed = receivedSinceKeepaliveArmed
            self.lastReceived = lastReceived
            self.streamOpenedSinceIdleArmed = streamOpenedSinceIdleArmed
            self.streams = streams
            self.receivedSinceQuietArmed = receivedSinceQuietArmed
        }
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

    /// Something worth counting (and, for ``tooManyPings``, acting on) above the connection.
    enum Event: Equatable {
        /// The connect timer fired.
        case connectTimedOut
        /// No bytes arrived within the keepalive timeout after a PING: the connection is dead.
        case keepaliveTimedOut
        /// Keepalive found the connection quiet with no stream open and went dormant (no PING).
        case keepaliveDormant
        /// The server sent GOAWAY ENHANCE_YOUR_CALM `too_many_pings`: later connections double their
        /// keepalive time (gRFC A8).
        case tooManyPings
        /// The connection went unused for the idle timeout and closes.
        case idle
    }

    enum Action: Equatable {
        /// Start a TCP connect to the address at `addressIndex`.
        case connect(addressIndex: Int)
        /// The connect in flight took too long: shut its socket down and, once the connect has completed
        /// (whatever its result), connect to the address at `nextAddressIndex`.
        case abandonConnect(nextAddressIndex: Int)
        /// The socket is connected: set up TLS (if any) and the session, send the preface and SETTINGS.
        case startSession
        /// The connection is ready: submit the waiting streams.
        case openWaitingStreams
        /// Connecting failed: the waiting streams fail (or wait elsewhere) with `error`; close.
        case connectFailed(RPCError)
        /// The server sent GOAWAY: waiting streams go elsewhere; open streams above `lastStreamID` were
        /// never processed and are sent again elsewhere; close once the rest have ended.
        case goingAway(lastStreamID: Int32)
        /// Send a keepalive PING.
        case sendPing
        /// The connection is lost: every stream on it fails with `error`; close (no TLS close_notify: the
        /// peer is gone or broken).
        case lost(RPCError)
        /// Close the socket cleanly (with TLS close_notify): drained after GOAWAY, idle, or closed by the
        /// owner. Streams still on it fail with `failing`.
        case close(failing: RPCError)
        case armTimer(Timer, at: ContinuousClock.Instant)
        case cancelTimer(Timer)
        /// Tell the owner.
        case notify(Event)
        /// Nothing arrived for a while: give back the buffers a quiet connection doesn't need (the receive
        /// buffer's pages, empty send buffers' capacity). The streams are untouched.
        case releaseIdleBuffers
    }

    let addresses: [SocketAddress]
    let configuration: Configuration
    private(set) var state: State = .idle
    private(set) var keepalive: KeepaliveState = .off
    /// Whether `too_many_pings` has been reported (once per connection).
    private var reportedTooManyPings = false
    /// The quiet timer released the buffers and is disarmed until bytes arrive
    /// (``bytesReceivedAfterRelease(now:)``).
    private(set) var idleBuffersReleased = false

    init(addresses: [SocketAddress], configuration: Configuration = .none) {
        precondition(!addresses.isEmpty, "a connection needs an address")
        self.addresses = addresses
        self.configuration = configuration
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

    /// Whether keepalive waits for a stream to open (the connection then calls ``streamOpened(now:)``).
    var keepaliveIsDormant: Bool { keepalive == .dormant }

    // MARK: Connecting

    mutating func start(now: ContinuousClock.Instant) -> [Action] {
        guard state == .idle else { return [] }
        state = .connecting(addressIndex: 0)
        addressIndex = 0
        return withConnectTimer([.connect(addressIndex: 0)], now: now)
    }

    /// The TCP connect finished: `errno` is 0 on success.
    mutating func connectCompleted(errno: Int32, description: String, now: ContinuousClock.Instant) -> [Action] {
        guard case .connecting(let index) = state else { return [] }
        if errno == 0 {
            // The connect timer keeps running: it covers TLS and the server's SETTINGS too.
            state = .handshaking
            return [.startSession]
        }
        if index + 1 < addresses.count {
            // Try the next address the name resolved to, with a connect timeout of its own.
            addressIndex = index + 1
            state = .connecting(addressIndex: index + 1)
            return withConnectTimer([.connect(addressIndex: index + 1)], now: now)
        }
        return connectFailed(
            RPCError(code: .unavailable, message: "Could not connect to \(addresses[index]): \(description).")
        )
    }

    /// The server's first SETTINGS arrived.
    mutating func receivedSettings(now: ContinuousClock.Instant) -> [Action] {
        guard state == .handshaking else { return [] }
        state = .ready
        var actions: [Action] = []
        if configuration.connectTimeout != nil { actions.append(.cancelTimer(.connect)) }
        if let keepalive = configuration.keepalive {
            self.keepalive = .waiting
            actions.append(.armTimer(.keepalive, at: now.advanced(by: keepalive.time)))
        }
        if let idleTimeout = configuration.idleTimeout {
            actions.append(.armTimer(.idle, at: now.advanced(by: idleTimeout)))
        }
        if let quiet = configuration.releaseIdleBuffersAfter {
            actions.append(.armTimer(.quiet, at: now.advanced(by: quiet)))
        }
        actions.append(.openWaitingStreams)
        return actions
    }

    private func withConnectTimer(_ actions: [Action], now: ContinuousClock.Instant) -> [Action] {
        guard let timeout = configuration.connectTimeout else { return actions }
        return actions + [.armTimer(.connect, at: now.advanced(by: timeout))]
    }

    // MARK: Streams

    /// A stream should be opened here.
    func streamRequested() -> StreamDecision {
        switch state {
        case .ready: .open
        case .idle, .connecting, .handshaking: .wait
        case .goingAway: .reroute
        case .closed(let error): .fail(error ?? RPCError(code: .unavailable, message: "The connection is closed."))
        }
    }

    /// A stream was opened while keepalive is dormant (see ``keepaliveIsDormant``): nothing was received
    /// for more than a keepalive time, so a PING goes out before the stream's HEADERS (gRFC A8: a broken
    /// connection is then found within the keepalive timeout).
    mutating func streamOpened(now: ContinuousClock.Instant) -> [Action] {
        guard keepalive == .dormant, let settings = configuration.keepalive else { return [] }
        switch state {
        case .ready, .goingAway:
            keepalive = .pingOutstanding
            return [.sendPing, .armTimer(.keepalive, at: now.advanced(by: settings.timeout))]
        case .idle, .connecting, .handshaking, .closed:
            return []
        }
    }

    /// The ACK of a PING arrived (the connection sends no PINGs but keepalive's).
    mutating func receivedPingAck(now: ContinuousClock.Instant) -> [Action] {
        guard keepalive == .pingOutstanding, let settings = configuration.keepalive else { return [] }
        keepalive = .waiting
        return [.armTimer(.keepalive, at: now.advanced(by: settings.time))]
    }

    /// No stream is open or waiting any more.
    mutating func streamsDrained() -> [Action] {
        guard case .goingAway = state else { return [] }
        close(nil)
        return [.close(failing: Self.closedError)]
    }

    // MARK: GOAWAY

    /// The server sent GOAWAY. A later GOAWAY may lower the last stream ID (grpc-go sends two). GOAWAY
    /// ENHANCE_YOUR_CALM with debug data `too_many_pings` is reported once (``Event/tooManyPings``).
    mutating func receivedGoAway(
        lastStreamID: Int32,
        code: HTTP2ErrorCode = .noError,
        debugData: String = ""
    ) -> [Action] {
        var actions: [Action] = []
        if code == .enhanceYourCalm, debugData == "too_many_pings", !reportedTooManyPings, state != .idle, !isClosed {
            reportedTooManyPings = true
            actions.append(.notify(.tooManyPings))
        }
        switch state {
        case .connecting, .handshaking:
            if configuration.connectTimeout != nil { actions.append(.cancelTimer(.connect)) }
            state = .goingAway(lastStreamID: lastStreamID)
            actions.append(.goingAway(lastStreamID: lastStreamID))
        case .ready:
            if configuration.idleTimeout != nil { actions.append(.cancelTimer(.idle)) }
            state = .goingAway(lastStreamID: lastStreamID)
            actions.append(.goingAway(lastStreamID: lastStreamID))
        case .goingAway(let previous):
            guard lastStreamID < previous else { break }
            state = .goingAway(lastStreamID: lastStreamID)
            actions.append(.goingAway(lastStreamID: lastStreamID))
        case .idle, .closed:
            break
        }
        return actions
    }

    // MARK: Timers

    /// A timer fired; `observed` is what the connection saw meanwhile.
    mutating func timerFired(_ timer: Timer, now: ContinuousClock.Instant, observed: Observation) -> [Action] {
        switch timer {
        case .connect:
            return connectTimerFired(now: now)
        case .keepalive:
            return keepaliveTimerFired(now: now, observed: observed)
        case .idle:
            guard state == .ready, let idleTimeout = configuration.idleTimeout else { return [] }
            if observed.streams > 0 || observed.streamOpenedSinceIdleArmed {
                return [.armTimer(.idle, at: now.advanced(by: idleTimeout))]
            }
            close(nil)
            return [.notify(.idle), .close(failing: Self.closedError)]
        case .quiet:
            guard isOpen, let quiet = configuration.releaseIdleBuffersAfter else { return [] }
            if observed.receivedSinceQuietArmed { return [.armTimer(.quiet, at: now.advanced(by: quiet))] }
            // Not armed again until bytes arrive: a quiet connection costs no timer events.
            idleBuffersReleased = true
            return [.releaseIdleBuffers]
        }
    }

    /// Bytes arrived after the quiet timer released the buffers: it is armed again. The connection calls
    /// this only while ``idleBuffersReleased`` (a load per receive otherwise).
    mutating func bytesReceivedAfterRelease(now: ContinuousClock.Instant) -> [Action] {
        guard idleBuffersReleased else { return [] }
        idleBuffersReleased = false
        guard isOpen, let quiet = configuration.releaseIdleBuffersAfter else { return [] }
        return [.armTimer(.quiet, at: now.advanced(by: quiet))]
    }

    /// Connected and not closed: ready, or going away with streams still on it.
    private var isOpen: Bool {
        switch state {
        case .ready, .goingAway: true
        case .idle, .connecting, .handshaking, .closed: false
        }
    }

    private mutating func connectTimerFired(now: ContinuousClock.Instant) -> [Action] {
        guard let timeout = configuration.connectTimeout else { return [] }
        switch state {
        case .connecting(let index):
            if index + 1 < addresses.count {
                addressIndex = index + 1
                state = .connecting(addressIndex: index + 1)
                return [
                    .notify(.connectTimedOut), .abandonConnect(nextAddressIndex: index + 1),
                    .armTimer(.connect, at: now.advanced(by: timeout)),
                ]
            }
            let error = RPCError(
                code: .unavailable,
                message:
                    "Could not connect to \(addresses[index]) within the connect timeout (\(Self.describe(timeout)))."
            )
            return [.notify(.connectTimedOut)] + connectFailed(error)
        case .handshaking:
            let error = RPCError(
                code: .unavailable,
                message:
                    "The connection to \(address) was not ready within the connect timeout (\(Self.describe(timeout))): "
                    + "TCP connected, but TLS or the server's SETTINGS did not complete."
            )
            return [.notify(.connectTimedOut)] + connectFailed(error)
        case .idle, .ready, .goingAway, .closed:
            return []
        }
    }

    /// When the keepalive time runs out next: `time` after the last bytes received, never before `now`.
    private static func nextKeepalive(
        after observed: Observation,
        now: ContinuousClock.Instant,
        time: Duration
    ) -> ContinuousClock.Instant {
        guard let last = observed.lastReceived, last <= now else { return now.advanced(by: time) }
        return max(now, last.advanced(by: time))
    }

    private mutating func keepaliveTimerFired(now: ContinuousClock.Instant, observed: Observation) -> [Action] {
        guard let settings = configuration.keepalive else { return [] }
        switch state {
        case .ready, .goingAway: break
        case .idle, .connecting, .handshaking, .closed: return []
        }
        switch keepalive {
        case .off, .dormant:
            return []
        case .waiting:
            if observed.receivedSinceKeepaliveArmed {
                // Not a whole time from now: a PING goes out `time` after the last bytes, not up to twice that.
                return [.armTimer(.keepalive, at: Self.nextKeepalive(after: observed, now: now, time: settings.time))]
            }
            if observed.streams == 0, !settings.permitWithoutCalls {
                keepalive = .dormant
                return [.notify(.keepaliveDormant)]
            }
            keepalive = .pingOutstanding
            return [.sendPing, .armTimer(.keepalive, at: now.advanced(by: settings.timeout))]
        case .pingOutstanding:
            if observed.receivedSinceKeepaliveArmed {
                keepalive = .waiting
                return [.armTimer(.keepalive, at: Self.nextKeepalive(after: observed, now: now, time: settings.time))]
            }
            return [.notify(.keepaliveTimedOut)]
                + lose("no keepalive PING ACK (nor any other frame) arrived within \(Self.describe(settings.timeout))")
        }
    }

    /// A duration for an error message: `20 s`, `250 ms`.
    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }

    // MARK: Failures

    /// TLS failed (the handshake, the certificate, a bad record).
    mutating func tlsFailed(_ reason: String) -> [Action] {
        switch state {
        case .connecting, .handshaking:
            return connectFailed(RPCError(code: .unavailable, message: "TLS with \(address) failed: \(reason)."))
        case .ready, .goingAway:
            return lose("TLS failed: \(reason)")
        case .idle, .closed:
            return []
        }
    }

    /// The socket failed or the server closed it.
    mutating func transportFailed(_ reason: String) -> [Action] {
        switch state {
        case .connecting, .handshaking:
            return connectFailed(
                RPCError(
                    code: .unavailable,
                    message: "The connection to \(address) failed before it was ready: \(reason)."
                )
            )
        case .ready, .goingAway:
            return lose(reason)
        case .idle, .closed:
            return []
        }
    }

    /// The server's bytes are not HTTP/2, or nghttp2 ended the session (it wants neither to read nor to
    /// write): nothing more will come, so every RPC on the connection fails now.
    mutating func protocolViolation(_ reason: String) -> [Action] {
        transportFailed(reason)
    }

    /// The owner wants no new streams here (the load balancer dropped its address): the connection
    /// goes away as if the server had sent GOAWAY, and closes once its streams have ended. Not ready
    /// yet, it closes at once.
    mutating func drain() -> [Action] {
        switch state {
        case .ready:
            var actions: [Action] = []
            if configuration.idleTimeout != nil { actions.append(.cancelTimer(.idle)) }
            state = .goingAway(lastStreamID: .max)
            actions.append(.goingAway(lastStreamID: .max))
            return actions
        case .idle, .connecting, .handshaking:
            return close()
        case .goingAway, .closed:
            return []
        }
    }

    /// The owner closes the connection.
    mutating func close() -> [Action] {
        guard !isClosed else { return [] }
        close(Self.closedError)
        return [.close(failing: Self.closedError)]
    }

    /// What streams on a connection closed cleanly (or by its owner) fail with.
    static let closedError = RPCError(code: .unavailable, message: "The connection was closed.")

    private mutating func close(_ error: RPCError?) {
        state = .closed(error)
        keepalive = .off
    }

    private mutating func connectFailed(_ error: RPCError) -> [Action] {
        close(error)
        return [.connectFailed(error)]
    }

    private mutating func lose(_ reason: String) -> [Action] {
        let error = RPCError(code: .unavailable, message: "The connection was lost: \(reason).")
        close(error)
        return [.lost(error)]
    }
}

@_spi(CourierInternals) public import Courier  // faults name methods and errors
internal import Synchronization

/// Faults a test injects into an ``InMemoryTransport``: delays, dropped messages, stream resets, write
/// failures, a lost connection and GOAWAY, each scripted to strike at a chosen point of a chosen RPC.
///
/// The transport applies a fault where the part it names is sent, before it is delivered, so a test
/// decides exactly what the other end sees. The outcomes are the ones the HTTP/2 transport gives for
/// the same event on the wire:
///
/// | fault | the client sees | the server's handler sees |
/// |---|---|---|
/// | ``Action/delay(_:)`` | the part late (the sender waits the delay out on the transport's clock) | the same |
/// | ``Action/drop`` | a message, the status or the stream that never arrives (the call waits for its deadline) | a message or the end of the requests that never arrives |
/// | ``Action/reset(_:)`` | the status HTTP/2 gives for that RST_STREAM code (``ResetCode/refusedStream`` → `UNAVAILABLE`, ``ResetCode/cancel`` → `CANCELLED`, ``ResetCode/enhanceYourCalm`` → `RESOURCE_EXHAUSTED`, others → `INTERNAL`) | cancellation (reads and writes throw `CANCELLED`) |
/// | ``Action/fail(_:)`` | exactly the error given | cancellation |
/// | ``Action/failWrite`` | `UNAVAILABLE` (the write itself throws) | cancellation (a failing response write throws `UNAVAILABLE`) |
/// | ``Action/loseConnection`` | `UNAVAILABLE` on every open stream; later streams work (the client reconnected) | cancellation of every open RPC |
/// | ``Action/goAway`` | open streams finish; new ones fail `UNAVAILABLE` until ``reconnect()`` | nothing new |
///
/// Scripts are per attempt: the Nth stream opened for a method is its attempt N, so a test of a retry
/// policy scripts "fail attempt 1, let attempt 2 through":
///
/// ```swift
/// let transport = InMemoryTransport()
/// // The first attempt at Get is refused, as a server at its stream limit refuses it; the second is served.
/// transport.faults.inject(.reset(.refusedStream), at: .open, method: lookup, attempt: 1)
/// ```
///
/// Delays run on the transport's clock: with a ``ManualRPCClock`` they last until the test advances it,
/// so deadline tests stay free of sleeps.
///
/// - Important: A fault strikes each time its point, method and attempt match: one without a method
///   and attempt applies to every stream (a per-connection fault). ``removeAll()`` clears the script.
public final class InMemoryFaults: Sendable {
    /// What a fault does.
    public enum Action: Sendable, Hashable, CustomStringConvertible {
        /// Holds the part back for this long on the transport's clock; the sender waits (as it waits for
        /// a full flow-control window) and the parts after it queue behind it.
        case delay(Duration)
        /// Loses the part: the write succeeds and nothing arrives.
        case drop
        /// Resets the stream with this HTTP/2 error code (RST_STREAM).
        case reset(ResetCode)
        /// Ends the stream with exactly this error on the client; the server's handler is cancelled.
        case fail(RPCError)
        /// Fails the write of the part, as a socket write fails: the writer gets `UNAVAILABLE` and the
        /// stream is gone on both ends.
        case failWrite
        /// Loses the whole connection: every open stream fails (client `UNAVAILABLE`, server handlers
        /// cancelled). Streams opened later work, as on a reconnected client.
        case loseConnection
        /// The server sends GOAWAY: open streams finish normally, and streams opened afterwards (the one
        /// opening now included, when the point is ``Point/open``) fail `UNAVAILABLE` until
        /// ``InMemoryFaults/reconnect()``.
        case goAway

        public var description: String {
            switch self {
            case .delay(let duration): "delay \(duration)"
            case .drop: "drop"
            case .reset(let code): "reset \(code)"
            case .fail(let error): "fail \(error.code)"
            case .failWrite: "write failure"
            case .loseConnection: "connection loss"
            case .goAway: "GOAWAY"
            }
        }
    }

    /// Where in a stream a fault strikes: the part being sent when it does.
    public struct Point: Sendable, Hashable, CustomStringConvertible {
        enum Kind: Hashable {
            case open
            case requestMessage(Int?)
            case requestEnd
            case responseMetadata
            case responseMessage(Int?)
            case status
        }

        let kind: Kind

        /// The request metadata, which opens the stream on the server.
        public static var open: Point { Point(kind: .open) }
        /// The `n`th request message (from 1).
        public static func requestMessage(_ n: Int) -> Point { Point(kind: .requestMessage(n)) }
        /// Every request message.
        public static var everyRequestMessage: Point { Point(kind: .requestMessage(nil)) }
        /// The end of the requests (the client's half-close).
        public static var requestEnd: Point { Point(kind: .requestEnd) }
        /// The response metadata (headers).
        public static var responseMetadata: Point { Point(kind: .responseMetadata) }
        /// The `n`th response message (from 1).
        public static func responseMessage(_ n: Int) -> Point { Point(kind: .responseMessage(n)) }
        /// Every response message.
        public static var everyResponseMessage: Point { Point(kind: .responseMessage(nil)) }
        /// The status and trailers that end the RPC.
        public static var status: Point { Point(kind: .status) }

        /// Whether the client sends the part (else the server does).
        var isRequest: Bool {
            switch kind {
            case .open, .requestMessage, .requestEnd: true
            case .responseMetadata, .responseMessage, .status: false
            }
        }

        /// Whether this (a rule's point) matches `sent` (a point at which a part is sent, with its number).
        func matches(_ sent: Point) -> Bool {
            switch (kind, sent.kind) {
            case (.requestMessage(nil), .requestMessage), (.responseMessage(nil), .responseMessage): true
            default: kind == sent.kind
            }
        }

        public var description: String {
            switch kind {
            case .open: "open"
            case .requestMessage(let n): n.map { "request message \($0)" } ?? "every request message"
            case .requestEnd: "request end"
            case .responseMetadata: "response metadata"
            case .responseMessage(let n): n.map { "response message \($0)" } ?? "every response message"
            case .status: "status"
            }
        }
    }

    /// An HTTP/2 error code, as RST_STREAM carries it (RFC 9113 §7).
    public struct ResetCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The code's value on the wire.
        public let rawValue: UInt32

        /// Creates a code from its value on the wire.
        ///
        /// - Parameter rawValue: The value.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// NO_ERROR (0x0).
        public static let noError = ResetCode(rawValue: 0x0)
        /// PROTOCOL_ERROR (0x1).
        public static let protocolError = ResetCode(rawValue: 0x1)
        /// INTERNAL_ERROR (0x2).
        public static let internalError = ResetCode(rawValue: 0x2)
        /// FLOW_CONTROL_ERROR (0x3).
        public static let flowControlError = ResetCode(rawValue: 0x3)
        /// REFUSED_STREAM (0x7): the server did not process the stream; safe to retry.
        public static let refusedStream = ResetCode(rawValue: 0x7)
        /// CANCEL (0x8).
        public static let cancel = ResetCode(rawValue: 0x8)
        /// ENHANCE_YOUR_CALM (0xB).
        public static let enhanceYourCalm = ResetCode(rawValue: 0xB)
        /// INADEQUATE_SECURITY (0xC).
        public static let inadequateSecurity = ResetCode(rawValue: 0xC)

        public var description: String {
            switch self {
            case .noError: "NO_ERROR"
            case .protocolError: "PROTOCOL_ERROR"
            case .internalError: "INTERNAL_ERROR"
            case .flowControlError: "FLOW_CONTROL_ERROR"
            case .refusedStream: "REFUSED_STREAM"
            case .cancel: "CANCEL"
            case .enhanceYourCalm: "ENHANCE_YOUR_CALM"
            case .inadequateSecurity: "INADEQUATE_SECURITY"
            default: "error 0x\(String(rawValue, radix: 16))"
            }
        }

        /// The error a client reports for a stream reset with this code before its status arrived, as
        /// gRPC's PROTOCOL-HTTP2 maps it (and as Courier's HTTP/2 transport reports it).
        public var clientError: RPCError {
            switch self {
            case .refusedStream: RPCError(code: .unavailable, message: "The server refused the stream.")
            case .cancel: RPCError(code: .cancelled, message: "The server cancelled the RPC.")
            case .enhanceYourCalm:
                RPCError(code: .resourceExhausted, message: "The server reset the stream: ENHANCE_YOUR_CALM.")
            case .inadequateSecurity:
                RPCError(code: .permissionDenied, message: "The server reset the stream: INADEQUATE_SECURITY.")
            default:
                RPCError(code: .internal, message: "The stream was reset (HTTP/2 \(self)) before a status.")
            }
        }
    }

    /// A fault that struck: what, where, and on which stream.
    public struct Event: Sendable, Hashable, CustomStringConvertible {
        /// The request path of the stream, such as `/echo.Echo/Get`.
        public var path: String
        /// The stream's attempt number for its method (from 1).
        public var attempt: Int
        /// Where the fault struck (with the message number, for messages).
        public var point: Point
        /// What it did.
        public var action: Action

        public var description: String { "\(action) at \(point) of \(path) attempt \(attempt)" }
    }

    private struct Rule {
        var action: Action
        var point: Point
        var path: String?
        var attempt: Int?
    }

    private struct State {
        var rules: [Rule] = []
        var attempts: [String: Int] = [:]
        var events: [Event] = []
        var waiters: [(count: Int, continuation: UnsafeContinuation<Void, Never>)] = []
        var draining = false
        var streams: [UInt64: InMemoryStreamLink] = [:]
        var nextStreamID: UInt64 = 0
    }

    private let state = CourierMutex(State())
    /// Rules scripted: while none are, sending a part costs one atomic load.
    private let ruleCount = Atomic(0)

    /// Creates an empty script: nothing goes wrong until a fault is injected.
    public init() {}

    /// Scripts a fault.
    ///
    /// - Parameters:
    ///   - action: What goes wrong.
    ///   - point: The part of the stream it strikes as that part is sent.
    ///   - method: The method whose streams it strikes; `nil` for every method.
    ///   - attempt: The attempt (the Nth stream opened for `method`, or for its own method when
    ///     `method` is `nil`, from 1) it strikes; `nil` for every attempt.
    public func inject(_ action: Action, at point: Point, method: MethodDescriptor? = nil, attempt: Int? = nil) {
        state.withLock { state in
            state.rules.append(Rule(action: action, point: point, path: method?.path, attempt: attempt))
            ruleCount.store(state.rules.count, ordering: .releasing)
        }
    }

    /// Removes every scripted fault (those that struck stay in ``injected``).
    public func removeAll() {
        state.withLock { state in
            state.rules.removeAll()
            ruleCount.store(0, ordering: .releasing)
        }
    }

    /// The faults that have struck so far, in order.
    public var injected: [Event] { state.withLock { $0.events } }

    /// Suspends until at least `count` faults have struck: the signal that a delayed part is being held
    /// back, or that a reset has happened, without polling.
    ///
    /// - Parameter count: The number of faults to wait for.
    public func waitUntilInjected(count: Int) async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.events.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Loses the connection now: every open stream fails (the client sees `UNAVAILABLE`, the server's
    /// handlers are cancelled). Streams opened afterwards work, as on a client that reconnected.
    public func loseConnection() {
        let links = state.withLock { state in Array(state.streams.values) }
        for link in links {
            link.reset(
                client: RPCError(code: .unavailable, message: "The connection was lost (injected)."),
                server: RPCError(code: .cancelled, message: "The connection was lost (injected).")
            )
        }
    }

    /// The server sends GOAWAY now: open streams finish normally; streams opened afterwards fail
    /// `UNAVAILABLE` until ``reconnect()``.
    public func goAway() {
        state.withLock { $0.draining = true }
    }

    /// Ends the effect of ``goAway()``: new streams are accepted again, as on a new connection.
    public func reconnect() {
        state.withLock { $0.draining = false }
    }

    // MARK: - For the transport

    /// Registers an open stream, so that a lost connection reaches it; returns its key.
    func register(_ link: InMemoryStreamLink) -> UInt64 {
        state.withLock { state in
            state.nextStreamID += 1
            state.streams[state.nextStreamID] = link
            return state.nextStreamID
        }
    }

    /// Removes a stream that has closed.
    func unregister(_ key: UInt64) {
        _ = state.withLock { $0.streams.removeValue(forKey: key) }
    }

    /// Counts a new attempt at `path`; returns its number.
    func openAttempt(path: String) -> Int {
        state.withLock { state in
            let attempt = (state.attempts[path] ?? 0) + 1
            state.attempts[path] = attempt
            return attempt
        }
    }

    /// Whether GOAWAY has been received: new streams are refused.
    var isDraining: Bool { state.withLock { $0.draining } }

    /// The actions scripted for `point` of the stream `path`/`attempt`.
    func actions(at point: Point, path: String, attempt: Int) -> [Action] {
        guard ruleCount.load(ordering: .acquiring) > 0 else { return [] }
        return state.withLock { state in
            state.rules.filter { rule in
                rule.point.matches(point) && (rule.path == nil || rule.path == path)
                    && (rule.attempt == nil || rule.attempt == attempt)
            }.map(\.action)
        }
    }

    /// Records a fault that has struck (a delay once its timer runs) and wakes tests waiting for it.
    func record(_ event: Event) {
        let waiters = state.withLock { state -> [UnsafeContinuation<Void, Never>] in
            state.events.append(event)
            if event.action == .goAway { state.draining = true }
            let count = state.events.count
            let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= count }
            return ready
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// What the two ends of one in-memory stream share: the channels, the server's cancellation, the
/// stream's fault bookkeeping (attempt, message counts) and the senders waiting out a delay.
final class InMemoryStreamLink: Sendable {
    private struct State {
        var path = ""
        var attempt = 0
        var requestMessages = 0
        var responseMessages = 0
        var failure: (client: RPCError, server: RPCError)?
        var sleepers: [UInt64: UnsafeContinuation<Void, any Error>] = [:]
        var timers: [UInt64: any RPCTimer] = [:]
        var nextID: UInt64 = 0
    }

    let requests: StreamChannel<MessageBuffer>
    let responses: StreamChannel<RPCResponsePart>
    let serverCancellation = RPCCancellationHandle()
    let faults: InMemoryFaults
    let clock: any RPCClock
    private let state = CourierMutex(State())

    init(configuration: InMemoryTransport.Configuration, faults: InMemoryFaults, clock: any RPCClock) {
        self.faults = faults
        self.clock = clock
        self.requests = StreamChannel(
            maxElements: configuration.maxBufferedMessages,
            maxBytes: configuration.maxBufferedBytes,
            size: { $0.count }
        )
        self.responses = StreamChannel(
            maxElements: configuration.maxBufferedMessages,
            maxBytes: configuration.maxBufferedBytes,
            size: { part in if case .message(let buffer) = part { buffer.count } else { 0 } }
        )
    }

    /// The stream has been opened for `path`: counts its attempt.
    func open(path: String) {
        let attempt = faults.openAttempt(path: path)
        state.withLock { state in
            state.path = path
            state.attempt = attempt
        }
    }

    /// Ends the stream on both ends: the client's reads and writes throw `client`, the server's throw
    /// `server` and its handler is cancelled; senders waiting out a delay wake. Only the first call counts.
    func reset(client: RPCError, server: RPCError) {
        let woken = state.withLock { state -> ([UnsafeContinuation<Void, any Error>], [any RPCTimer])? in
            guard state.failure == nil else { return nil }
            state.failure = (client, server)
            return takeSleepers(&state)
        }
        guard let woken else { return }
        // The order matters: the client's side fails first, so nothing the server writes from here on
        // (a handler ending with its own status) can reach the client ahead of `client`; the handler
        // is cancelled before its reads fail, so it sees a cancellation, not just an error.
        responses.fail(client)
        serverCancellation.cancel()
        requests.fail(server)
        wake(woken)
    }

    /// Wakes senders waiting out a delay (the stream ended another way: cancelled, terminated).
    func wakeSleepers() {
        wake(state.withLock { takeSleepers(&$0) })
    }

    private func takeSleepers(_ state: inout State) -> ([UnsafeContinuation<Void, any Error>], [any RPCTimer]) {
        defer {
            state.sleepers.removeAll()
            state.timers.removeAll()
        }
        return (Array(state.sleepers.values), Array(state.timers.values))
    }

    private func wake(_ woken: ([UnsafeContinuation<Void, any Error>], [any RPCTimer])) {
        for timer in woken.1 { timer.cancel() }
        for sleeper in woken.0 { sleeper.resume(throwing: CancellationError()) }
    }

    /// Applies the faults scripted for `point`, as its part is about to be sent.
    ///
    /// - Returns: Whether to deliver the part (`false`: dropped).
    /// - Throws: The error the sender sees when a fault ends the stream (or the stream ends during a delay).
    func applyFaults(at point: Point) async throws -> Bool {
        let (path, attempt, numbered) = state.withLock { state -> (String, Int, Point) in
            switch point.kind {
            case .requestMessage:
                state.requestMessages += 1
                return (state.path, state.attempt, .requestMessage(state.requestMessages))
            case .responseMessage:
                state.responseMessages += 1
                return (state.path, state.attempt, .responseMessage(state.responseMessages))
            default:
                return (state.path, state.attempt, point)
            }
        }
        var deliver = true
        let isRequest = point.isRequest
        for action in faults.actions(at: numbered, path: path, attempt: attempt) {
            let event = InMemoryFaults.Event(path: path, attempt: attempt, point: numbered, action: action)
            if case .delay = action {} else { faults.record(event) }
            switch action {
            case .delay(let duration):
                do {
                    try await sleep(for: duration) { faults.record(event) }
                } catch {
                    throw failure(isRequest: isRequest)
                        ?? RPCError(code: .cancelled, message: "The RPC was cancelled.")
                }
            case .drop:
                deliver = false
            case .reset(let code):
                let serverError = RPCError(code: .cancelled, message: "The stream was reset (HTTP/2 \(code)).")
                reset(client: code.clientError, server: serverError)
                throw isRequest ? code.clientError : serverError
            case .fail(let error):
                let serverError = RPCError(code: .cancelled, message: "The stream was reset.")
                reset(client: error, server: serverError)
                throw isRequest ? error : serverError
            case .failWrite:
                let error = RPCError(code: .unavailable, message: "A write to the connection failed (injected).")
                reset(client: error, server: RPCError(code: .cancelled, message: "The connection failed."))
                throw error
            case .loseConnection:
                faults.loseConnection()
                throw failure(isRequest: isRequest)
                    ?? RPCError(code: .unavailable, message: "The connection was lost (injected).")
            case .goAway:
                if point.kind == .open {
                    throw Self.refusedByGoAway
                }
            }
        }
        if point.kind == .open, faults.isDraining {
            throw Self.refusedByGoAway
        }
        return deliver
    }

    static let refusedByGoAway = RPCError(
        code: .unavailable,
        message: "The server sent GOAWAY: the stream was not processed."
    )

    private func failure(isRequest: Bool) -> RPCError? {
        state.withLock { state in state.failure.map { isRequest ? $0.client : $0.server } }
    }

    typealias Point = InMemoryFaults.Point

    /// Waits `duration` on the transport's clock, calling `scheduled` once the timer is set; throws if
    /// the stream ends or the task is cancelled first.
    private func sleep(for duration: Duration, scheduled: () -> Void) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let early = state.withLock { state -> Bool in
                    if state.failure != nil || Task.isCancelled { return true }
                    state.sleepers[id] = continuation
                    return false
                }
                if early {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let timer = clock.scheduleTimer(at: clock.now.advanced(by: duration)) { [self] in
                    let sleeper = state.withLock { state in
                        state.timers[id] = nil
                        return state.sleepers.removeValue(forKey: id)
                    }
                    sleeper?.resume()
                }
                let stale = state.withLock { state -> Bool in
                    guard state.sleepers[id] != nil else { return true }
                    state.timers[id] = timer
                    return false
                }
                if stale { timer.cancel() }
                scheduled()
            }
        } onCancel: {
            let (sleeper, timer) = state.withLock { state in
                (state.sleepers.removeValue(forKey: id), state.timers.removeValue(forKey: id))
            }
            timer?.cancel()
            sleeper?.resume(throwing: CancellationError())
        }
    }
}

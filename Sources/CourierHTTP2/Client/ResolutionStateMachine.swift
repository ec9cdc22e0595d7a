/// When a pull-mode resolver resolves, as a value: requests in, "resolve now" or "arm the timer" out. No
/// clock of its own (instants arrive with the events).
///
/// - Resolutions start at most once per `minimumInterval` (gRPC's 30 s): a request sooner arms the timer
///   for the earliest allowed instant; requests meanwhile are folded into it.
/// - A request while a resolution runs is remembered and served (rate-limited) when it ends.
/// - A failed resolution is retried with the connection backoff, whatever the interval, until one
///   succeeds (gRPC's DNS resolver does the same); the backoff starts over after a success.
///
/// ```
///  idle ─request─▶ resolving ─succeeded─▶ idle (a pending request → request again)
///   ▲  └─too soon─▶ waiting(at) ─timer─▶ resolving ─failed─▶ waiting(now + backoff)
///   └───────────────────────────────────────────┘
/// ```
struct ResolutionStateMachine {
    enum State: Equatable {
        case idle
        case resolving
        /// The timer is armed for this instant.
        case waiting(until: ContinuousClock.Instant)
    }

    enum Action: Equatable {
        /// Ask the resolver for one resolution.
        case resolve
        /// Arm the timer; ``timerFired(now:)`` when it fires.
        case armTimer(at: ContinuousClock.Instant)
    }

    let minimumInterval: Duration
    private let retryBackoff: ConnectionBackoff
    private var backoff: ConnectionBackoff.Iterator
    private(set) var state: State = .idle
    /// When the last resolution started.
    private(set) var lastStarted: ContinuousClock.Instant?
    /// A request arrived while a resolution ran.
    private(set) var pending = false
    /// Resolutions started so far.
    private(set) var started = 0

    init(minimumInterval: Duration, retryBackoff: ConnectionBackoff) {
        self.minimumInterval = minimumInterval
        self.retryBackoff = retryBackoff
        self.backoff = retryBackoff.makeIterator()
    }

    /// Someone wants fresh addresses.
    mutating func requested(now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .resolving:
            pending = true
            return []
        case .waiting:
            return []
        case .idle:
            if let lastStarted, now < lastStarted.advanced(by: minimumInterval) {
                let at = lastStarted.advanced(by: minimumInterval)
                state = .waiting(until: at)
                return [.armTimer(at: at)]
            }
            return start(now: now)
        }
    }

    /// The timer fired.
    mutating func timerFired(now: ContinuousClock.Instant) -> [Action] {
        guard case .waiting = state else { return [] }
        return start(now: now)
    }

    /// The resolution produced addresses.
    mutating func succeeded(now: ContinuousClock.Instant) -> [Action] {
        guard state == .resolving else { return [] }
        state = .idle
        backoff = retryBackoff.makeIterator()
        guard pending else { return [] }
        pending = false
        return requested(now: now)
    }

    /// The resolution failed: retry after the backoff.
    mutating func failed(now: ContinuousClock.Instant) -> [Action] {
        guard state == .resolving else { return [] }
        pending = false
        let at = now.advanced(by: backoff.next())
        state = .waiting(until: at)
        return [.armTimer(at: at)]
    }

    private mutating func start(now: ContinuousClock.Instant) -> [Action] {
        state = .resolving
        lastStarted = now
        started += 1
        return [.resolve]
    }
}

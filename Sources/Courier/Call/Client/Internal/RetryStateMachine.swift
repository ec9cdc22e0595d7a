/// Decides, for one call with a retry or hedging policy (gRFC A6), when attempts start, which attempt
/// the call commits to and when it fails. A value: events in, actions out; the executor
/// (`ClientRPCExecutor+Retry.swift`) opens streams, runs timers and delivers the response.
///
/// Retry: one attempt at a time; a failure with a retryable code schedules the next attempt after a
/// randomized backoff (or the server's pushback), unless attempts are used up, the throttle says no,
/// the server said stop, or the request no longer fits the replay buffer. Hedging: a new attempt every
/// `hedgingDelay` (at once after a non-fatal failure), up to `maxAttempts`; the first response wins.
/// Either way, response headers (or an OK status) commit the call to that attempt and cancel the rest.
struct RetryStateMachine {
    enum Policy: Sendable, Hashable {
        case retry(RetryPolicy)
        case hedging(HedgingPolicy)
    }

    /// The server's `grpc-retry-pushback-ms`.
    enum Pushback: Sendable, Hashable {
        /// Wait this long before the next attempt.
        case retryAfter(Duration)
        /// Don't start another attempt (a negative or malformed value).
        case stop

        /// The pushback in a status's trailers; `nil` if there is none.
        init?(_ trailers: Metadata) {
            guard let text = trailers.firstString(forKey: "grpc-retry-pushback-ms") else { return nil }
            if let millis = Int32(text), millis >= 0 {
                self = .retryAfter(.milliseconds(Int64(millis)))
            } else {
                self = .stop
            }
        }
    }

    enum Action: Sendable, Hashable {
        /// Start attempt `n` (1-based) now.
        case startAttempt(Int)
        /// Arm the one timer: after `delay`, deliver ``RetryStateMachine/timerFired(generation:throttleAllows:)``
        /// with `generation`. Replaces a timer that is armed.
        case scheduleTimer(after: Duration, generation: Int)
        /// Disarm the timer.
        case cancelTimer
        /// Cancel attempt `n`: another won, or the call failed.
        case cancelAttempt(Int)
        /// The call commits to attempt `n`: deliver its response.
        case commit(Int)
        /// The call fails with attempt `n`'s status.
        case fail(Int)
    }

    /// gRPC's client-side cap on `maxAttempts`.
    static let maxAttemptsCap = 5

    let policy: Policy
    let maxAttempts: Int
    private let random: @Sendable () -> Double
    private(set) var started = 0
    private(set) var outstanding: Set<Int> = []
    private(set) var finished = false
    /// No further attempts: the server pushed back with "stop", the throttle stopped hedging, or the
    /// request overflowed its replay buffer (the call is committed to the attempt it is on).
    private(set) var stopped = false
    /// Stopped while no attempt ran: the timer's attempt is still to start, as the last.
    private var lastAttemptPending = false
    private var timerGeneration = 0
    private var timerArmed = false
    /// Retries since the last pushback: the backoff's exponent.
    private var backoffStep = 0

    /// - Parameters:
    ///   - policy: The method's policy (already validated).
    ///   - random: Values in `0..<1` for the backoff's jitter; tests inject a fixed one.
    init(policy: Policy, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.policy = policy
        switch policy {
        case .retry(let retry): maxAttempts = min(retry.maxAttempts, Self.maxAttemptsCap)
        case .hedging(let hedging): maxAttempts = min(hedging.maxAttempts, Self.maxAttemptsCap)
        }
        self.random = random
    }

    /// Whether a failure with `code` may lead to another attempt (retryable or non-fatal): such a
    /// failure counts against the throttle.
    func isRetryable(_ code: Status.Code) -> Bool {
        switch policy {
        case .retry(let retry): retry.retryableStatusCodes.contains(code)
        case .hedging(let hedging): hedging.nonFatalStatusCodes.contains(code)
        }
    }

    /// The call starts: its first attempt (and, hedging, the timer for the second).
    mutating func start() -> [Action] {
        precondition(started == 0, "start() once")
        var actions = [startNext()]
        if case .hedging(let hedging) = policy, started < maxAttempts {
            actions.append(armTimer(hedging.hedgingDelay))
        }
        return actions
    }

    /// Attempt `n` received response headers, or an OK status: the call commits to it.
    mutating func receivedResponse(attempt n: Int) -> [Action] {
        guard !finished, outstanding.contains(n) else { return [] }
        return finish(with: .commit(n), attempt: n)
    }

    /// Attempt `n` ended with a non-OK status (received, or the transport's).
    ///
    /// - Parameters:
    ///   - n: The attempt.
    ///   - code: Its status code.
    ///   - pushback: The server's pushback in the trailers, if any.
    ///   - throttleAllows: Whether the client's throttle allows another attempt, after counting this
    ///     failure (`true` without throttling).
    mutating func failed(attempt n: Int, code: Status.Code, pushback: Pushback?, throttleAllows: Bool) -> [Action] {
        guard !finished, outstanding.contains(n) else { return [] }
        outstanding.remove(n)
        let retryable = isRetryable(code)
        switch policy {
        case .retry(let retry):
            guard retryable, !stopped, pushback != .stop, started < maxAttempts, throttleAllows else {
                return finish(with: .fail(n), attempt: n)
            }
            let delay: Duration
            if case .retryAfter(let pushed) = pushback {
                delay = pushed
                backoffStep = 0  // the retry after this one waits from initialBackoff again
            } else {
                delay = backoff(retry)
                backoffStep += 1
            }
            return [armTimer(delay)]

        case .hedging(let hedging):
            guard retryable else { return finish(with: .fail(n), attempt: n) }
            if pushback == .stop || !throttleAllows { stopped = true }
            guard !stopped, started < maxAttempts else {
                var actions: [Action] = []
                if timerArmed { actions.append(disarmTimer()) }
                if outstanding.isEmpty { actions += finish(with: .fail(n), attempt: n) }
                return actions
            }
            if case .retryAfter(let pushed) = pushback {
                return [armTimer(pushed)]  // the next hedge after the pushback, the one after that hedgingDelay later
            }
            var actions = [startNext()]
            actions.append(started < maxAttempts ? armTimer(hedging.hedgingDelay) : disarmTimer())
            return actions
        }
    }

    /// The timer armed with `generation` fired.
    ///
    /// - Parameters:
    ///   - generation: From the ``Action/scheduleTimer(after:generation:)`` that armed it.
    ///   - throttleAllows: Whether the throttle allows another attempt now.
    mutating func timerFired(generation: Int, throttleAllows: Bool) -> [Action] {
        guard !finished, timerArmed, generation == timerGeneration else { return [] }
        timerArmed = false
        if lastAttemptPending {
            lastAttemptPending = false
            return [startNext()]
        }
        switch policy {
        case .retry:
            return [startNext()]  // the throttle was asked when the attempt failed
        case .hedging(let hedging):
            guard !stopped, started < maxAttempts, throttleAllows else {
                if !throttleAllows { stopped = true }
                return []
            }
            var actions = [startNext()]
            if started < maxAttempts { actions.append(armTimer(hedging.hedgingDelay)) }
            return actions
        }
    }

    /// The request overflowed its replay buffer: no attempt starts beyond those running, except the one a
    /// timer is waiting for when none is running (a retry after its backoff, a hedge after a pushback),
    /// which is then the last.
    mutating func requestCommitted() -> [Action] {
        guard !finished, !stopped else { return [] }
        stopped = true
        guard timerArmed else { return [] }
        if outstanding.isEmpty {
            lastAttemptPending = true
            return []
        }
        return [disarmTimer()]
    }

    private mutating func startNext() -> Action {
        started += 1
        outstanding.insert(started)
        return .startAttempt(started)
    }

    private mutating func armTimer(_ delay: Duration) -> Action {
        timerGeneration += 1
        timerArmed = true
        return .scheduleTimer(after: delay, generation: timerGeneration)
    }

    private mutating func disarmTimer() -> Action {
        timerArmed = false
        return .cancelTimer
    }

    private mutating func finish(with last: Action, attempt n: Int) -> [Action] {
        finished = true
        var actions: [Action] = []
        if timerArmed { actions.append(disarmTimer()) }
        for other in outstanding.sorted() where other != n { actions.append(.cancelAttempt(other)) }
        outstanding.removeAll()
        actions.append(last)
        return actions
    }

    /// `random(0, min(initialBackoff × multiplier^step, maxBackoff))`.
    private func backoff(_ retry: RetryPolicy) -> Duration {
        let initial = retry.initialBackoff.seconds
        let bound = min(initial * pow(retry.backoffMultiplier, backoffStep), retry.maxBackoff.seconds)
        let jitter = min(max(random(), 0), 1)
        return .nanoseconds(Int64((bound * jitter * 1e9).rounded(.down)))
    }
}

/// `base^exponent` for the small exponents of a backoff, without Foundation.
private func pow(_ base: Double, _ exponent: Int) -> Double {
    var result = 1.0
    for _ in 0..<exponent {
        result *= base
        if result > 1e12 { break }  // far beyond any maxBackoff
    }
    return result
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}

/// gRFC A6 retry throttling, as arithmetic: a token count from `maxTokens`, minus one per retryable
/// failure, plus `tokenRatio` per success, kept in `0...maxTokens`; attempts beyond the first are
/// allowed while the count is above half of `maxTokens`.
struct RetryThrottleState: Sendable, Hashable {
    let maxTokens: Double
    let tokenRatio: Double
    private(set) var tokens: Double

    init(_ config: RetryThrottling) {
        maxTokens = Double(config.maxTokens)
        tokenRatio = config.tokenRatio
        tokens = maxTokens
    }

    var allowsRetry: Bool { tokens > maxTokens / 2 }

    /// Counts a retryable failure; returns whether retries are still allowed.
    mutating func recordFailure() -> Bool {
        tokens = max(tokens - 1, 0)
        return allowsRetry
    }

    mutating func recordSuccess() {
        tokens = min(tokens + tokenRatio, maxTokens)
    }
}

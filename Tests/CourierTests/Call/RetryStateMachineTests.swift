import Testing

@testable import Courier

@Suite("Retry and hedging state machine, transition by transition")
struct RetryStateMachineTests {
    let retry = RetryPolicy(
        maxAttempts: 3,
        initialBackoff: .seconds(1),
        maxBackoff: .seconds(3),
        backoffMultiplier: 2,
        retryableStatusCodes: [.unavailable]
    )

    @Test("Retry: failure → backoff timer → next attempt; headers commit")
    func retryThenCommit() {
        var machine = RetryStateMachine(policy: .retry(retry), random: { 0.5 })
        #expect(machine.start() == [.startAttempt(1)])
        #expect(
            machine.failed(attempt: 1, code: .unavailable, pushback: nil, throttleAllows: true)
                == [.scheduleTimer(after: .milliseconds(500), generation: 1)]
        )
        #expect(machine.timerFired(generation: 1, throttleAllows: true) == [.startAttempt(2)])
        // Second backoff: random × min(1 s × 2, 3 s).
        #expect(
            machine.failed(attempt: 2, code: .unavailable, pushback: nil, throttleAllows: true)
                == [.scheduleTimer(after: .seconds(1), generation: 2)]
        )
        #expect(machine.timerFired(generation: 1, throttleAllows: true) == [])  // stale
        #expect(machine.timerFired(generation: 2, throttleAllows: true) == [.startAttempt(3)])
        #expect(machine.receivedResponse(attempt: 3) == [.commit(3)])
    }

    @Test("Retry: attempts used up, non-retryable code, throttle, pushback stop all fail")
    func retryStops() {
        var machine = RetryStateMachine(policy: .retry(retry), random: { 0 })
        _ = machine.start()
        #expect(machine.failed(attempt: 1, code: .internal, pushback: nil, throttleAllows: true) == [.fail(1)])

        machine = RetryStateMachine(policy: .retry(retry), random: { 0 })
        _ = machine.start()
        #expect(machine.failed(attempt: 1, code: .unavailable, pushback: .stop, throttleAllows: true) == [.fail(1)])

        machine = RetryStateMachine(policy: .retry(retry), random: { 0 })
        _ = machine.start()
        #expect(machine.failed(attempt: 1, code: .unavailable, pushback: nil, throttleAllows: false) == [.fail(1)])

        machine = RetryStateMachine(policy: .retry(retry), random: { 0 })
        _ = machine.start()
        for n in 1...2 {
            _ = machine.failed(attempt: n, code: .unavailable, pushback: nil, throttleAllows: true)
            _ = machine.timerFired(generation: n, throttleAllows: true)
        }
        #expect(machine.failed(attempt: 3, code: .unavailable, pushback: nil, throttleAllows: true) == [.fail(3)])
    }

    @Test("Retry: pushback sets the delay and resets the backoff; maxAttempts is capped at 5")
    func pushbackAndCap() {
        var policy = retry
        policy.maxAttempts = 9
        var machine = RetryStateMachine(policy: .retry(policy), random: { 1 })
        #expect(machine.maxAttempts == 5)
        _ = machine.start()
        #expect(
            machine.failed(
                attempt: 1,
                code: .unavailable,
                pushback: .retryAfter(.milliseconds(70)),
                throttleAllows: true
            )
                == [.scheduleTimer(after: .milliseconds(70), generation: 1)]
        )
        _ = machine.timerFired(generation: 1, throttleAllows: true)
        #expect(
            machine.failed(attempt: 2, code: .unavailable, pushback: nil, throttleAllows: true)
                == [.scheduleTimer(after: .seconds(1), generation: 2)]
        )
        #expect(RetryStateMachine.Pushback(["grpc-retry-pushback-ms": "250"]) == .retryAfter(.milliseconds(250)))
        #expect(RetryStateMachine.Pushback(["grpc-retry-pushback-ms": "-1"]) == .stop)
        #expect(RetryStateMachine.Pushback(["grpc-retry-pushback-ms": "x"]) == .stop)
        #expect(RetryStateMachine.Pushback([:]) == nil)
    }

    @Test("Retry: a request that overflowed its buffer is committed: no retry")
    func bufferCommit() {
        var machine = RetryStateMachine(policy: .retry(retry), random: { 0 })
        _ = machine.start()
        #expect(machine.requestCommitted() == [])
        #expect(machine.failed(attempt: 1, code: .unavailable, pushback: nil, throttleAllows: true) == [.fail(1)])
    }

    @Test("Retry: a request that overflows while a retry waits for its backoff: that retry is the last")
    func bufferCommitDuringBackoff() {
        var machine = RetryStateMachine(policy: .retry(retry), random: { 0.5 })
        _ = machine.start()
        #expect(
            machine.failed(attempt: 1, code: .unavailable, pushback: nil, throttleAllows: true)
                == [.scheduleTimer(after: .milliseconds(500), generation: 1)]
        )
        #expect(machine.requestCommitted() == [])  // the timer stays: its attempt reads the whole log
        #expect(machine.timerFired(generation: 1, throttleAllows: true) == [.startAttempt(2)])
        #expect(machine.failed(attempt: 2, code: .unavailable, pushback: nil, throttleAllows: true) == [.fail(2)])
    }

    @Test("Hedging: an overflow stops new hedges; with none running, the pushed-back one is the last")
    func hedgingBufferCommit() {
        let policy = HedgingPolicy(maxAttempts: 4, hedgingDelay: .seconds(1), nonFatalStatusCodes: [.unavailable])
        var machine = RetryStateMachine(policy: .hedging(policy))
        _ = machine.start()
        #expect(machine.requestCommitted() == [.cancelTimer])
        #expect(machine.timerFired(generation: 1, throttleAllows: true) == [])
        #expect(machine.failed(attempt: 1, code: .unavailable, pushback: nil, throttleAllows: true) == [.fail(1)])

        machine = RetryStateMachine(policy: .hedging(policy))
        _ = machine.start()
        #expect(
            machine.failed(attempt: 1, code: .unavailable, pushback: .retryAfter(.seconds(2)), throttleAllows: true)
                == [.scheduleTimer(after: .seconds(2), generation: 2)]
        )
        #expect(machine.requestCommitted() == [])
        #expect(machine.timerFired(generation: 2, throttleAllows: true) == [.startAttempt(2)])
        #expect(machine.receivedResponse(attempt: 2) == [.commit(2)])
    }

    @Test("Hedging: a new attempt each delay; a non-fatal failure starts the next at once; first headers win")
    func hedging() {
        let policy = HedgingPolicy(maxAttempts: 3, hedgingDelay: .seconds(1), nonFatalStatusCodes: [.unavailable])
        var machine = RetryStateMachine(policy: .hedging(policy))
        #expect(machine.start() == [.startAttempt(1), .scheduleTimer(after: .seconds(1), generation: 1)])
        #expect(
            machine.timerFired(generation: 1, throttleAllows: true) == [
                .startAttempt(2), .scheduleTimer(after: .seconds(1), generation: 2),
            ]
        )
        #expect(
            machine.failed(attempt: 1, code: .unavailable, pushback: nil, throttleAllows: true) == [
                .startAttempt(3), .cancelTimer,
            ]
        )
        #expect(machine.receivedResponse(attempt: 3) == [.cancelAttempt(2), .commit(3)])
        #expect(machine.receivedResponse(attempt: 2) == [])
    }

    @Test("Hedging: a fatal failure cancels the others; pushback stop waits for the outstanding ones")
    func hedgingFatalAndStop() {
        let policy = HedgingPolicy(maxAttempts: 3, hedgingDelay: .zero, nonFatalStatusCodes: [.unavailable])
        var machine = RetryStateMachine(policy: .hedging(policy))
        _ = machine.start()
        _ = machine.timerFired(generation: 1, throttleAllows: true)
        #expect(
            machine.failed(attempt: 2, code: .internal, pushback: nil, throttleAllows: true) == [
                .cancelTimer, .cancelAttempt(1), .fail(2),
            ]
        )

        machine = RetryStateMachine(policy: .hedging(policy))
        _ = machine.start()
        _ = machine.timerFired(generation: 1, throttleAllows: true)
        #expect(machine.failed(attempt: 1, code: .unavailable, pushback: .stop, throttleAllows: true) == [.cancelTimer])
        #expect(machine.failed(attempt: 2, code: .unavailable, pushback: nil, throttleAllows: true) == [.fail(2)])
    }

    @Test("Throttling: −1 per failure, +ratio per success, retries while tokens > max/2")
    func throttle() {
        var state = RetryThrottleState(RetryThrottling(maxTokens: 4, tokenRatio: 0.5))
        let first = state.recordFailure()  // 3 > 2
        #expect(first)
        let second = state.recordFailure()  // 2
        #expect(!second)
        state.recordSuccess()  // 2.5
        #expect(state.allowsRetry)
        for _ in 0..<10 { _ = state.recordFailure() }
        #expect(state.tokens == 0)
        for _ in 0..<20 { state.recordSuccess() }
        #expect(state.tokens == 4)
    }
}

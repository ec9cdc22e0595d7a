import Testing

@testable import CourierHTTP2

@Suite("Resolution state machine: rate limit and retries")
struct ResolutionStateMachineTests {
    /// 30 s between resolutions; failures retried after 1 s, 2 s, 4 s (no jitter).
    func machine() -> ResolutionStateMachine {
        ResolutionStateMachine(
            minimumInterval: .seconds(30),
            retryBackoff: ConnectionBackoff(initial: .seconds(1), multiplier: 2, jitter: 0, maximum: .seconds(8))
        )
    }

    @Test("The first request resolves at once")
    func first() {
        var machine = machine()
        #expect(machine.requested(now: t0) == [.resolve])
        #expect(machine.state == .resolving)
        #expect(machine.started == 1)
    }

    @Test("A request within 30 s of the last start waits for the 30 s; more requests fold into that")
    func rateLimited() {
        var machine = machine()
        _ = machine.requested(now: t0)
        #expect(machine.succeeded(now: t0 + .seconds(1)) == [])
        #expect(machine.requested(now: t0 + .seconds(5)) == [.armTimer(at: t0 + .seconds(30))])
        #expect(machine.requested(now: t0 + .seconds(6)) == [])
        #expect(machine.timerFired(now: t0 + .seconds(30)) == [.resolve])
        #expect(machine.started == 2)
        #expect(machine.lastStarted == t0 + .seconds(30))
    }

    @Test("A request 30 s or more after the last start resolves at once")
    func afterInterval() {
        var machine = machine()
        _ = machine.requested(now: t0)
        _ = machine.succeeded(now: t0)
        #expect(machine.requested(now: t0 + .seconds(30)) == [.resolve])
    }

    @Test("A request during a resolution is served (rate-limited) when it succeeds")
    func pendingDuringResolution() {
        var machine = machine()
        _ = machine.requested(now: t0)
        #expect(machine.requested(now: t0 + .seconds(1)) == [])
        #expect(machine.pending)
        #expect(machine.succeeded(now: t0 + .seconds(2)) == [.armTimer(at: t0 + .seconds(30))])
        #expect(!machine.pending)
    }

    @Test("Failures retry with the backoff, whatever the interval; a success resets it")
    func failures() {
        var machine = machine()
        _ = machine.requested(now: t0)
        #expect(machine.failed(now: t0) == [.armTimer(at: t0 + .seconds(1))])
        #expect(machine.requested(now: t0 + .milliseconds(500)) == [])  // the retry covers it
        #expect(machine.timerFired(now: t0 + .seconds(1)) == [.resolve])
        #expect(machine.failed(now: t0 + .seconds(1)) == [.armTimer(at: t0 + .seconds(3))])
        #expect(machine.timerFired(now: t0 + .seconds(3)) == [.resolve])
        _ = machine.succeeded(now: t0 + .seconds(3))
        _ = machine.requested(now: t0 + .seconds(40))
        #expect(machine.failed(now: t0 + .seconds(40)) == [.armTimer(at: t0 + .seconds(41))])
    }

    @Test("Events in the wrong state do nothing")
    func stale() {
        var machine = machine()
        #expect(machine.succeeded(now: t0) == [])
        #expect(machine.failed(now: t0) == [])
        #expect(machine.timerFired(now: t0) == [])
        #expect(machine.started == 0)
    }

    @Test("A zero interval (tests) never waits")
    func zeroInterval() {
        var machine = ResolutionStateMachine(minimumInterval: .zero, retryBackoff: ConnectionBackoff())
        _ = machine.requested(now: t0)
        _ = machine.succeeded(now: t0)
        #expect(machine.requested(now: t0) == [.resolve])
    }
}

@_spi(CourierInternals) public import Courier  // ManualRPCClock conforms to RPCClock
internal import Synchronization

/// An `RPCClock` that moves only when told to, for deadline tests that never sleep.
///
/// ```swift
/// let clock = ManualRPCClock()
/// let transport = InMemoryTransport(clock: clock)
/// // start a call with a 1 s timeout, wait for a signal that it is in progress, then:
/// clock.advance(by: .seconds(2))  // its deadline timers fire now, on this thread
/// ```
public final class ManualRPCClock: RPCClock {
    private struct Timer {
        var id: UInt64
        var deadline: ContinuousClock.Instant
        var action: @Sendable () -> Void
    }

    private struct State {
        var now: ContinuousClock.Instant
        var timers: [Timer] = []
        var nextID: UInt64 = 0
        var waiters: [(id: UInt64, count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: CourierMutex<State>

    /// Creates a clock that reads `start` until advanced.
    ///
    /// - Parameter start: The starting instant.
    public init(start: ContinuousClock.Instant = .now) {
        self.state = CourierMutex(State(now: start))
    }

    public var now: ContinuousClock.Instant { state.withLock { $0.now } }

    /// The number of timers scheduled and not yet fired or cancelled.
    public var pendingTimers: Int { state.withLock { $0.timers.count } }

    public func scheduleTimer(
        at deadline: ContinuousClock.Instant,
        _ action: @escaping @Sendable () -> Void
    ) -> any RPCTimer {
        let (id, ready) = state.withLock { state in
            state.nextID += 1
            state.timers.append(Timer(id: state.nextID, deadline: deadline, action: action))
            let count = state.timers.count
            let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= count }
            return (state.nextID, ready)
        }
        for waiter in ready { waiter.resume() }
        return ManualTimer(clock: self, id: id)
    }

    /// Returns once at least `count` timers are pending: the explicit signal that the code under test
    /// has armed its timers (a retry's backoff, a deadline) and waits for the clock.
    ///
    /// Returns early if the task is cancelled.
    ///
    /// - Parameter count: The number of pending timers to wait for.
    public func waitForPendingTimers(_ count: Int = 1) async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.timers.count >= count || Task.isCancelled { return true }
                    state.waiters.append((id, count, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume()
        }
    }

    /// Moves time forward and runs, in deadline order and on the calling thread, every timer that is
    /// then due.
    ///
    /// - Parameter duration: How far to move; must not be negative.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "A clock can't go back in time.")
        let due = state.withLock { state -> [Timer] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.timers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.timers.removeAll { $0.deadline <= now }
            return due
        }
        for timer in due { timer.action() }
    }

    fileprivate func cancel(id: UInt64) {
        state.withLock { $0.timers.removeAll { $0.id == id } }
    }

    private struct ManualTimer: RPCTimer {
        let clock: ManualRPCClock
        let id: UInt64
        func cancel() { clock.cancel(id: id) }
    }
}

/// The time source Courier enforces deadlines with: a current instant and one-shot timers.
///
/// Transports supply one (the HTTP/2 transport uses its event loop's timers; ``SystemRPCClock`` is the
/// default elsewhere), and tests supply a manual clock so that deadline tests need no sleeping.
///
/// Why not a Swift `Clock`: its only way to wait is `sleep`, which needs a task per pending deadline;
/// a timer callback lets a transport keep every deadline on its own loop.
public protocol RPCClock: Sendable {
    /// The current instant.
    var now: ContinuousClock.Instant { get }

    /// Arranges for `action` to run once, at or after `deadline`.
    ///
    /// `action` may run on any thread. If `deadline` has already passed, it runs soon, never inside this
    /// call.
    ///
    /// - Parameters:
    ///   - deadline: When to run.
    ///   - action: What to run.
    /// - Returns: A timer whose ``RPCTimer/cancel()`` stops `action` from running if it hasn't started.
    func scheduleTimer(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> any RPCTimer
}

/// A pending timer from ``RPCClock/scheduleTimer(at:_:)``.
public protocol RPCTimer: Sendable {
    /// Cancels the timer. Calling it again does nothing.
    ///
    /// An action that was already starting on another thread may still run: owners of timers make
    /// their actions idempotent, as Courier's are.
    func cancel()
}

/// The wall-clock ``RPCClock``, on `ContinuousClock`, with timers on Swift tasks.
public struct SystemRPCClock: RPCClock {
    /// Creates the clock.
    public init() {}

    public var now: ContinuousClock.Instant { ContinuousClock.now }

    public func scheduleTimer(
        at deadline: ContinuousClock.Instant,
        _ action: @escaping @Sendable () -> Void
    ) -> any RPCTimer {
        let task = Task {
            do {
                try await Task.sleep(until: deadline, tolerance: nil, clock: .continuous)
            } catch {
                return
            }
            action()
        }
        return TaskTimer(task: task)
    }

    private struct TaskTimer: RPCTimer {
        let task: Task<Void, Never>
        func cancel() { task.cancel() }
    }
}

extension RPCClock where Self == SystemRPCClock {
    /// The wall clock.
    public static var system: SystemRPCClock { SystemRPCClock() }
}

/// Task-local state that flows from a server handler into the client calls it makes.
enum RPCTaskLocals {
    /// The deadline of the RPC being served, inherited by nested client calls.
    @TaskLocal static var deadline: ContinuousClock.Instant?
}

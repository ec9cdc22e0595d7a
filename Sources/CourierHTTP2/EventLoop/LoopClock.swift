internal import Courier

/// The ``RPCClock`` of one event loop: deadlines of the streams the loop serves are timers on its timer
/// heap, fired on its thread, never a `Task.sleep`.
struct LoopClock: RPCClock {
    let loop: EventLoop

    var now: ContinuousClock.Instant { .now }

    func scheduleTimer(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> any RPCTimer {
        loop.scheduleTimer(at: deadline, action)
    }
}

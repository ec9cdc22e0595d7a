/// The bookkeeping of one event loop's handler tasks, as a value: events in, actions out.
///
/// A stream's handler runs in a task. Creating a task per RPC costs an allocation of the task, the
/// first slab of its allocator, and the runtime's work to start and destroy it; so a loop keeps the
/// tasks whose handler has returned, parked, and hands the next stream to one of them. A task whose
/// RPC was cancelled is not reused (cancellation is sticky), and at most `maxIdle` are parked; the
/// rest end. `Waiter` is what a parked task is woken through (a continuation in the transport, a
/// plain value in tests).
///
/// Shutdown: the listener stops new streams, then waits until no handler runs (``isQuiet``), then
/// ``close()``s the pool, which wakes every parked task to end, and waits until none is left
/// (``isFinished``).
struct HandlerPoolStateMachine<Waiter> {
    /// What to do with a new stream.
    enum ServeAction {
        /// Wake this parked task with the stream.
        case resume(Waiter)
        /// Start a new task (cancelled at once if the server is aborting).
        case start(cancelled: Bool)
    }

    /// What a task does once its handler has returned.
    enum FinishAction {
        /// It was parked: wait on the waiter for the next stream.
        case parked
        /// End (then report ``workerExited()``); `notify` tells the listener to check whether the
        /// shutdown can finish.
        case exit(notify: Bool)
    }

    /// Tasks parked at most.
    let maxIdle: Int
    private var idle: [Waiter] = []
    /// Live tasks: running a handler, or parked.
    private(set) var workers = 0
    /// Handlers running.
    private(set) var active = 0
    private var shuttingDown = false
    private var aborted = false
    private var closed = false

    init(maxIdle: Int) {
        self.maxIdle = max(0, maxIdle)
    }

    /// Parked tasks (for tests).
    var idleCount: Int { idle.count }

    /// No handler runs.
    var isQuiet: Bool { active == 0 }

    /// Closed, and every task has ended.
    var isFinished: Bool { closed && workers == 0 }

    /// A stream is ready for its handler.
    mutating func serve() -> ServeAction {
        active += 1
        if !closed, let waiter = idle.popLast() {
            return .resume(waiter)
        }
        workers += 1
        return .start(cancelled: aborted)
    }

    /// A task's handler has returned. `cancelled`: the task is cancelled, so it cannot serve another
    /// RPC. If the task is parked, `waiter` wakes it. Once the server is shutting down no task is
    /// parked: those parked before are woken by ``close()``.
    mutating func handlerFinished(cancelled: Bool, waiter: Waiter) -> FinishAction {
        active -= 1
        if !cancelled, !shuttingDown, idle.count < maxIdle {
            idle.append(waiter)
            return .parked
        }
        return .exit(notify: (shuttingDown || closed) && active == 0)
    }

    /// A task has ended. Returns whether the listener should check whether the shutdown can finish.
    /// Once the pool is closed the last task to end always reports it, whether or not the pool has
    /// been told of the shutdown yet: the listener may close a quiet pool before the abort that
    /// prompted it reaches the pool, and then nothing else would check again.
    mutating func workerExited() -> Bool {
        workers -= 1
        return (shuttingDown || closed) && (active == 0 || workers == 0)
    }

    /// The server is shutting down (`abort`: and cancelling every task, so a stream that still
    /// arrives finds its handler cancelled). Returns whether no handler runs.
    mutating func beginShutdown(abort: Bool) -> Bool {
        shuttingDown = true
        if abort { aborted = true }
        return active == 0
    }

    /// No stream will come any more: returns the parked tasks, to be woken to end. Later tasks
    /// end when their handler returns.
    mutating func close() -> [Waiter] {
        closed = true
        defer { idle = [] }
        return idle
    }
}

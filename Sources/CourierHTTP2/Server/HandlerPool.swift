@_spi(CourierInternals) internal import Courier

/// One event loop's handler tasks (``HandlerPoolStateMachine`` decides, this performs): a stream is
/// handed to a parked task when there is one, else to a new task that prefers the loop's executor.
/// Tasks are reused across RPCs, never shared by two at once. Between RPCs a parked task holds its
/// task object and its allocator's first slab (≈4 KiB of RSS: 256 parked measured ≈1 MiB) and nothing
/// of the RPC it served.
final class HandlerPool: Sendable {
    typealias Handler = @Sendable (any ServerTransportStream) async -> Void

    private struct State: ~Copyable {
        var machine: HandlerPoolStateMachine<UnsafeContinuation<HTTP2ServerStream?, Never>>
        /// Every live task, to cancel them on abort. A task that ends before its creator has stored its
        /// handle leaves its id in `exitedEarly` instead.
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var exitedEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    /// Tasks started so far (for tests: a task per RPC would make this the number of RPCs).
    var tasksStarted: Int { state.withLock { Int($0.nextID) } }

    private let state: CourierMutex<State>
    private let executor: EventLoopTaskExecutor
    private let handler: Handler
    /// Called when a shutdown may be able to finish (the listener checks).
    private let onQuiet: @Sendable () -> Void

    /// Parked tasks at most per loop: enough for the streams one read of a busy connection starts (64
    /// on four connections in benchmark (b)); ≈4 KiB each while parked. A cap of 64 kept most of the
    /// gain in (b) (139,588 vs 141,592 req/s; none parked: 130,230), see Performance.md.
    static let defaultMaxIdle = 256

    init(
        executor: EventLoopTaskExecutor,
        maxIdle: Int = HandlerPool.defaultMaxIdle,
        handler: @escaping Handler,
        onQuiet: @escaping @Sendable () -> Void
    ) {
        self.state = CourierMutex(State(machine: HandlerPoolStateMachine(maxIdle: maxIdle)))
        self.executor = executor
        self.handler = handler
        self.onQuiet = onQuiet
    }

    /// Runs the stream's handler on a parked task or a new one.
    func serve(_ stream: HTTP2ServerStream) {
        let (action, id) = state.withLock { state -> (HandlerPoolStateMachine<Waiter>.ServeAction, UInt64) in
            let action = state.machine.serve()
            if case .start = action { state.nextID += 1 }
            return (action, state.nextID)
        }
        switch action {
        case .resume(let waiter):
            waiter.resume(returning: stream)
        case .start(let cancelled):
            // Through a slot the task empties: a closure that captured the stream would keep it, and with it
            // its connection, for as long as the task lives.
            let first = Slot(stream)
            let task = Task(executorPreference: executor) { await self.work(first: first, id: id) }
            state.withLock { state in
                if state.exitedEarly.remove(id) == nil { state.tasks[id] = task }
            }
            if cancelled { task.cancel() }
        }
    }

    private typealias Waiter = UnsafeContinuation<HTTP2ServerStream?, Never>

    /// Holds the first stream until the new task takes it.
    private final class Slot: @unchecked Sendable {
        // @unchecked Sendable: written by the creator before the task starts, then only by the task.
        var stream: HTTP2ServerStream?
        init(_ stream: HTTP2ServerStream) { self.stream = stream }
    }

    private func work(first: Slot, id: UInt64) async {
        var next = first.stream.take()
        while next != nil {
            await serveOne(&next)
            next = await nextStream()
        }
        let notify = state.withLock { state -> Bool in
            if state.tasks.removeValue(forKey: id) == nil { state.exitedEarly.insert(id) }
            return state.machine.workerExited()
        }
        if notify { onQuiet() }
    }

    /// Runs the handler for the stream in `slot`, emptying it: once this returns, the task holds no
    /// reference to the stream while it is parked.
    private func serveOne(_ slot: inout HTTP2ServerStream?) async {
        guard let stream = slot.take() else { return }
        await handler(stream)
    }

    /// Parks the task until the next stream, or returns nil for it to end.
    private func nextStream() async -> HTTP2ServerStream? {
        let cancelled = Task.isCancelled
        var notify = false
        let stream = await withUnsafeContinuation { (continuation: Waiter) in
            let action = state.withLock { $0.machine.handlerFinished(cancelled: cancelled, waiter: continuation) }
            if case .exit(let quiet) = action {
                notify = quiet
                continuation.resume(returning: nil)
            }
        }
        if notify { onQuiet() }
        return stream
    }

    /// No handler runs.
    var isQuiet: Bool { state.withLock { $0.machine.isQuiet } }

    /// Closed, and every task has ended.
    var isFinished: Bool { state.withLock { $0.machine.isFinished } }

    /// The server is shutting down; `abort` also cancels every task. Returns whether no handler runs.
    func beginShutdown(abort: Bool) -> Bool {
        let (quiet, tasks) = state.withLock { state -> (Bool, [Task<Void, Never>]) in
            (state.machine.beginShutdown(abort: abort), abort ? Array(state.tasks.values) : [])
        }
        for task in tasks { task.cancel() }
        return quiet
    }

    /// No stream will come any more: parked tasks end.
    func close() {
        let waiters = state.withLock { $0.machine.close() }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}

@_spi(CourierInternals) internal import Courier

/// The task executor an ``HTTP2ClientTransport``'s callers prefer (``HTTP2ClientTransport/withExecutorPreference(_:)``)
/// and its loop runs their jobs on: the transport's loop while ``HTTP2ClientTransport/connect()`` runs it, the
/// global concurrent executor before the loop exists and after it has ended.
///
/// It exists from the transport's `init` (no I/O: an object and a lock), so a caller can prefer it before
/// `connect()` starts, as `withCourierClient` callers do, and a task that outlives the loop runs on instead of
/// sending its jobs to a loop that has stopped.
final class ClientTaskExecutor: TaskExecutor, Sendable {
    private let loop = CourierMutex<EventLoop?>(nil)

    init() {}

    /// From now on jobs go to `loop` (once: a transport runs one loop).
    func attach(_ loop: EventLoop) {
        self.loop.withLock { $0 = loop }
    }

    /// From now on jobs go to the global concurrent executor; releases the loop.
    func detach() {
        let loop = self.loop.withLock { loop in
            defer { loop = nil }
            return loop
        }
        _ = loop  // released outside the lock
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if let loop = loop.withLock({ $0 }), loop.enqueue(.taskJob(job)) { return }
        globalConcurrentExecutor.enqueue(ExecutorJob(job))
    }

    /// Whether the current task already prefers this executor. A caller that does can skip
    /// `withTaskExecutorPreference`, which pushes and pops a task status record (taking the task's
    /// status-record lock each way) for a preference that changes nothing.
    var isPreferredByCurrentTask: Bool {
        let mine = asUnownedTaskExecutor()
        return withUnsafeCurrentTask { $0?.unownedTaskExecutor == mine }
    }

    /// Runs `body` preferring this executor: directly when the task already prefers it, else under
    /// `withTaskExecutorPreference`.
    func withPreference<Result>(_ body: () async throws -> Result) async rethrows -> Result {
        if isPreferredByCurrentTask { return try await body() }
        return try await withTaskExecutorPreference(self) { try await body() }
    }
}

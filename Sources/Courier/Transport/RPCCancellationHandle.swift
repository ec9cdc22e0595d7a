internal import Synchronization

/// Connects a transport's "this RPC was cancelled" to the task that serves it.
///
/// A server transport creates one handle per stream and calls ``cancel()`` when the client cancels
/// (HTTP/2: RST_STREAM) or the connection is lost. Courier registers the handler's task with the
/// handle, so cancelling the handle cancels that task: `Task.isCancelled` turns true, cancellation
/// handlers run, and sleeping or reading throws. There is no extra task per RPC to watch for it.
public final class RPCCancellationHandle: Sendable {
    private enum State {
        case idle
        case running(TaskReference)
        case cancelled
        case finished
    }

    // `UnsafeCurrentTask` is not Sendable and must not outlive its task. The handle keeps it only while
    // the task is inside `withCurrentTaskRegistered`, and unregisters under the lock before leaving, so
    // `cancel()` can only reach a live task. Cancelling a task from another thread is thread-safe.
    private struct TaskReference: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    private let state = CourierMutex<State>(.idle)

    /// Creates a handle.
    public init() {}

    /// Cancels the RPC: its task, if it is running, and any task registered later.
    public func cancel() {
        state.withLock { state in
            switch state {
            case .idle:
                state = .cancelled
            case .running(let reference):
                reference.task.cancel()
                state = .cancelled
            case .cancelled, .finished:
                break
            }
        }
    }

    /// Whether ``cancel()`` has been called.
    public var isCancelled: Bool {
        state.withLock { if case .cancelled = $0 { true } else { false } }
    }

    /// Runs `body` with the current task registered, so that ``cancel()`` cancels it.
    package func withCurrentTaskRegistered<R>(_ body: () async -> R) async -> R {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            state.withLock { state in
                switch state {
                case .idle:
                    state = .running(TaskReference(task: task))
                case .cancelled:
                    task.cancel()
                case .running, .finished:
                    break
                }
            }
        }
        let result = await body()
        state.withLock { state in
            if case .running = state { state = .finished }
        }
        return result
    }
}

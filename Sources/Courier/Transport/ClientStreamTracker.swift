internal import Synchronization

/// Counts a client transport's open streams and tells `connect()` when a graceful shutdown has drained
/// them: the bookkeeping every ``ClientTransport`` needs for ``ClientTransport/connect()`` and
/// ``ClientTransport/beginGracefulShutdown()``.
package final class ClientStreamTracker: Sendable {
    private struct State {
        var shuttingDown = false
        var openStreams = 0
        var drained: UnsafeContinuation<Void, Never>?

        mutating func takeWaiterIfDrained() -> UnsafeContinuation<Void, Never>? {
            guard shuttingDown, openStreams == 0 else { return nil }
            defer { drained = nil }
            return drained
        }
    }

    private let state = CourierMutex(State())

    package init() {}

    /// Records a new stream.
    ///
    /// - Throws: ``RPCError`` `UNAVAILABLE` once shutdown has begun.
    package func open() throws(RPCError) {
        try state.withLock { state throws(RPCError) in
            guard !state.shuttingDown else {
                throw RPCError(code: .unavailable, message: "The client transport is shutting down.")
            }
            state.openStreams += 1
        }
    }

    /// Records a stream's end.
    package func close() {
        resume(
            state.withLock { state in
                state.openStreams -= 1
                return state.takeWaiterIfDrained()
            }
        )
    }

    /// Refuses new streams from now on.
    package func beginShutdown() {
        resume(
            state.withLock { state in
                state.shuttingDown = true
                return state.takeWaiterIfDrained()
            }
        )
    }

    /// Suspends until shutdown has begun and every stream has closed; cancelling the task begins the
    /// shutdown and returns at once.
    package func waitUntilDrained() async {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if (state.shuttingDown && state.openStreams == 0) || Task.isCancelled { return true }
                    state.drained = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            resume(
                state.withLock { state in
                    state.shuttingDown = true
                    defer { state.drained = nil }
                    return state.drained
                }
            )
        }
    }

    private func resume(_ waiter: UnsafeContinuation<Void, Never>?) {
        waiter?.resume()
    }
}

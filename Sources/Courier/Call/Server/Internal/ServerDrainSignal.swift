internal import Synchronization

/// Tells a server's handlers that it has begun a graceful shutdown: ``ServerContext/isDraining`` and
/// ``ServerContext/waitForDraining()`` read it. One per server; begun once, never reset.
package final class ServerDrainSignal: Sendable {
    private struct State {
        var draining = false
        var nextID = 0
        var waiters: [Int: UnsafeContinuation<Void, Never>] = [:]
    }

    private let state = CourierMutex(State())
    private let begun = Atomic(false)

    package init() {}

    /// Whether draining has begun (one relaxed load).
    package var isDraining: Bool { begun.load(ordering: .acquiring) }

    /// Draining begins: every waiter resumes. Later calls do nothing.
    package func begin() {
        let waiters = state.withLock { state -> [UnsafeContinuation<Void, Never>] in
            guard !state.draining else { return [] }
            state.draining = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        begun.store(true, ordering: .releasing)
        for waiter in waiters { waiter.resume() }
    }

    /// Suspends until draining begins or the calling task is cancelled.
    package func wait() async {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.draining || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

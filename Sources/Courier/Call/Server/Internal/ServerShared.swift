internal import Synchronization

/// What a server's handlers share: the drain signal, which tells them that it has begun a graceful
/// shutdown (``ServerContext/isDraining`` and ``ServerContext/waitForDraining()`` read it; begun once,
/// never reset), and the names of the services it serves (which server reflection lists). One per server.
package final class ServerShared: Sendable {
    private struct State {
        var draining = false
        var nextID = 0
        var waiters: [Int: UnsafeContinuation<Void, Never>] = [:]
    }

    private let state = CourierMutex(State())
    private let begun = Atomic(false)

    /// The fully qualified names of the services the server serves, sorted; `nil` when unknown.
    package let serviceNames: [String]?

    /// Creates the shared state of a server serving `serviceNames` (`nil`: unknown).
    package init(serviceNames: [String]? = nil) { self.serviceNames = serviceNames }

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

@_spi(CourierInternals) internal import Courier
internal import Synchronization

/// The transport's connectivity state, readable from any thread, and the streams that watch it. The
/// manager (on the loop) publishes each change; a watcher's stream starts with the state it was created
/// in, and ends at ``ConnectivityState/shutdown``.
final class ConnectivityBroadcaster: Sendable {
    private struct State {
        var current = ConnectivityState.idle
        var watchers: [UInt64: AsyncStream<ConnectivityState>.Continuation] = [:]
        var nextWatcher: UInt64 = 0
    }

    private let state = CourierMutex(State())

    var current: ConnectivityState { state.withLock { $0.current } }

    /// Publishes `new` (no-op when unchanged; nothing after shutdown).
    func publish(_ new: ConnectivityState) {
        let (watchers, finished) = state.withLock { state -> ([AsyncStream<ConnectivityState>.Continuation], Bool) in
            guard state.current != new, state.current != .shutdown else { return ([], false) }
            state.current = new
            let watchers = Array(state.watchers.values)
            if new == .shutdown { state.watchers.removeAll() }
            return (watchers, new == .shutdown)
        }
        for watcher in watchers {
            watcher.yield(new)
            if finished { watcher.finish() }
        }
    }

    /// The current state, then every change.
    func changes() -> AsyncStream<ConnectivityState> {
        let (stream, continuation) = AsyncStream<ConnectivityState>.makeStream(bufferingPolicy: .unbounded)
        // The first element is yielded under the lock, so no change can overtake it.
        let id = state.withLock { state -> UInt64? in
            continuation.yield(state.current)
            guard state.current != .shutdown else { return nil }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }
}

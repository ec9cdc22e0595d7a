public import Synchronization  // the inlinable withLock wraps Synchronization.Mutex (SPI, not API)

/// `Synchronization.Mutex`, made visible to ThreadSanitizer: every lock in the package is one of these.
///
/// On Linux, `Mutex` locks with atomics and `futex` inside the prebuilt Synchronization library, which
/// ThreadSanitizer does not instrument; it never sees the lock's happens-before edges, so it reports every
/// access that `withLock` serialises as a race (a two-thread counter is enough to show it). Built with
/// `-D COURIER_TSAN` (as `./dev/sanitize.sh thread` builds), `withLock` also tells ThreadSanitizer that it
/// acquires and releases the lock (`__tsan_acquire`/`__tsan_release` on the mutex's address, taken while
/// it is held), so real races stay reported and the lock's own accesses are not. Without the flag it is
/// `Mutex` and nothing else.
///
/// SPI (`@_spi(CourierInternals) import Courier`), not `package`: the optimizer specialises and inlines a
/// generic `@inlinable` function of another module only when its type is public. As a `package` type,
/// every `withLock` outside this module was a call to the unspecialised generic, which instantiated
/// `Mutex<Value>`'s metadata on each call (14 such calls per unary RPC on the client, from the event loop).
@_spi(CourierInternals)
public struct CourierMutex<Value: ~Copyable>: ~Copyable {
    @usableFromInline
    let mutex: Mutex<Value>

    /// Creates a mutex holding `initialValue`.
    @inlinable
    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// Runs `body` with the value while holding the lock, as `Mutex.withLock` does.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if COURIER_TSAN
        let address = withUnsafePointer(to: mutex) { UnsafeRawPointer($0) }
        return try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            _courierTSanAcquire(address)
            defer { _courierTSanRelease(address) }
            return try body(&value)
        }
        #else
        return try mutex.withLock(body)
        #endif
    }
}

extension CourierMutex: Sendable where Value: ~Copyable {}

#if COURIER_TSAN
/// ThreadSanitizer's annotation: the calling thread acquires the synchronisation object at `address`.
@usableFromInline
@_silgen_name("__tsan_acquire")
func _courierTSanAcquire(_ address: UnsafeRawPointer)

/// ThreadSanitizer's annotation: the calling thread releases the synchronisation object at `address`.
@usableFromInline
@_silgen_name("__tsan_release")
func _courierTSanRelease(_ address: UnsafeRawPointer)
#endif

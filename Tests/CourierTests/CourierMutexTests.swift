@_spi(CourierInternals) import Courier
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Many threads updating one value through `CourierMutex`.
private final class LockedCounter: Sendable {
    let state = CourierMutex<(count: Int, log: [Int])>((0, []))
}

/// Runs `body` on a new pthread (not a Swift executor), so the threads really run at once.
private func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    let rc = pthread_create(
        &thread,
        nil,
        { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        },
        box
    )
    precondition(rc == 0, "pthread_create: \(rc)")
    return thread
}

@Suite("CourierMutex")
struct CourierMutexTests {
    // Under ThreadSanitizer (./dev/sanitize.sh thread) this is the regression test for the lock's visibility:
    // with a plain Synchronization.Mutex, every access inside withLock below is reported as a race.
    @Test("Threads updating one value through withLock see each other's writes")
    func serialises() {
        let counter = LockedCounter()
        let threads = (0..<4).map { _ in
            startThread {
                for index in 0..<2_000 {
                    counter.state.withLock { state in
                        state.count += 1
                        state.log.append(index)
                        if state.log.count > 16 { state.log.removeAll(keepingCapacity: true) }
                    }
                }
            }
        }
        for thread in threads { pthread_join(thread, nil) }
        #expect(counter.state.withLock { $0.count } == 8_000)
    }

    @Test("withLock returns the body's result and rethrows its error")
    func resultAndError() {
        struct Failure: Error {}
        let mutex = CourierMutex(1)
        #expect(
            mutex.withLock { value -> Int in
                value += 1
                return value * 10
            } == 20
        )
        #expect(throws: Failure.self) { try mutex.withLock { _ throws(Failure) in throw Failure() } }
        #expect(mutex.withLock { $0 } == 2)
    }
}

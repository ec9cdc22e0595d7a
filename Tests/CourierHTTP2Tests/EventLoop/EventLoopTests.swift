@_spi(CourierInternals) import Courier
import Synchronization
import Testing

@testable import CourierHTTP2

final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }
}

final class FiredList: Sendable {
    private let storage = CourierMutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}

/// An actor that runs on a loop.
actor LoopBound {
    let loop: EventLoop
    var count = 0
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    init(loop: EventLoop) { self.loop = loop }

    func increment() -> Bool {
        count += 1
        return loop.inEventLoop
    }
}

@Suite("The event loop, on the backend COURIER_IO or the probe chose")
struct EventLoopTests {
    func withLoop<R>(_ body: (EventLoop) async throws -> R) async throws -> R {
        let loop = try EventLoop(name: "test-loop")
        defer {
            loop.stop()
            loop.join()
        }
        return try await body(loop)
    }

    @Test("Closures from other threads run on the loop's thread")
    func execute() async throws {
        try await withLoop { loop in
            #expect(!loop.inEventLoop)
            let onLoop = await withCheckedContinuation { continuation in
                loop.execute { continuation.resume(returning: loop.inEventLoop) }
            }
            #expect(onLoop)
        }
    }

    @Test("Tasks that prefer the loop run on it, child tasks included")
    func taskExecutorPreference() async throws {
        try await withLoop { loop in
            let results = await withTaskExecutorPreference(loop.taskExecutor) {
                await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
                    for _ in 0..<10 { group.addTask { loop.inEventLoop } }
                    var results = [loop.inEventLoop]
                    for await result in group { results.append(result) }
                    return results
                }
            }
            #expect(results.count == 11)
            #expect(results.allSatisfy { $0 })
        }
    }

    @Test("An actor can use the loop as its serial executor")
    func actorExecutor() async throws {
        try await withLoop { loop in
            let actor = LoopBound(loop: loop)
            var all = true
            for _ in 0..<1000 { all = await actor.increment() && all }
            #expect(all)
            #expect(await actor.count == 1000)
        }
    }

    @Test("100,000 jobs from two threads all run")
    func manyJobs() async throws {
        try await withLoop { loop in
            let counter = AtomicCounter()
            let done = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
                let total = 100_000
                for _ in 0..<2 {
                    Task.detached {
                        for _ in 0..<(total / 2) {
                            loop.execute {
                                let value = counter.increment()
                                if value == total { continuation.resume(returning: value) }
                            }
                        }
                    }
                }
            }
            #expect(done == 100_000)
        }
    }

    @Test("Timers fire in deadline order on the loop; cancelled ones never")
    func timers() async throws {
        try await withLoop { loop in
            let fired = FiredList()
            let now = ContinuousClock.now
            let result = await withCheckedContinuation { (continuation: CheckedContinuation<[Int], Never>) in
                _ = loop.scheduleTimer(at: now.advanced(by: .milliseconds(30))) {
                    fired.append(3)
                    continuation.resume(returning: fired.values)
                }
                _ = loop.scheduleTimer(at: now.advanced(by: .milliseconds(10))) { fired.append(1) }
                let cancelled = loop.scheduleTimer(at: now.advanced(by: .milliseconds(15))) {
                    fired.append(-1)
                }
                _ = loop.scheduleTimer(at: now.advanced(by: .milliseconds(20))) {
                    fired.append(loop.inEventLoop ? 2 : -2)
                }
                cancelled.cancel()
            }
            #expect(result == [1, 2, 3])
            #expect(ContinuousClock.now - now >= .milliseconds(30))
        }
    }

    @Test("A loop released right after stop() outlives its thread (no use after free)")
    func releasedAfterStop() async throws {
        for _ in 0..<50 {
            let loop = try EventLoop(name: "released")
            for _ in 0..<100 { loop.execute {} }
            loop.stop()
        }
    }

    // AddressSanitizer's leak check found the cycle: a pending timer's closure captured a connection whose
    // listener held the loop, so a stopped loop kept its timers (and the listener) forever.
    @Test("A stopped loop lets go of its pending timers and of work queued after it ended")
    func stopReleasesPending() async throws {
        final class Captured: Sendable {}
        weak var timerCapture: Captured?
        weak var cancelledCapture: Captured?
        weak var lateCapture: Captured?
        let loop = try EventLoop(name: "pending")
        do {
            let pending = Captured()
            let cancelled = Captured()
            timerCapture = pending
            cancelledCapture = cancelled
            _ = loop.scheduleTimer(at: .now.advanced(by: .seconds(3_600))) { _ = pending }
            loop.scheduleTimer(at: .now.advanced(by: .seconds(3_600))) { _ = cancelled }.cancel()
        }
        loop.stop()
        await loop.waitUntilStopped()
        do {
            let late = Captured()
            lateCapture = late
            loop.execute { _ = late }
        }
        #expect(timerCapture == nil)
        #expect(cancelledCapture == nil)
        #expect(lateCapture == nil)
    }

    @Test("A stopped loop's thread exits")
    func stop() async throws {
        let loop = try EventLoop(name: "stopping")
        loop.stop()
        await loop.waitUntilStopped()
        loop.join()
    }
}

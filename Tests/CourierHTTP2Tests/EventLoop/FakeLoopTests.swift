import Courier
import Synchronization
import Testing

@testable import CourierHTTP2

/// Queues `remaining` closures one after another: each queues the next when it runs.
final class Chain: Sendable {
    let loop: EventLoop
    private let remaining: Atomic<Int>
    private let ran = Atomic<Int>(0)

    init(loop: EventLoop, length: Int) {
        self.loop = loop
        self.remaining = Atomic(length)
    }

    var count: Int { ran.load(ordering: .relaxed) }

    func start() { loop.execute { self.step() } }

    private func step() {
        ran.add(1, ordering: .relaxed)
        if remaining.subtract(1, ordering: .relaxed).newValue > 0 { loop.execute { self.step() } }
    }
}

@Suite("The event loop, on a fake backend")
struct FakeLoopTests {
    @Test("Jobs run on the loop's thread, in the order each thread queued them")
    func order() throws {
        try withFakeLoop { fake in
            let ran = FiredList()
            for value in 1...3 { fake.loop.execute { ran.append(value) } }
            try onAnotherThread {
                for value in 11...13 { fake.loop.execute { ran.append(fake.loop.inEventLoop ? value : -value) } }
            }
            #expect(ran.values.isEmpty)
            fake.turn()
            #expect(ran.values.filter { $0 < 10 } == [1, 2, 3])
            #expect(ran.values.filter { $0 > 10 } == [11, 12, 13])
        }
    }

    @Test("Jobs queued by jobs run in further rounds of the same turn, with one kernel entry")
    func rounds() throws {
        try withFakeLoop { fake in
            let chain = Chain(loop: fake.loop, length: 10)
            chain.start()
            fake.turn()
            #expect(chain.count == 10)
            #expect(fake.kernel.waits.count == 1)
        }
    }

    @Test("A loop with work left after its rounds enters the kernel without waiting, then goes on")
    func busy() throws {
        try withFakeLoop { fake in
            // Two batches of 64 rounds per turn (before and after the timers), one job per round.
            let chain = Chain(loop: fake.loop, length: 200)
            chain.start()
            fake.turn()
            #expect(chain.count == 128)
            #expect(fake.kernel.waits == [.zero])
            fake.turn()
            #expect(chain.count == 200)
            #expect(fake.kernel.waits == [.zero, nil])
        }
    }

    @Test("An idle loop waits without a limit, or until its next timer")
    func idle() throws {
        try withFakeLoop { fake in
            fake.turn()
            #expect(fake.kernel.waits == [nil])
            let timer = fake.loop.scheduleTimer(at: .now + .seconds(3600)) {}
            fake.turn()
            let timeout = try #require(fake.kernel.waits.last ?? nil)
            #expect(timeout <= .seconds(3600) && timeout > .seconds(3500))
            timer.cancel()
            fake.turn()
            #expect(fake.kernel.waits.last == .some(nil))
        }
    }

    @Test("Due timers fire in deadline order (ties in scheduling order); cancelled ones never")
    func timers() throws {
        try withFakeLoop { fake in
            let fired = FiredList()
            let now = ContinuousClock.now
            _ = fake.loop.scheduleTimer(at: now - .milliseconds(1)) { fired.append(3) }
            _ = fake.loop.scheduleTimer(at: now - .milliseconds(3)) { fired.append(1) }
            _ = fake.loop.scheduleTimer(at: now - .milliseconds(2)) { fired.append(2) }
            _ = fake.loop.scheduleTimer(at: now - .milliseconds(1)) { fired.append(4) }
            let cancelled = fake.loop.scheduleTimer(at: now - .milliseconds(5)) { fired.append(-1) }
            let later = fake.loop.scheduleTimer(at: now + .seconds(3600)) { fired.append(-2) }
            cancelled.cancel()
            fake.turn()
            #expect(fired.values == [1, 2, 3, 4])
            later.cancel()
        }
    }

    @Test("Work a timer queues runs in the same turn")
    func timerWork() throws {
        try withFakeLoop { fake in
            let fired = FiredList()
            _ = fake.loop.scheduleTimer(at: .now - .milliseconds(1)) {
                fake.loop.execute { fired.append(2) }
                fired.append(1)
            }
            fake.turn()
            #expect(fired.values == [1, 2])
            #expect(fake.kernel.waits.count == 1)
        }
    }

    @Test("Other threads wake the loop only when its queue goes from empty to non-empty")
    func wakeUps() throws {
        try withFakeLoop { fake in
            let ran = AtomicCounter()
            try onAnotherThread {
                for _ in 0..<3 { fake.loop.execute { _ = ran.increment() } }
            }
            #expect(fake.kernel.wakeUps == 1)
            fake.loop.execute { _ = ran.increment() }  // from the loop's own thread: no wake-up
            #expect(fake.kernel.wakeUps == 1)
            fake.turn()
            #expect(ran.increment() == 5)
            try onAnotherThread { fake.loop.execute {} }
            #expect(fake.kernel.wakeUps == 2)
        }
    }

    @Test("A timer scheduled from another thread reaches the loop through a wake-up")
    func remoteTimer() throws {
        try withFakeLoop { fake in
            let fired = FiredList()
            try onAnotherThread {
                _ = fake.loop.scheduleTimer(at: .now - .milliseconds(1)) {
                    fired.append(fake.loop.inEventLoop ? 1 : -1)
                }
            }
            #expect(fake.kernel.wakeUps == 1)
            fake.turn()
            // Inserted by a job of the first round, fired after the rounds.
            #expect(fired.values == [1])
        }
    }

    @Test("A long round flushes early, and submits what it flushed, before it ends")
    func earlyFlush() throws {
        try withFakeLoop { fake in
            let io = ConnectionIO(loop: fake.loop)
            io.attach(fd: 5)
            var output: [UInt8] = [1, 2, 3]
            io.produceOutput = { buffer in
                buffer.append(contentsOf: output)
                output = []
            }
            let sentBeforeRoundEnded = Locked<Bool?>(nil)
            let kernel = fake.kernel
            fake.loop.execute { io.scheduleFlush() }
            fake.loop.execute {
                // Make the round longer than the early-flush threshold (busy, not sleeping).
                let start = ContinuousClock.now
                while start.duration(to: .now) < EventLoop.earlyFlushAfter * 2 {}
            }
            for _ in 3...EventLoop.earlyFlushJobs { fake.loop.execute {} }
            fake.loop.execute {
                let sent = kernel.pending(.send, fd: 5)?.bytes == [1, 2, 3] && kernel.calls.contains(.submit)
                sentBeforeRoundEnded.value = sent
            }
            fake.turn()
            #expect(sentBeforeRoundEnded.value == true)
        }
    }

    @Test("stop() runs the work queued before it, and the work that work queues, then ends the loop")
    func stopDrains() throws {
        let kernel = FakeBackend()
        let loop = try EventLoop(name: "fake", io: kernel, thread: .caller)
        let chain = Chain(loop: loop, length: 200)
        chain.start()
        let remote = AtomicCounter()
        try onAnotherThread {
            loop.execute { _ = remote.increment() }
            loop.stop()
        }
        var turns = 0
        while loop.runTurn() { turns += 1 }
        #expect(chain.count == 200)
        #expect(remote.increment() == 2)
        #expect(turns == 1)
        #expect(kernel.isTornDown)
        #expect(!loop.runTurn())
    }

    @Test("A task that prefers the loop, and an actor on the loop, run their jobs in its turns")
    func executors() throws {
        try withFakeLoop { fake in
            let actor = LoopBound(loop: fake.loop)
            let results = Locked<[Bool]>([])
            let loop = fake.loop
            Task(executorPreference: loop.taskExecutor) {
                var onLoop = [loop.inEventLoop]
                for _ in 0..<3 { onLoop.append(await actor.increment()) }
                onLoop.append(loop.inEventLoop)
                results.value = onLoop
            }
            var turns = 0
            while results.value.isEmpty && turns < 100 {
                fake.turn()
                turns += 1
            }
            #expect(results.value == [true, true, true, true, true])
        }
    }
}

@Suite("The timer heap")
struct TimerHeapTests {
    @Test("Timers pop in deadline order, ties in creation order, cancelled ones skipped")
    func order() {
        var heap = TimerHeap()
        let base = ContinuousClock.now
        let offsets = [5, 3, 9, 1, 3, 7, 2, 8, 3, 6]
        let timers = offsets.map { LoopTimer(deadline: base + .milliseconds($0)) {} }
        for timer in timers.reversed() { heap.insert(timer) }
        timers[2].cancel()  // 9 ms
        timers[3].cancel()  // 1 ms
        #expect(heap.nextDeadline() == base + .milliseconds(2))
        #expect(heap.popDue(now: base + .milliseconds(1)) == nil)
        var popped: [ObjectIdentifier] = []
        while let timer = heap.popDue(now: base + .seconds(1)) { popped.append(ObjectIdentifier(timer)) }
        let expected = [6, 1, 4, 8, 0, 9, 5, 7].map { ObjectIdentifier(timers[$0]) }
        #expect(popped == expected)
        #expect(heap.nextDeadline() == nil)
        #expect(heap.count == 0)
    }

    /// A live timer ahead of the rest (a connection's quiet timer before RPC deadlines) used to keep every
    /// cancelled timer behind it: 10,000 stayed here, and in benchmark (b) with `grpc-timeout` they took
    /// 190 MiB.
    @Test("Cancelled timers behind a live earlier one are swept out: the heap stays near its live size")
    func cancelledTimersDoNotAccumulate() {
        var heap = TimerHeap()
        let base = ContinuousClock.now
        let early = LoopTimer(deadline: base + .seconds(1)) {}
        heap.insert(early)
        var live: [LoopTimer] = []
        for index in 0..<10_000 {
            let timer = LoopTimer(deadline: base + .seconds(10) + .microseconds(index)) {}
            heap.insert(timer)
            if index % 100 == 0 { live.append(timer) } else { timer.cancel() }
            #expect(heap.popDue(now: base) == nil)  // what the loop does every turn: the top is live, not due
        }
        #expect(heap.count <= 2 * (live.count + 1) + TimerHeap.compactionFloor, "\(heap.count) timers kept")
        // Order is intact after the sweeps: the early timer, then the live ones by deadline.
        var popped: [ObjectIdentifier] = []
        while let timer = heap.popDue(now: base + .seconds(20)) { popped.append(ObjectIdentifier(timer)) }
        #expect(popped == ([early] + live).map { ObjectIdentifier($0) })
    }
}

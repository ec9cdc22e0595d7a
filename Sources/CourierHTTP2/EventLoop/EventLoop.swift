@_spi(CourierInternals) internal import Courier
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// One thread and one kernel interface (io_uring or epoll, see ``EventLoopBackend``): runs Swift jobs (as a
/// serial executor, and as a task executor through ``taskExecutor``), I/O completions and timers, all on
/// that thread.
///
/// A turn of the loop:
/// ```
/// run queued jobs in rounds (no kernel entry between rounds), flushing after each round
/// run the timers that are due, then the jobs they queued
/// enter the kernel once: submit what the turn produced, wait (not at all if work is queued, else until
///     the next timer or a completion or a wake-up), deliver the completions
/// ```
///
/// Threading: everything but ``enqueue(_:)``, ``execute(_:)``, ``scheduleTimer(at:_:)`` and ``stop()``
/// must be called on the loop's thread. Each connection registered with ``requestFlush(_:)`` sends once per
/// round.
final class EventLoop: @unchecked Sendable {
    // @unchecked Sendable: the backend (but its `wakeUp()`), the timer heap, the local queue and the flush
    // list are touched only on the loop thread (checked with `preconditionInEventLoop` in debug builds);
    // cross-thread state is in `incoming`, behind a lock.

    enum Work: Sendable {
        case actorJob(UnownedJob)
        case taskJob(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    /// Which thread runs the loop.
    enum Thread {
        /// A thread of its own, started by the initializer.
        case own
        /// The thread that creates the loop, which drives it by calling ``runTurn()``: for tests.
        case caller
    }

    private struct Incoming {
        var work: [Work] = []
        var stopping = false
        /// The loop has ended: work queued from now on would never run, so it is dropped.
        var ended = false
    }

    let name: String
    private let incoming = CourierMutex(Incoming())
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    @exclusivity(unchecked) private var local: [Work] = []
    /// The kernel interface. A `let`, so that calls through it need no exclusivity check.
    private let io: any EventLoopBackend
    @exclusivity(unchecked) private var timers = TimerHeap()
    @exclusivity(unchecked) private var flushQueue: [ConnectionIO] = []
    @exclusivity(unchecked) private var flushing: [ConnectionIO] = []
    /// Work that waits for the next kernel entry: writers that have used their share of a turn.
    @exclusivity(unchecked) private var afterPoll: [() -> Void] = []
    @exclusivity(unchecked) private var runningAfterPoll: [() -> Void] = []
    /// The loop's own thread until it is joined (``join()``) or detached (once ``waitUntilStopped()`` has seen
    /// it stop, or at deinit): one or the other exactly once, so no thread is left unjoined.
    private let thread = CourierMutex<pthread_t?>(nil)
    private let threadID = Atomic<UInt64>(0)
    @exclusivity(unchecked) private var ended = false
    private let finished = CourierMutex<(done: Bool, waiters: [UnsafeContinuation<Void, Never>])>((false, []))

    /// The facade through which tasks prefer this loop.
    let taskExecutor = EventLoopTaskExecutor()
    /// The task executor task jobs run on: ``taskExecutor``, or the one given at init (kept, so it lives as
    /// long as the loop that names it).
    private let jobTaskExecutor: UnownedTaskExecutor
    /// Given, it forwards to this loop: task jobs the loop can no longer run then go to the global
    /// concurrent executor instead of being dropped.
    private let givenTaskExecutor: (any TaskExecutor)?

    /// Whether the ring was created with SINGLE_ISSUER|DEFER_TASKRUN (else plain, or not io_uring).
    var usesDeferredTaskRun: Bool { io.usesDeferredTaskRun }
    /// How this loop does I/O.
    let backend: IOBackend

    /// Creates a loop and starts its thread.
    ///
    /// - Parameter taskExecutor: The task executor the loop's task jobs run on, when it isn't the loop's own
    ///   ``taskExecutor``: one that enqueues to this loop while it runs and to the global concurrent
    ///   executor otherwise. Task jobs that reach the loop after it ended go to the global executor.
    /// - Throws: ``IOError`` if the ring, the epoll instance, the eventfd or the thread can't be created.
    convenience init(
        name: String,
        entries: UInt32 = 1024,
        backend: IOBackend = .automatic,
        taskExecutor: (any TaskExecutor)? = nil
    ) throws {
        try self.init(
            name: name,
            io: try backend.makeBackend(entries: entries),
            thread: .own,
            taskExecutor: taskExecutor
        )
    }

    /// Creates a loop over a backend that isn't set up yet (a test's fake, or a real one).
    ///
    /// - Parameters:
    ///   - io: The backend; its ``EventLoopBackend/setUp()`` runs on the loop's thread.
    ///   - thread: `.own` starts a thread; `.caller` makes the calling thread the loop's, driven by
    ///     ``runTurn()``.
    ///   - taskExecutor: As for ``init(name:entries:backend:taskExecutor:)``.
    /// - Throws: ``IOError`` if the backend can't be set up or the thread can't be created.
    init(name: String, io: any EventLoopBackend, thread: Thread, taskExecutor: (any TaskExecutor)? = nil) throws {
        self.name = name
        self.io = io
        self.backend = io.kind
        self.jobTaskExecutor = (taskExecutor ?? self.taskExecutor).asUnownedTaskExecutor()
        self.givenTaskExecutor = taskExecutor
        self.taskExecutor.loop = self

        if case .caller = thread {
            threadID.store(UInt64(pthread_self()), ordering: .relaxed)
            do {
                try io.setUp()
            } catch {
                finished.withLock { $0.done = true }
                throw error
            }
            return
        }

        // The backend is set up on the loop thread: SINGLE_ISSUER binds a ring to its creator.
        let setup = CourierMutex<Result<Void, IOError>?>(nil)
        let ready = Atomic<Bool>(false)
        // The thread holds the loop strongly until it exits, so the loop outlives its thread even when
        // its last owner lets go right after `stop()`.
        let started: pthread_t
        do {
            started = try LoopThread.start { [self] in
                self.threadID.store(UInt64(pthread_self()), ordering: .relaxed)
                let result = Result { () throws(IOError) in try self.io.setUp() }
                setup.withLock { $0 = result }
                ready.store(true, ordering: .releasing)
                if case .success = result {
                    self.run()
                } else {
                    self.finished.withLock { $0.done = true }
                }
            }
        } catch {
            finished.withLock { $0.done = true }
            throw error
        }
        self.thread.withLock { $0 = started }
        // sched_yield(2) always succeeds on Linux.
        while !ready.load(ordering: .acquiring) { sched_yield() }
        if case .failure(let error) = setup.withLock({ $0! }) {
            self.thread.withLock { $0 = nil }
            LoopThread.join(started)
            throw error
        }
    }

    deinit {
        // The backend's resources are released here, so the thread that drives them must be gone.
        assert(finished.withLock { $0.done }, "event loop \(name) released while its thread runs")
        // Safe even on the loop's own thread, where the last owner may let go.
        detachThread()
    }

    /// Whether the caller runs on this loop's thread.
    var inEventLoop: Bool {
        threadID.load(ordering: .relaxed) == UInt64(pthread_self())
    }

    @inline(__always)
    func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "not on event loop \(name)", file: file, line: line)
    }

    // MARK: Work from any thread

    /// Queues work; wakes the loop if it may be sleeping.
    ///
    /// - Returns: false, and `work` is not queued, once the loop has ended.
    @discardableResult
    func enqueue(_ work: Work) -> Bool {
        if inEventLoop {
            if ended { return false }
            local.append(work)
            return true
        }
        let (queued, wake) = incoming.withLock { incoming -> (Bool, Bool) in
            if incoming.ended { return (false, false) }
            incoming.work.append(work)
            return (true, incoming.work.count == 1)
        }
        if wake { io.wakeUp() }
        return queued
    }

    /// Runs `body` on the loop.
    func execute(_ body: @escaping @Sendable () -> Void) {
        enqueue(.closure(body))
    }

    /// Stops the loop after the work queued so far; ``waitUntilStopped()`` returns once its thread exits.
    func stop() {
        incoming.withLock { $0.stopping = true }
        io.wakeUp()
    }

    /// Suspends until the loop's thread has exited.
    func waitUntilStopped() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let done = finished.withLock { state -> Bool in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        // Whoever waits for the stop doesn't join: a thread neither joined nor detached would keep its stack
        // and descriptor until the process exits (ThreadSanitizer reports it as a thread leak).
        detachThread()
    }

    /// Joins the loop's thread (blocking; not from the loop itself).
    func join() {
        precondition(!inEventLoop, "a loop can't join itself")
        if let started = thread.withLock({ thread in
            defer { thread = nil }
            return thread
        }) {
            LoopThread.join(started)
        }
    }

    /// Detaches the loop's thread unless it has been joined or detached: its resources go when it returns.
    private func detachThread() {
        if let started = thread.withLock({ thread in
            defer { thread = nil }
            return thread
        }) {
            pthread_detach(started)
        }
    }

    // MARK: Timers

    /// Runs `action` on the loop at `deadline`. Callable from any thread.
    func scheduleTimer(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> LoopTimer {
        let timer = LoopTimer(deadline: deadline, action: action)
        if inEventLoop {
            timers.insert(timer)
        } else {
            execute { [unowned self] in self.timers.insert(timer) }
        }
        return timer
    }

    // MARK: I/O, on the loop thread

    /// Asks for `connection.flush()` once the current round of jobs has run: what the round produced
    /// goes out in one send per connection. In a long round (many streams woken at once) the loop
    /// flushes early, every ``earlyFlushJobs`` jobs once ``earlyFlushAfter`` has passed, so that the
    /// peer can start on the first answers while the rest are computed.
    func requestFlush(_ connection: ConnectionIO) {
        flushQueue.append(connection)
    }

    /// Jobs between checks for an early flush.
    static let earlyFlushJobs = 16
    /// How long a round may hold output back.
    static let earlyFlushAfter = Duration.microseconds(50)

    /// How many times the loop has polled for I/O (entered the kernel). Work done between two polls shares
    /// one turn: a stream's writer gets a bounded share of it (see ``runAfterNextPoll(_:)``).
    @exclusivity(unchecked) private(set) var ioTurn: UInt64 = 0

    /// Runs `body` once the loop has next polled for I/O and delivered the completions it found (on the
    /// loop's thread). A writer that has used its share of the turn waits here, so that what arrived
    /// meanwhile (its own replies, other streams' requests) is handled before it writes more. The loop
    /// doesn't block in that poll while such work waits.
    func runAfterNextPoll(_ body: @escaping () -> Void) {
        preconditionInEventLoop()
        afterPoll.append(body)
    }

    private func runFlushes() {
        guard !flushQueue.isEmpty else { return }
        swap(&flushQueue, &flushing)
        for connection in flushing { connection.flush() }
        flushing.removeAll(keepingCapacity: true)
    }

    /// The socket `fd` is about to be closed by its owner (on the loop).
    func willClose(fd: Int32) {
        preconditionInEventLoop()
        io.willClose(fd: fd)
    }

    /// Forgets `fd` (``willClose(fd:)``) and closes it. Its operations must all have completed.
    func closeSocket(fd: Int32) {
        preconditionInEventLoop()
        io.willClose(fd: fd)
        io.close(fd: fd)
    }

    /// Shuts the socket down in both directions (best effort): its operations in flight complete soon.
    func shutdownSocket(fd: Int32) {
        preconditionInEventLoop()
        io.shutdown(fd: fd)
    }

    /// Shuts the socket's sending side down (best effort): the peer reads the end of the stream after
    /// what was sent; receiving goes on.
    func shutdownSocketOutput(fd: Int32) {
        preconditionInEventLoop()
        io.shutdownOutput(fd: fd)
    }

    /// Receives into `buffer`; `handler` gets the byte count (0 at end of stream) or a negative errno.
    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler) {
        preconditionInEventLoop()
        io.submitRecv(fd: fd, buffer: buffer, count: count, handler: handler)
    }

    /// Cancels the receive `handler` has in flight on `fd` (see ``EventLoopBackend/cancelRecv(fd:handler:)``).
    func cancelRecv(fd: Int32, handler: IOCompletionHandler) {
        preconditionInEventLoop()
        io.cancelRecv(fd: fd, handler: handler)
    }

    /// Sends from `buffer` (which must stay valid until the completion); `handler` gets the count sent.
    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler) {
        preconditionInEventLoop()
        io.submitSend(fd: fd, buffer: buffer, count: count, handler: handler)
    }

    /// Connects a socket; `handler` gets 0 or a negative errno. `address` must stay valid until then.
    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler) {
        preconditionInEventLoop()
        io.submitConnect(fd: fd, address: address, length: length, handler: handler)
    }

    /// Accepts a connection; `handler` gets the new fd (close-on-exec) or a negative errno.
    func submitAccept(fd: Int32, handler: IOCompletionHandler) {
        preconditionInEventLoop()
        io.submitAccept(fd: fd, handler: handler)
    }

    /// Sends what fits now, without waiting or a completion; returns the count sent or a negative errno.
    func sendWithoutWaiting(fd: Int32, buffer: UnsafeRawPointer, count: Int) -> Int32 {
        preconditionInEventLoop()
        return io.sendWithoutWaiting(fd: fd, buffer: buffer, count: count)
    }

    // MARK: The loop

    private func run() {
        while runTurn() {}
    }

    /// Runs one turn of the loop (see the type's documentation) on the loop's thread.
    ///
    /// - Returns: false once the loop has stopped: ``stop()`` was called and no work is left. The backend
    ///   is torn down then, and ``waitUntilStopped()`` returns.
    @discardableResult
    func runTurn() -> Bool {
        preconditionInEventLoop()
        if ended { return false }
        runWork()
        let now = ContinuousClock.now
        runDueTimers(now: now)
        runWork()  // what the timers started, and the flushes

        let (stopping, hasRemoteWork) = incoming.withLock { ($0.stopping, !$0.work.isEmpty) }
        let busy = !local.isEmpty || hasRemoteWork || !afterPoll.isEmpty
        if stopping && !busy {
            end()
            return false
        }
        io.waitForCompletions(timeout: busy ? .zero : timers.nextDeadline().map { now.duration(to: $0) })
        ioTurn &+= 1
        if !afterPoll.isEmpty {
            swap(&afterPoll, &runningAfterPoll)
            for body in runningAfterPoll { body() }
            runningAfterPoll.removeAll(keepingCapacity: true)
        }
        return true
    }

    private func end() {
        ended = true
        io.tearDown()
        // Nothing runs from here on, so nothing may keep what it would have run: a timer cancelled (lazily, it
        // stays in the heap until due) or not yet due holds a closure that captures its connection, whose
        // listener holds this loop, a cycle that leaked the listener, its loops and its connections.
        timers = TimerHeap()
        afterPoll.removeAll()
        let late = incoming.withLock { incoming -> [Work] in
            incoming.ended = true
            defer { incoming.work = [] }
            return incoming.work
        }
        if givenTaskExecutor != nil {
            // A task that prefers a forwarding executor runs on, elsewhere, instead of hanging.
            for case .taskJob(let job) in late { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
        }
        _ = late  // released here, outside the lock
        let waiters = finished.withLock { state -> [UnsafeContinuation<Void, Never>] in
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs queued work in rounds without entering the kernel between them.
    private func runWork() {
        // Whatever ends the rounds, nothing produced stays unflushed when the loop enters the kernel.
        defer { runFlushes() }
        var rounds = 0
        while rounds < 64 {
            var batch = incoming.withLock { incoming -> [Work] in
                var taken: [Work] = []
                swap(&taken, &incoming.work)
                return taken
            }
            if !local.isEmpty {
                if batch.isEmpty {
                    swap(&batch, &local)
                } else {
                    batch.append(contentsOf: local)
                    local.removeAll(keepingCapacity: true)
                }
            }
            if batch.isEmpty {
                if flushQueue.isEmpty { return }
                runFlushes()  // may wake writers: another round
                rounds += 1
                continue
            }
            var roundStart = ContinuousClock.now
            var sinceCheck = 0
            for work in batch {
                switch work {
                case .actorJob(let job): job.runSynchronously(on: asUnownedSerialExecutor())
                case .taskJob(let job): job.runSynchronously(on: jobTaskExecutor)
                case .closure(let body): body()
                }
                sinceCheck += 1
                if sinceCheck == Self.earlyFlushJobs {
                    sinceCheck = 0
                    if !flushQueue.isEmpty {
                        let now = ContinuousClock.now
                        if roundStart.duration(to: now) >= Self.earlyFlushAfter {
                            runFlushes()
                            io.submit()
                            roundStart = now
                        }
                    }
                }
            }
            runFlushes()
            rounds += 1
        }
    }

    private func runDueTimers(now: ContinuousClock.Instant) {
        while let timer = timers.popDue(now: now) {
            timer.fire()
        }
    }
}

// MARK: Executors

extension EventLoop: SerialExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        enqueue(.actorJob(UnownedJob(job)))
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        precondition(inEventLoop, "expected to run on event loop \(name)")
    }
}

/// The task-executor facade of an ``EventLoop``: tasks that prefer it run their jobs on the loop.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `loop` is set once, in the loop's initializer, before any thread can see it;
    // unowned(unsafe) because the loop owns this facade and outlives every use of it.
    unowned(unsafe) var loop: EventLoop!

    init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueue(.taskJob(UnownedJob(job)))
    }
}

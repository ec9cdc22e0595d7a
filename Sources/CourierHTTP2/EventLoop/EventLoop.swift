internal import CURing
internal import Courier
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// Something that receives an io_uring completion. Its owner keeps it alive until the last completion of
/// every operation it submitted (the one without `IORING_CQE_F_MORE`).
///
/// A class rather than a protocol so that the SQE's user data is an unretained pointer to it, and a
/// completion is a virtual call with no existential box.
class IOCompletionHandler {
    /// Handles one completion, on the loop's thread.
    func complete(result: Int32, flags: UInt32) {
        fatalError("IOCompletionHandler.complete must be overridden")
    }
}

/// One thread and one io_uring: runs Swift jobs (as a serial executor, and as a task executor through
/// ``taskExecutor``), I/O completions and timers, all on that thread.
///
/// Threading: everything but ``enqueue(_:)``, ``execute(_:)``, ``scheduleTimer(at:_:)`` and ``stop()``
/// must be called on the loop's thread. A loop runs jobs in rounds and enters the kernel once per turn
/// (submitting every SQE of the turn and collecting completions together), after running each
/// registered flush hook, so each connection sends once per turn.
final class EventLoop: @unchecked Sendable {
    // @unchecked Sendable: the ring, the timer heap, the local queue and the flush list are touched only
    // on the loop thread (checked with `preconditionInEventLoop` in debug builds); cross-thread state is
    // in `incoming`, behind a lock.

    enum Work: Sendable {
        case actorJob(UnownedJob)
        case taskJob(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    private struct Incoming {
        var work: [Work] = []
        var stopping = false
    }

    let name: String
    private let incoming = Mutex(Incoming())
    private var local: [Work] = []
    private var ring: UnsafeMutablePointer<io_uring>
    private var cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    private let cqeBatch: Int32 = 256
    private let eventFD: Int32
    private let eventBuffer: UnsafeMutablePointer<UInt64>
    private var eventReadArmed = false
    private var timers = TimerHeap()
    private var flushQueue: [ConnectionIO] = []
    private var flushing: [ConnectionIO] = []
    private var thread: pthread_t?
    private let threadID = Atomic<UInt64>(0)
    private let finished = Mutex<(done: Bool, waiters: [UnsafeContinuation<Void, Never>])>((false, []))

    /// The facade through which tasks prefer this loop.
    let taskExecutor = EventLoopTaskExecutor()

    /// Whether the ring was created with SINGLE_ISSUER|DEFER_TASKRUN (else plain).
    private(set) var usesDeferredTaskRun = false
    /// How this loop does I/O.
    let backend: IOBackend
    /// The epoll side, when ``backend`` is epoll.
    private var poller: EpollPoller?

    private static let eventFDUserData: UInt64 = 1
    private static let ignoredUserData: UInt64 = 2

    /// Creates a loop and starts its thread.
    ///
    /// - Throws: ``IOError`` if the ring or the eventfd can't be created.
    init(name: String, entries: UInt32 = 1024, backend: IOBackend = .automatic) throws {
        self.name = name
        self.backend = backend
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        cqes = .allocate(capacity: 256)
        eventBuffer = .allocate(capacity: 1)
        eventBuffer.initialize(to: 0)
        let fd = eventfd(0, CURing_EFD_CLOEXEC)
        guard fd >= 0 else {
            let error = IOError(errno: errno, call: "eventfd")
            ring.deallocate()
            cqes.deallocate()
            eventBuffer.deallocate()
            throw error
        }
        eventFD = fd
        taskExecutor.loop = self

        // The ring is created on the loop thread: SINGLE_ISSUER binds it to its creator.
        let setup = Mutex<Result<Void, IOError>?>(nil)
        let ready = Atomic<Bool>(false)
        // The thread holds the loop strongly until it exits, so the loop outlives its thread even when
        // its last owner lets go right after `stop()`.
        let box = Unmanaged.passRetained(ThreadStart { [self] in
            let result = Result { try self.setUpRing(entries: entries) }.mapError { $0 as! IOError }
            setup.withLock { $0 = result }
            ready.store(true, ordering: .releasing)
            if case .success = result {
                self.run()
            } else {
                self.finished.withLock { $0.done = true }
            }
        })
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, eventLoopThreadEntry, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw IOError(errno: rc, call: "pthread_create")  // deinit frees the ring memory and the eventfd
        }
        self.thread = thread
        while !ready.load(ordering: .acquiring) { sched_yield() }
        if case .failure(let error) = setup.withLock({ $0! }) {
            pthread_join(thread, nil)
            self.thread = nil
            throw error  // deinit frees the ring memory and the eventfd
        }
    }

    deinit {
        // The ring is freed here, so the thread that drives it must be gone.
        assert(finished.withLock { $0.done }, "event loop \(name) released while its thread runs")
        ring.deallocate()
        cqes.deallocate()
        eventBuffer.deallocate()
        close(eventFD)
    }

    private func setUpRing(entries: UInt32) throws {
        threadID.store(UInt64(pthread_self()), ordering: .relaxed)
        if backend == .epoll {
            let poller = try EpollPoller()
            poller.watchEventFD(eventFD)
            self.poller = poller
            return
        }
        var params = io_uring_params()
        params.flags = CURing_SETUP_SINGLE_ISSUER | CURing_SETUP_DEFER_TASKRUN
        var rc = io_uring_queue_init_params(entries, ring, &params)
        if rc == -EINVAL {
            params = io_uring_params()
            rc = io_uring_queue_init_params(entries, ring, &params)
        } else if rc == 0 {
            usesDeferredTaskRun = true
        }
        guard rc == 0 else { throw IOError(errno: -rc, call: "io_uring_queue_init_params") }
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
    func enqueue(_ work: Work) {
        if inEventLoop {
            local.append(work)
            return
        }
        let wake = incoming.withLock { incoming -> Bool in
            incoming.work.append(work)
            return incoming.work.count == 1
        }
        if wake { wakeUp() }
    }

    /// Runs `body` on the loop.
    func execute(_ body: @escaping @Sendable () -> Void) {
        enqueue(.closure(body))
    }

    private func wakeUp() {
        var one: UInt64 = 1
        _ = write(eventFD, &one, 8)
    }

    /// Stops the loop after the work queued so far; ``waitUntilStopped()`` returns once its thread exits.
    func stop() {
        incoming.withLock { $0.stopping = true }
        wakeUp()
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
    }

    /// Joins the loop's thread (blocking; not from the loop itself).
    func join() {
        precondition(!inEventLoop, "a loop can't join itself")
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
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

    private func runFlushes() {
        guard !flushQueue.isEmpty else { return }
        swap(&flushQueue, &flushing)
        for connection in flushing { connection.flush() }
        flushing.removeAll(keepingCapacity: true)
    }

    /// The socket `fd` is about to be closed by its owner (on the loop).
    func willClose(fd: Int32) {
        poller?.forget(fd)
    }

    /// Receives into `buffer`; `handler` gets the byte count (0 at end of stream) or a negative errno.
    func submitRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, handler: IOCompletionHandler) {
        if let poller {
            poller.recv(fd, buffer, count, handler)
            return
        }
        let sqe = makeSQE()
        io_uring_prep_recv(sqe, fd, buffer, count, 0)
        setHandler(handler, on: sqe)
    }

    /// Sends from `buffer` (which must stay valid until the completion); `handler` gets the count sent.
    func submitSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, handler: IOCompletionHandler) {
        if let poller {
            poller.send(fd, buffer, count, handler)
            return
        }
        let sqe = makeSQE()
        io_uring_prep_send(sqe, fd, buffer, count, Int32(MSG_NOSIGNAL))
        setHandler(handler, on: sqe)
    }

    /// Connects a socket; `handler` gets 0 or a negative errno. `address` must stay valid until then.
    func submitConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t, handler: IOCompletionHandler) {
        if let poller {
            poller.connect(fd, address, length, handler)
            return
        }
        let sqe = makeSQE()
        io_uring_prep_connect(sqe, fd, address, length)
        setHandler(handler, on: sqe)
    }

    /// Accepts a connection; `handler` gets the new fd (close-on-exec) or a negative errno.
    func submitAccept(fd: Int32, handler: IOCompletionHandler) {
        if let poller {
            poller.accept(fd, handler)
            return
        }
        let sqe = makeSQE()
        io_uring_prep_accept(sqe, fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        setHandler(handler, on: sqe)
    }

    /// A submission queue entry; submits pending ones first if the queue is full.
    func makeSQE() -> UnsafeMutablePointer<io_uring_sqe> {
        preconditionInEventLoop()
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        _ = io_uring_submit(ring)
        guard let sqe = io_uring_get_sqe(ring) else { fatalError("io_uring submission queue is full after submit") }
        return sqe
    }

    /// Sets a handler as an SQE's user data.
    @inline(__always)
    func setHandler(_ handler: IOCompletionHandler, on sqe: UnsafeMutablePointer<io_uring_sqe>) {
        io_uring_sqe_set_data64(sqe, UInt64(UInt(bitPattern: Unmanaged.passUnretained(handler).toOpaque())))
    }

    // MARK: The loop

    private func run() {
        armEventRead()
        while true {
            runWork()
            let now = ContinuousClock.now
            runDueTimers(now: now)
            runWork()  // what the timers started, and the flushes

            let (stopping, hasRemoteWork) = incoming.withLock { ($0.stopping, !$0.work.isEmpty) }
            if stopping && local.isEmpty && !hasRemoteWork { break }

            if let poller {
                let busy = !local.isEmpty || hasRemoteWork
                poller.wait(timeout: busy ? .zero : timers.nextDeadline().map { now.duration(to: $0) })
                poller.reap()
                continue
            }
            if !local.isEmpty || hasRemoteWork {
                _ = io_uring_submit_and_get_events(ring)
            } else if let next = timers.nextDeadline() {
                let wait = now.duration(to: next)
                var ts = __kernel_timespec(wait)
                var cqe: UnsafeMutablePointer<io_uring_cqe>?
                _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            } else {
                var cqe: UnsafeMutablePointer<io_uring_cqe>?
                _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, nil, nil)
            }
            reapCompletions()
        }
        if poller == nil { io_uring_queue_exit(ring) }
        poller = nil
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
                case .taskJob(let job): job.runSynchronously(on: taskExecutor.asUnownedTaskExecutor())
                case .closure(let body): body()
                }
                sinceCheck += 1
                if sinceCheck == Self.earlyFlushJobs {
                    sinceCheck = 0
                    if !flushQueue.isEmpty {
                        let now = ContinuousClock.now
                        if roundStart.duration(to: now) >= Self.earlyFlushAfter {
                            runFlushes()
                            if poller == nil { _ = io_uring_submit(ring) }
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

    private func armEventRead() {
        if poller != nil { return }  // epoll watches the eventfd from the start
        let sqe = makeSQE()
        io_uring_prep_read(sqe, eventFD, eventBuffer, 8, 0)
        io_uring_sqe_set_data64(sqe, Self.eventFDUserData)
        eventReadArmed = true
    }

    private func reapCompletions() {
        while true {
            let count = io_uring_peek_batch_cqe(ring, cqes, UInt32(cqeBatch))
            if count == 0 { return }
            for index in 0..<Int(count) {
                let cqe = cqes[index]!.pointee
                switch cqe.user_data {
                case Self.eventFDUserData:
                    armEventRead()
                case Self.ignoredUserData, 0:
                    break
                default:
                    let handler = Unmanaged<IOCompletionHandler>
                        .fromOpaque(UnsafeRawPointer(bitPattern: UInt(cqe.user_data))!)
                        .takeUnretainedValue()
                    handler.complete(result: cqe.res, flags: cqe.flags)
                }
            }
            io_uring_cq_advance(ring, count)
            if count < UInt32(cqeBatch) { return }
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

/// A timer on a loop; cancellable from any thread.
final class LoopTimer: RPCTimer, @unchecked Sendable {
    // @unchecked Sendable: `deadline` and `action` are immutable; `cancelled` is atomic; `heapIndex` is
    // touched only on the loop.
    let deadline: ContinuousClock.Instant
    private let action: @Sendable () -> Void
    private let cancelled = Atomic<Bool>(false)
    let sequence: UInt64

    private static let counter = Atomic<UInt64>(0)

    init(deadline: ContinuousClock.Instant, action: @escaping @Sendable () -> Void) {
        self.deadline = deadline
        self.action = action
        self.sequence = Self.counter.add(1, ordering: .relaxed).newValue
    }

    func cancel() {
        cancelled.store(true, ordering: .relaxed)
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    func fire() {
        if !isCancelled { action() }
    }
}

/// A binary min-heap of timers by deadline (then by creation order).
struct TimerHeap {
    private var heap: [LoopTimer] = []

    mutating func nextDeadline() -> ContinuousClock.Instant? {
        while let first = heap.first, first.isCancelled { _ = removeFirst() }
        return heap.first?.deadline
    }

    var count: Int { heap.count }

    mutating func insert(_ timer: LoopTimer) {
        heap.append(timer)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popDue(now: ContinuousClock.Instant) -> LoopTimer? {
        while let first = heap.first {
            if first.isCancelled {
                _ = removeFirst()
                continue
            }
            return first.deadline <= now ? removeFirst() : nil
        }
        return nil
    }

    private mutating func removeFirst() -> LoopTimer {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count, Self.before(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, Self.before(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }

    private static func before(_ a: LoopTimer, _ b: LoopTimer) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence)
    }
}

/// The thread entry's payload.
final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A pthread entry point: a free function, not a closure, so it carries no actor isolation.
private func eventLoopThreadEntry(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
    start.body()
    return nil
}

extension __kernel_timespec {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) {
            self.init(tv_sec: 0, tv_nsec: 0)
        } else {
            self.init(tv_sec: seconds, tv_nsec: attoseconds / 1_000_000_000)
        }
    }
}

/// A failed system call.
struct IOError: Error, CustomStringConvertible, Equatable {
    var errno: Int32
    var call: String

    init(errno: Int32, call: String) {
        self.errno = errno
        self.call = call
    }

    var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

internal import Synchronization

/// The request messages of one call with a retry or hedging policy, as a log: the producer appends,
/// every attempt reads from the start at its own pace, while the producer is still writing (a
/// bidirectional call's requests may depend on its responses). A value: the decisions only; the
/// ``RequestLog`` class adds the lock and the waiting.
///
/// While the call may still replay its request to a new attempt, the log keeps every message (within
/// the per-call limit and the client's budget) and an append returns at once. A message that doesn't
/// fit overflows the log: the coordinator is told, stops new attempts and then calls
/// ``stopReplay()``. From then on, and once the call has committed to an attempt, the log keeps only
/// what some reader has still to take, and an append returns when every reader has taken the message:
/// the backpressure of a call without retries.
struct RequestLogState<Message> {
    /// What an append asks of the writer.
    enum AppendResult {
        /// Kept for replay: the write is done.
        case kept
        /// The message didn't fit: tell the coordinator, then wait for ``writeStatus(_:)`` as for `queued`.
        case overflowed(index: Int)
        /// Wait until ``writeStatus(_:)`` for `index` is no longer `wait`.
        case queued(index: Int)
        /// The log is closed: throw.
        case closed(RPCError)
    }

    enum WriteStatus: Equatable {
        case done
        case wait
        case closed(RPCError)
    }

    /// What a reader gets.
    enum ReadResult {
        case message(Message)
        /// No more messages: the producer finished (or the reader was removed).
        case end
        /// Nothing new yet.
        case wait
        /// The producer failed, or the call ended.
        case failed(RPCError)
    }

    enum ProducerEnd: Equatable {
        case open
        case finished
        case failed(RPCError)
    }

    /// Why appends throw.
    enum Closure: Equatable {
        /// The call ended (deadline, cancellation, done): the producer stops with this error.
        case ended(RPCError)
        /// The committed attempt's stream can carry no more messages: the producer stops quietly,
        /// the response says what happened.
        case requestStreamClosed(RPCError)

        var error: RPCError {
            switch self {
            case .ended(let error), .requestStreamClosed(let error): error
            }
        }
    }

    let limit: Int
    /// The messages from index `base` on.
    private(set) var messages: [Message] = []
    private var sizes: [Int] = []
    private(set) var base = 0
    /// The bytes of `messages`.
    private(set) var bytes = 0
    /// Bytes reserved from the client's budget; given back when replay stops.
    private(set) var reserved = 0
    /// New attempts may still read the whole request.
    private(set) var replayable = true
    private(set) var overflowed = false
    private(set) var producer = ProducerEnd.open
    private(set) var closure: Closure?
    /// Each reader's (attempt's) next index.
    private(set) var readers: [Int: Int] = [:]
    private(set) var committed: Int?

    init(limit: Int) { self.limit = limit }

    /// The index after the last message.
    var end: Int { base + messages.count }

    /// Appends `message` of `size` bytes; `reserve` asks the client's budget for bytes.
    mutating func append(_ message: Message, size: Int, reserve: (Int) -> Bool) -> AppendResult {
        if let closure { return .closed(closure.error) }
        let index = end
        messages.append(message)
        sizes.append(size)
        bytes += size
        guard replayable, !overflowed else { return .queued(index: index) }
        if bytes <= limit, reserve(size) {
            reserved += size
            return .kept
        }
        overflowed = true
        return .overflowed(index: index)
    }

    /// Whether the writer of the message at `index` may go on.
    func writeStatus(_ index: Int) -> WriteStatus {
        if let closure { return .closed(closure.error) }
        if replayable { return overflowed ? .wait : .done }
        guard !readers.isEmpty else { return .wait }  // a retry that is still to start reads it
        return readers.values.allSatisfy { $0 > index } ? .done : .wait
    }

    /// Adds attempt `n` as a reader from the first message; false if the log no longer has it.
    mutating func addReader(_ n: Int) -> Bool {
        guard closure == nil, base == 0 else { return false }
        readers[n] = 0
        return true
    }

    /// The next message for attempt `n`.
    mutating func read(_ n: Int) -> ReadResult {
        if case .ended(let error) = closure { return .failed(error) }
        guard let cursor = readers[n] else { return .end }
        if cursor < end {
            readers[n] = cursor + 1
            let message = messages[cursor - base]
            trim()
            return .message(message)
        }
        switch producer {
        case .open: return .wait
        case .finished: return .end
        case .failed(let error): return .failed(error)
        }
    }

    /// Attempt `n` reads no more: it ended, or its stream could not take a write (`writeError`).
    mutating func removeReader(_ n: Int, writeError: RPCError? = nil) {
        guard readers.removeValue(forKey: n) != nil else { return }
        if committed == n, closure == nil, producer == .open {
            closure = .requestStreamClosed(writeError ?? .requestStreamClosed)
        }
        trim()
    }

    /// No new attempt will read from the start; returns the bytes to give back to the budget.
    mutating func stopReplay() -> Int {
        guard replayable else { return 0 }
        replayable = false
        defer { reserved = 0 }
        trim()
        return reserved
    }

    /// The call committed to attempt `n`: the others are no longer read for; returns the bytes to give
    /// back to the budget.
    mutating func commit(_ n: Int) -> Int {
        committed = n
        let released = stopReplay()
        for other in readers.keys where other != n { readers.removeValue(forKey: other) }
        if readers[n] == nil, closure == nil, producer == .open { closure = .requestStreamClosed(.requestStreamClosed) }
        trim()
        return released
    }

    /// The producer returned.
    mutating func finish() {
        if producer == .open { producer = .finished }
    }

    /// The producer threw `error`; returns the error the call fails with, or `nil` if the producer only
    /// stopped because the log had closed (the call's outcome is decided elsewhere).
    mutating func fail(_ error: RPCError) -> RPCError? {
        guard producer == .open else { return nil }
        switch closure {
        case .requestStreamClosed:
            producer = .finished
            return nil
        case .ended:
            producer = .failed(error)
            return nil
        case nil:
            producer = .failed(error)
            return error
        }
    }

    /// The call ended: appends throw `error`, readers stop; returns the bytes to give back to the budget.
    mutating func close(with error: RPCError) -> Int {
        if closure == nil { closure = .ended(error) }
        messages = []
        sizes = []
        base = end
        bytes = 0
        defer { reserved = 0 }
        return reserved
    }

    /// Drops what every reader has taken, once replay has stopped.
    private mutating func trim() {
        guard !replayable else { return }
        let low: Int
        if let lowest = readers.values.min() {
            low = lowest
        } else if committed != nil {
            low = end
        } else {
            return  // keep everything for the retry that is still to start
        }
        let drop = low - base
        guard drop > 0 else { return }
        bytes -= sizes[..<drop].reduce(0, +)
        messages.removeFirst(drop)
        sizes.removeFirst(drop)
        base = low
    }
}

extension RequestLogState: Sendable where Message: Sendable {}

extension RPCError {
    /// A request write that found the committed attempt's stream closed.
    static let requestStreamClosed = RPCError(code: .unavailable, message: "The request stream closed.")
}

/// ``RequestLogState`` behind a lock, with the waiting of writers and readers.
final class RequestLog: Sendable {
    private struct Locked {
        var log: RequestLogState<MessageBuffer>
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let state: CourierMutex<Locked>
    private let budget: RetryBufferBudget
    private let onOverflow: @Sendable () -> Void

    /// - Parameters:
    ///   - limit: The most bytes the call keeps for replay.
    ///   - budget: The client's bytes for replay.
    ///   - onOverflow: Called once when a message doesn't fit: the coordinator stops new attempts,
    ///     then calls ``stopReplay()``.
    init(limit: Int, budget: RetryBufferBudget, onOverflow: @escaping @Sendable () -> Void) {
        state = CourierMutex(Locked(log: RequestLogState(limit: limit)))
        self.budget = budget
        self.onOverflow = onOverflow
    }

    /// Changes the state and wakes every waiter (they check again).
    private func mutate<R>(_ body: (inout RequestLogState<MessageBuffer>) -> R) -> R {
        let (result, waiters) = state.withLock { state in
            let result = body(&state.log)
            defer { state.waiters = [:] }
            return (result, state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
        return result
    }

    /// Suspends while `waiting` holds (checked under the lock), until the state changes or the task is
    /// cancelled.
    private func wait(while waiting: (RequestLogState<MessageBuffer>) -> Bool) async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if Task.isCancelled || !waiting(state.log) { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// The error a write throws now, if the log is closed.
    var closedError: RPCError? { state.withLock { $0.log.closure?.error } }

    /// Appends `message`; returns when the writer may go on (see ``RequestLogState``).
    func append(_ message: MessageBuffer) async throws {
        let budget = self.budget
        let index: Int
        switch mutate({ $0.append(message, size: message.count, reserve: budget.reserve) }) {
        case .kept:
            return
        case .closed(let error):
            throw error
        case .overflowed(let n):
            index = n
            onOverflow()
        case .queued(let n):
            index = n
        }
        while true {
            switch state.withLock({ $0.log.writeStatus(index) }) {
            case .done: return
            case .closed(let error): throw error
            case .wait:
                if Task.isCancelled { throw closedError ?? .cancelledLocally }
                await wait { $0.writeStatus(index) == .wait }
            }
        }
    }

    func addReader(_ n: Int) -> Bool { mutate { $0.addReader(n) } }

    /// The next message for attempt `n`; `nil` at the end of the request.
    func next(_ n: Int) async throws(RPCError) -> MessageBuffer? {
        while true {
            switch mutate({ $0.read(n) }) {
            case .message(let message): return message
            case .end: return nil
            case .failed(let error): throw error
            case .wait:
                if Task.isCancelled { throw closedError ?? .cancelledLocally }
                await wait { state in
                    if case .ended = state.closure { return false }
                    guard let cursor = state.readers[n] else { return false }
                    return cursor >= state.end && state.producer == .open
                }
            }
        }
    }

    func removeReader(_ n: Int, writeError: RPCError? = nil) { mutate { $0.removeReader(n, writeError: writeError) } }

    func stopReplay() { budget.release(mutate { $0.stopReplay() }) }

    func commit(_ n: Int) { budget.release(mutate { $0.commit(n) }) }

    func finish() { mutate { $0.finish() } }

    /// See ``RequestLogState/fail(_:)``.
    func fail(_ error: RPCError) -> RPCError? { mutate { $0.fail(error) } }

    func close(with error: RPCError) { budget.release(mutate { $0.close(with: error) }) }
}

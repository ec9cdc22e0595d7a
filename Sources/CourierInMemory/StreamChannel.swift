@_spi(CourierInternals) internal import Courier
internal import Synchronization

/// A bounded single-consumer channel with backpressure: the in-memory stand-in for one direction of
/// an HTTP/2 stream (its flow-control window) or a listener's accept queue.
///
/// `send` enqueues and then suspends while more than `maxElements` elements or `maxBytes` bytes are
/// buffered, so a producer runs at most one element ahead of those limits. One element is always
/// admitted, so an element larger than `maxBytes` still passes (alone).
final class StreamChannel<Element: Sendable>: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: UnsafeContinuation<Void, any Error>
    }

    private struct State {
        var buffer: [Element] = []
        var head = 0
        var bufferedBytes = 0
        var consumer: (id: UInt64, continuation: UnsafeContinuation<Element?, any Error>)?
        var producers: [Waiter] = []
        var finished = false
        var failure: (any Error)?
        var nextID: UInt64 = 0

        var count: Int { buffer.count - head }

        mutating func makeID() -> UInt64 {
            nextID &+= 1
            return nextID
        }

        mutating func popFirst(size: (Element) -> Int) -> Element? {
            guard head < buffer.count else { return nil }
            let element = buffer[head]
            head += 1
            bufferedBytes -= size(element)
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 && head * 2 >= buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return element
        }

        /// Takes the first element and, when that makes room, the producers waiting for it (to be
        /// resumed outside the lock). Every path that takes an element goes through here: a consumer
        /// that takes one without waking them leaves a producer of an oversized element suspended
        /// for good.
        mutating func take(
            size: (Element) -> Int,
            hasRoom: (State) -> Bool
        ) -> (element: Element, resumed: [Waiter])? {
            guard let element = popFirst(size: size) else { return nil }
            var resumed: [Waiter] = []
            if !producers.isEmpty, hasRoom(self) {
                swap(&resumed, &producers)
            }
            return (element, resumed)
        }

        mutating func clear() {
            buffer.removeAll()
            head = 0
            bufferedBytes = 0
        }
    }

    private enum SendAction {
        case done
        case wait(UInt64)
        case handOver(UnsafeContinuation<Element?, any Error>)
        case fail(any Error)
    }

    private enum NextAction {
        case element(Element, [Waiter])
        case end
        case fail(any Error)
        case wait(UInt64)
    }

    private let state = CourierMutex(State())
    private let maxElements: Int
    private let maxBytes: Int
    private let size: @Sendable (Element) -> Int
    private let closedError: RPCError

    /// Creates a channel.
    ///
    /// - Parameters:
    ///   - maxElements: Elements buffered before `send` suspends.
    ///   - maxBytes: Bytes buffered before `send` suspends.
    ///   - closedError: What `send` throws after `finish` or `terminate`.
    ///   - size: The byte size of an element.
    init(
        maxElements: Int,
        maxBytes: Int,
        closedError: RPCError = RPCError(code: .cancelled, message: "The stream has ended."),
        size: @escaping @Sendable (Element) -> Int = { _ in 0 }
    ) {
        self.maxElements = max(1, maxElements)
        self.maxBytes = max(1, maxBytes)
        self.closedError = closedError
        self.size = size
    }

    private func hasRoom(_ state: State) -> Bool {
        state.count <= maxElements && state.bufferedBytes <= maxBytes
    }

    /// Elements currently buffered (for tests).
    var bufferedCount: Int { state.withLock { $0.count } }

    /// Producers currently suspended in `send` (for tests).
    var suspendedProducers: Int { state.withLock { $0.producers.count } }

    /// Enqueues an element, then suspends while the buffer is over its limits.
    ///
    /// - Throws: The channel's failure, `closedError` after `finish`, or `CancellationError` if the
    ///   task is cancelled while waiting for room (the element stays enqueued).
    func send(_ element: Element) async throws {
        let elementSize = size(element)
        let action = state.withLock { state -> SendAction in
            if let failure = state.failure { return .fail(failure) }
            if state.finished { return .fail(closedError) }
            if let consumer = state.consumer {
                state.consumer = nil
                return .handOver(consumer.continuation)
            }
            state.buffer.append(element)
            state.bufferedBytes += elementSize
            return hasRoom(state) ? .done : .wait(state.makeID())
        }
        switch action {
        case .done:
            return
        case .handOver(let continuation):
            continuation.resume(returning: element)
        case .fail(let error):
            throw error
        case .wait(let id):
            try await waitForRoom(id: id)
        }
    }

    private func waitForRoom(id: UInt64) async throws {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let result = state.withLock { state -> Result<Void, any Error>? in
                    if let failure = state.failure { return .failure(failure) }
                    if hasRoom(state) { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.producers.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.producers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.producers.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Receives the next element.
    ///
    /// - Returns: The element, or `nil` once the channel is finished and drained.
    /// - Throws: The channel's failure, or `CancellationError` if the task is cancelled while waiting.
    func next() async throws -> Element? {
        let action = state.withLock { state -> NextAction in
            if let failure = state.failure { return .fail(failure) }
            if let (element, resumed) = state.take(size: size, hasRoom: hasRoom) {
                return .element(element, resumed)
            }
            if state.finished { return .end }
            return .wait(state.makeID())
        }
        switch action {
        case .element(let element, let producers):
            for producer in producers { producer.continuation.resume() }
            return element
        case .end:
            return nil
        case .fail(let error):
            throw error
        case .wait(let id):
            return try await waitForElement(id: id)
        }
    }

    /// The slow path of ``next()``: an element that arrived since `next` looked is taken here, and
    /// the producers it made room for are resumed as in `next`.
    func waitForElement(id: UInt64) async throws -> Element? {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Element?, any Error>) in
                var resumed: [Waiter] = []
                let result = state.withLock { state -> Result<Element?, any Error>? in
                    if let failure = state.failure { return .failure(failure) }
                    if let taken = state.take(size: size, hasRoom: hasRoom) {
                        resumed = taken.resumed
                        return .success(taken.element)
                    }
                    if state.finished { return .success(nil) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.consumer = (id, continuation)
                    return nil
                }
                for producer in resumed { producer.continuation.resume() }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let consumer = state.withLock { state -> UnsafeContinuation<Element?, any Error>? in
                guard let consumer = state.consumer, consumer.id == id else { return nil }
                state.consumer = nil
                return consumer.continuation
            }
            consumer?.resume(throwing: CancellationError())
        }
    }

    /// Marks the end of the elements: the consumer drains the buffer, then receives `nil`.
    func finish() {
        let consumer = state.withLock { state -> UnsafeContinuation<Element?, any Error>? in
            guard !state.finished, state.failure == nil else { return nil }
            state.finished = true
            guard state.count == 0, let consumer = state.consumer else { return nil }
            state.consumer = nil
            return consumer.continuation
        }
        consumer?.resume(returning: nil)
    }

    /// Fails the channel: buffered elements are dropped and every pending and later operation throws
    /// `error`. Does nothing once the channel has finished and been drained, or has failed.
    /// Whether a consumer is suspended in ``next()`` (for tests).
    var hasConsumerForTesting: Bool { state.withLock { $0.consumer != nil } }

    /// The error the channel failed with, if it has (for tests).
    var failureForTesting: (any Error)? { state.withLock { $0.failure } }

    func fail(_ error: any Error) {
        let (consumer, producers) = state.withLock { state -> (UnsafeContinuation<Element?, any Error>?, [Waiter]) in
            guard state.failure == nil, !(state.finished && state.count == 0) else { return (nil, []) }
            state.failure = error
            state.clear()
            let consumer = state.consumer?.continuation
            state.consumer = nil
            var producers: [Waiter] = []
            swap(&producers, &state.producers)
            return (consumer, producers)
        }
        consumer?.resume(throwing: error)
        for producer in producers { producer.continuation.resume(throwing: error) }
    }

    /// Drops buffered elements and ends the channel with `final`; pending producers throw
    /// `closedError`. Does nothing if the channel has already finished or failed.
    func terminate(with final: Element) {
        let (consumer, producers) = state.withLock { state -> (UnsafeContinuation<Element?, any Error>?, [Waiter]) in
            guard !state.finished, state.failure == nil else { return (nil, []) }
            state.clear()
            state.finished = true
            var producers: [Waiter] = []
            swap(&producers, &state.producers)
            if let consumer = state.consumer {
                state.consumer = nil
                return (consumer.continuation, producers)
            }
            state.buffer.append(final)
            state.bufferedBytes = size(final)
            return (nil, producers)
        }
        consumer?.resume(returning: final)
        for producer in producers { producer.continuation.resume(throwing: closedError) }
    }
}

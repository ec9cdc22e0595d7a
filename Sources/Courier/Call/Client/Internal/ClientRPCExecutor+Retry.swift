internal import Synchronization

/// What the calls of one client share for retries and hedging: the throttle and the replay budget.
struct RetryEnvironment: Sendable {
    let throttle: RetryThrottle?
    let budget: RetryBufferBudget
    let perRPCBufferBytes: Int
    let random: @Sendable () -> Double
}

/// A client's retry throttle (gRFC A6), shared by its calls.
final class RetryThrottle: Sendable {
    private let state: CourierMutex<RetryThrottleState>

    init(_ config: RetryThrottling) { state = CourierMutex(RetryThrottleState(config)) }

    var allowsRetry: Bool { state.withLock { $0.allowsRetry } }
    func recordFailure() -> Bool { state.withLock { $0.recordFailure() } }
    func recordSuccess() { state.withLock { $0.recordSuccess() } }
}

/// The bytes of request messages all calls of a client may keep for replay.
final class RetryBufferBudget: Sendable {
    private let remaining: CourierMutex<Int>

    init(bytes: Int) { remaining = CourierMutex(bytes) }

    func reserve(_ bytes: Int) -> Bool {
        remaining.withLock { remaining in
            guard remaining >= bytes else { return false }
            remaining -= bytes
            return true
        }
    }

    func release(_ bytes: Int) { remaining.withLock { $0 += bytes } }
}

/// A value set once, awaited by any number of tasks.
final class OneShot<Value: Sendable>: Sendable {
    private let state = CourierMutex<(value: Value?, waiters: [CheckedContinuation<Value, Never>])>((nil, []))

    func set(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    func wait() async -> Value {
        await withCheckedContinuation { continuation in
            let value = state.withLock { state -> Value? in
                if let value = state.value { return value }
                state.waiters.append(continuation)
                return nil
            }
            if let value { continuation.resume(returning: value) }
        }
    }
}

/// The attempts of one call: their calls, the gates between the coordinator and the tasks holding their
/// streams open, the request log they read, and the reason the whole call ended early (deadline,
/// cancellation, a failing producer).
final class AttemptRegistry: Sendable {
    final class Slot: Sendable {
        /// The attempt's call once its stream is open; `nil` if it never opened.
        let opened = OneShot<ClientCall?>()
        /// The stream may close: the call has finished with this attempt, or dropped it.
        let release = OneShot<Bool>()
    }

    private struct State {
        var slots: [Int: Slot] = [:]
        var calls: [Int: ClientCall] = [:]
        var ended: RPCError?
    }

    private let state = CourierMutex(State())
    let log: RequestLog

    init(log: RequestLog) { self.log = log }

    func slot(_ n: Int) -> Slot {
        state.withLock { state in
            if let slot = state.slots[n] { return slot }
            let slot = Slot()
            state.slots[n] = slot
            return slot
        }
    }

    var endReason: RPCError? { state.withLock { $0.ended } }

    /// Attempt `n`'s call, once its stream has opened.
    func call(_ n: Int) -> ClientCall? { state.withLock { $0.calls[n] } }

    /// Records attempt `n`'s call; false (and the call cancelled) if the whole call has ended.
    func register(_ n: Int, _ call: ClientCall) -> Bool {
        let ended = state.withLock { state -> RPCError? in
            if let ended = state.ended { return ended }
            state.calls[n] = call
            return nil
        }
        if let ended {
            call.cancel(with: ended)
            return false
        }
        return true
    }

    /// Ends the whole call early: every attempt is cancelled with `reason`, unopened attempts give up.
    func end(with reason: (ClientCall?) -> RPCError) {
        let (calls, slots, error) = state.withLock { state -> ([ClientCall], [Slot], RPCError?) in
            guard state.ended == nil else { return ([], [], nil) }
            let error = reason(state.calls.max { $0.key < $1.key }?.value)
            state.ended = error
            return (Array(state.calls.values), Array(state.slots.values), error)
        }
        guard let error else { return }
        log.close(with: error)
        for call in calls { call.cancel(with: error) }
        for slot in slots { slot.opened.set(nil) }
    }

    /// Cancels attempt `n` (another won, or the call failed) and lets its stream close.
    func drop(_ n: Int) {
        let call = state.withLock { $0.calls[n] }
        log.removeReader(n)
        call?.cancelIfActive()
        slot(n).release.set(true)
    }

    /// Cancels what is still active and lets every stream close.
    func finishAll() {
        let (calls, slots) = state.withLock { (Array($0.calls.values), Array($0.slots.values)) }
        log.close(with: .cancelledLocally)
        for call in calls { call.cancelIfActive() }
        for slot in slots {
            slot.opened.set(nil)
            slot.release.set(true)
        }
    }
}

extension ClientRPCExecutor {
    /// What an attempt's task reports.
    enum AttemptEvent: Sendable {
        case outcome(Int, Result<ResponseHead, RPCError>)
        case timer(Int)
        /// The request outgrew the log: no new attempts.
        case overflowed
        case ended
    }

    /// A call with a retry or hedging policy: interceptors once, around attempts made per the policy.
    static func executeWithPolicy<Input: Sendable, Output: Sendable, Result: Sendable>(
        request: StreamingClientRequest<Input>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Input>,
        deserializer: some MessageDeserializer<Output>,
        options: CallOptions,
        policy: RetryStateMachine.Policy,
        transport: any ClientTransport,
        interceptors: [any ClientInterceptor],
        environment: RetryEnvironment,
        handler: (StreamingClientResponse<Output>) async throws -> Result
    ) async throws -> Result {
        let clock = transport.clock
        let (deadline, streamOptions) = try Self.deadline(for: options, clock: clock)
        let (events, continuation) = AsyncStream<AttemptEvent>.makeStream()
        let log = RequestLog(limit: environment.perRPCBufferBytes, budget: environment.budget) {
            continuation.yield(.overflowed)
        }
        let registry = AttemptRegistry(log: log)
        let timer = deadline.map { deadline in
            clock.scheduleTimer(at: deadline) {
                registry.end { .deadlineExceeded(waitingForConnection: $0?.stream.connectionWaitReason) }
                continuation.yield(.ended)
            }
        }
        defer { timer?.cancel() }

        return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            defer {
                registry.finishAll()
                continuation.finish()
                group.cancelAll()
            }
            return try await withTaskCancellationHandler {
                var context = ClientContext(descriptor: descriptor, deadline: deadline)
                context.reportsAttempts = true
                let response = try await intercept(interceptors[...], request, context) { request, context in
                    let limit = streamOptions.maxRequestMessageBytes
                    group.addTask {
                        await produce(
                            request,
                            serializer: serializer,
                            limit: limit,
                            registry: registry,
                            events: continuation
                        )
                    }
                    var attempts = Attempts(
                        request: request,
                        descriptor: descriptor,
                        serializer: serializer,
                        deserializer: deserializer,
                        options: streamOptions,
                        deadline: deadline,
                        transport: transport,
                        registry: registry,
                        events: continuation,
                        observers: context.attemptObservers
                    )
                    var machine = RetryStateMachine(policy: policy, random: environment.random)
                    return try await attempts.run(&machine, throttle: environment.throttle, events: events) {
                        group.addTask(operation: $0)
                    }
                }
                return try await handler(response)
            } onCancel: {
                registry.end { _ in .cancelledLocally }
                continuation.yield(.ended)
            }
        }
    }

    /// The attempts of one call, driven by a ``RetryStateMachine``.
    struct Attempts<
        Input: Sendable,
        Output: Sendable,
        Serializer: MessageSerializer<Input>,
        Deserializer: MessageDeserializer<Output>
    > {
        let request: StreamingClientRequest<Input>
        let descriptor: MethodDescriptor
        let serializer: Serializer
        let deserializer: Deserializer
        let options: CallOptions
        let deadline: ContinuousClock.Instant?
        let transport: any ClientTransport
        let registry: AttemptRegistry
        let events: AsyncStream<AttemptEvent>.Continuation
        let observers: [any ClientAttemptObserving]
        private var timer: (any RPCTimer)?
        /// The observers' end closures of the attempts that have started and not ended.
        private var attemptEnds: [Int: [@Sendable (RPCError?, RPCMessageByteCounts?) -> Void]] = [:]

        init(
            request: StreamingClientRequest<Input>,
            descriptor: MethodDescriptor,
            serializer: Serializer,
            deserializer: Deserializer,
            options: CallOptions,
            deadline: ContinuousClock.Instant?,
            transport: any ClientTransport,
            registry: AttemptRegistry,
            events: AsyncStream<AttemptEvent>.Continuation,
            observers: [any ClientAttemptObserving]
        ) {
            self.request = request
            self.descriptor = descriptor
            self.serializer = serializer
            self.deserializer = deserializer
            self.options = options
            self.deadline = deadline
            self.transport = transport
            self.registry = registry
            self.events = events
            self.observers = observers
        }

        /// Tells the observers that attempt `n` ended (once; later calls do nothing).
        private mutating func endAttempt(_ n: Int, _ error: RPCError?) {
            guard let ends = attemptEnds.removeValue(forKey: n) else { return }
            let counts = registry.call(n)?.stream.messageByteCounts
            for end in ends { end(error, counts) }
        }

        /// Tells the observers that every attempt still running ended with `error`.
        private mutating func endAttempts(_ error: RPCError) {
            for n in attemptEnds.keys.sorted() { endAttempt(n, error) }
        }

        /// The call's response, its attempt `n` ending when the response does.
        private mutating func committing(
            _ n: Int,
            _ outcome: Result<ResponseHead, RPCError>?
        ) async throws -> StreamingClientResponse<Output> {
            let response: StreamingClientResponse<Output>
            do {
                response = try await self.response(n, outcome)
            } catch {
                endAttempts(RPCError(clientError: error))
                throw error
            }
            let ends = attemptEnds.removeValue(forKey: n) ?? []
            endAttempts(RPCError(code: .cancelled, message: "Another attempt was committed."))
            guard !ends.isEmpty else { return response }
            let registry = self.registry
            return response.observingEnd { error in
                let counts = registry.call(n)?.stream.messageByteCounts
                for end in ends { end(error, counts) }
            }
        }

        mutating func run(
            _ machine: inout RetryStateMachine,
            throttle: RetryThrottle?,
            events stream: AsyncStream<AttemptEvent>,
            addTask: (@escaping @Sendable @concurrent () async -> Void) -> Void
        ) async throws -> StreamingClientResponse<Output> {
            do {
                return try await attempts(&machine, throttle: throttle, events: stream, addTask: addTask)
            } catch {
                endAttempts(RPCError(clientError: error))
                throw error
            }
        }

        private mutating func attempts(
            _ machine: inout RetryStateMachine,
            throttle: RetryThrottle?,
            events stream: AsyncStream<AttemptEvent>,
            addTask: (@escaping @Sendable @concurrent () async -> Void) -> Void
        ) async throws -> StreamingClientResponse<Output> {
            defer { timer?.cancel() }
            var iterator = stream.makeAsyncIterator()
            var outcomes: [Int: Result<ResponseHead, RPCError>] = [:]
            var pending = machine.start()
            while true {
                for action in pending {
                    switch action {
                    case .startAttempt(let n):
                        if !observers.isEmpty { attemptEnds[n] = observers.map { $0.attemptStarted(n) } }
                        try await start(n, addTask: addTask)
                    case .scheduleTimer(let delay, let generation):
                        timer?.cancel()
                        let events = self.events
                        timer = transport.clock.scheduleTimer(at: transport.clock.now.advanced(by: delay)) {
                            events.yield(.timer(generation))
                        }
                    case .cancelTimer:
                        timer?.cancel()
                        timer = nil
                    case .cancelAttempt(let n):
                        registry.drop(n)
                        endAttempt(n, RPCError(code: .cancelled, message: "The attempt was cancelled."))
                    case .commit(let n):
                        if let ended = registry.endReason { throw ended }
                        registry.log.commit(n)
                        throttle?.recordSuccess()
                        return try await committing(n, outcomes[n])
                    case .fail(let n):
                        if let ended = registry.endReason { throw ended }
                        return try await committing(n, outcomes[n])
                    }
                }
                guard let event = await iterator.next() else {
                    throw registry.endReason ?? .cancelledLocally
                }
                if let ended = registry.endReason { throw ended }
                switch event {
                case .ended:
                    throw registry.endReason ?? .cancelledLocally
                case .timer(let generation):
                    pending = machine.timerFired(generation: generation, throttleAllows: throttle?.allowsRetry ?? true)
                case .overflowed:
                    // Attempts started so far read the log from its start; none starts after (but the
                    // retry a timer is waiting for, which the log keeps everything for).
                    pending = machine.requestCommitted()
                    registry.log.stopReplay()
                case .outcome(let n, let outcome):
                    outcomes[n] = outcome
                    switch outcome {
                    case .success(.metadata):
                        pending = machine.receivedResponse(attempt: n)
                    case .success(.status(let status, _)) where status.code == .ok:
                        registry.drop(n)
                        endAttempt(n, nil)
                        pending = machine.receivedResponse(attempt: n)
                    case .success(.status(let status, let trailers)):
                        registry.drop(n)
                        endAttempt(n, RPCError(status: status, metadata: trailers))
                        pending = failed(&machine, n, status.code, RetryStateMachine.Pushback(trailers), throttle)
                    case .failure(let error):
                        registry.drop(n)
                        endAttempt(n, error)
                        let code = Status.Code(rawValue: error.code.rawValue) ?? .unknown
                        pending = failed(&machine, n, code, RetryStateMachine.Pushback(error.metadata), throttle)
                    }
                }
            }
        }

        private func failed(
            _ machine: inout RetryStateMachine,
            _ n: Int,
            _ code: Status.Code,
            _ pushback: RetryStateMachine.Pushback?,
            _ throttle: RetryThrottle?
        ) -> [RetryStateMachine.Action] {
            let allows = machine.isRetryable(code) ? (throttle?.recordFailure() ?? true) : true
            return machine.failed(attempt: n, code: code, pushback: pushback, throttleAllows: allows)
        }

        /// The response of the attempt the call ends with.
        private func response(
            _ n: Int,
            _ outcome: Result<ResponseHead, RPCError>?
        ) async throws
            -> StreamingClientResponse<Output>
        {
            guard let outcome else { throw RPCError(code: .internal, message: "No outcome for attempt \(n).") }
            switch outcome {
            case .failure(let error):
                throw error
            case .success(.status(let status, let trailers)):
                if let error = RPCError(status: status, metadata: trailers) {
                    return StreamingClientResponse(accepted: .failure(error))
                }
                return StreamingClientResponse(
                    accepted: .success(.init(metadata: [:], bodyParts: .elements([.trailingMetadata(trailers)])))
                )
            case .success(.metadata(let metadata)):
                guard let call = await registry.slot(n).opened.wait() else {
                    throw registry.endReason ?? .cancelledLocally
                }
                let body = ResponseBody(call: call, deserializer: deserializer, limit: options.maxResponseMessageBytes)
                return StreamingClientResponse(
                    accepted: .success(.init(metadata: metadata, bodyParts: RPCAsyncSequence(wrapping: body)))
                )
            }
        }

        /// Starts attempt `n`: a task opens its stream, writes the request from the log and reads the
        /// response head. Its reader is added here, in the coordinator, so that it is in the log before
        /// the coordinator can stop replay.
        private mutating func start(
            _ n: Int,
            addTask: (@escaping @Sendable @concurrent () async -> Void) -> Void
        ) async throws {
            var options = self.options
            if let deadline {
                let remaining = transport.clock.now.duration(to: deadline)
                guard remaining > .zero else { throw registry.endReason ?? .deadlineExceeded }
                options.timeout = remaining
            }
            var metadata = request.metadata
            if n > 1 { metadata.replaceOrAdd(.string("\(n - 1)"), forKey: "grpc-previous-rpc-attempts") }
            let slot = registry.slot(n)
            guard registry.log.addReader(n) else {
                // Only if the call ended meanwhile: the machine starts no attempt once replay stopped.
                slot.opened.set(nil)
                let error = registry.endReason ?? RPCError(code: .internal, message: "The request can't be replayed.")
                events.yield(.outcome(n, .failure(error)))
                return
            }
            let (transport, descriptor, registry, events) = (
                self.transport, self.descriptor, self.registry, self.events
            )
            let (attemptMetadata, attemptOptions) = (metadata, options)
            addTask { @concurrent in
                await Self.hold(
                    n,
                    metadata: attemptMetadata,
                    options: attemptOptions,
                    transport: transport,
                    descriptor: descriptor,
                    registry: registry,
                    slot: slot,
                    events: events
                )
            }
        }

        /// The task that holds attempt `n`'s stream open: it writes the request from the log (beside
        /// reading, so a bidirectional request can wait for responses), reads the response head, reports
        /// it and waits until the call is done with the stream.
        private static func hold(
            _ n: Int,
            metadata: Metadata,
            options: CallOptions,
            transport: any ClientTransport,
            descriptor: MethodDescriptor,
            registry: AttemptRegistry,
            slot: AttemptRegistry.Slot,
            events: AsyncStream<AttemptEvent>.Continuation
        ) async {
            let log = registry.log
            defer { log.removeReader(n) }
            do {
                try await transport.withStream(descriptor: descriptor, options: options) { stream in
                    let call = ClientCall(stream: stream)
                    guard registry.register(n, call) else {
                        slot.opened.set(nil)
                        return
                    }
                    slot.opened.set(call)
                    let headSent = try await sendHead(call, metadata)
                    await withTaskGroup(of: Void.self) { group in
                        if headSent {
                            group.addTask { await pump(n, call: call, log: log) }
                        } else {
                            log.removeReader(n)
                        }
                        let outcome: Result<ResponseHead, RPCError>
                        do {
                            outcome = .success(try await readHead(call))
                        } catch {
                            outcome = .failure(call.map(error))
                        }
                        events.yield(.outcome(n, outcome))
                        _ = await slot.release.wait()
                        group.cancelAll()
                    }
                }
            } catch {
                slot.opened.set(nil)
                let rpcError =
                    (error as? RPCError) ?? RPCError(code: .unavailable, message: "The attempt failed.", cause: error)
                events.yield(.outcome(n, .failure(rpcError)))
            }
        }

        /// Writes the log's messages to attempt `n`'s stream as they come, then half-closes. A write
        /// that fails means the stream is gone: the response says why.
        private static func pump(_ n: Int, call: ClientCall, log: RequestLog) async {
            do {
                while let message = try await log.next(n) {
                    do {
                        try await call.stream.write(.message(message))
                    } catch {
                        log.removeReader(n, writeError: call.requestWriteFailed(error))
                        return
                    }
                }
                try await call.stream.finish()
            } catch {
                // The producer failed or the call ended (the registry cancels the streams), or the
                // half-close found the stream gone.
            }
            log.removeReader(n)
        }
    }

    /// Runs the request producer into the call's log, beside the attempts. A producer that throws
    /// (other than because the log closed under it) fails the call with its error.
    static func produce<Input: Sendable>(
        _ request: StreamingClientRequest<Input>,
        serializer: some MessageSerializer<Input>,
        limit: Int?,
        registry: AttemptRegistry,
        events: AsyncStream<AttemptEvent>.Continuation
    ) async {
        let log = registry.log
        let writer = LogWriter(log: log, serializer: serializer, limit: limit)
        do {
            try await request.producer(RPCWriter(wrapping: writer))
            log.finish()
        } catch {
            let rpcError =
                (error as? RPCError)
                ?? RPCError(code: .unknown, message: "The request producer threw an error.", cause: error)
            guard let failure = log.fail(rpcError) else { return }
            registry.end { _ in failure }
            events.yield(.ended)
        }
    }
}

/// Serializes request messages into the call's ``RequestLog``, which every attempt reads.
struct LogWriter<Serializer: MessageSerializer>: RPCWriterProtocol where Serializer.Message: Sendable {
    let log: RequestLog
    let serializer: Serializer
    let limit: Int?

    func write(_ element: Serializer.Message) async throws {
        try await write(element, options: .default)
    }

    func write(_ element: Serializer.Message, options: RPCWriteOptions) async throws {
        if let closed = log.closedError { throw closed }
        let buffer = try serializer.serializeForSending(element, options: options, limit: limit, kind: .request)
        try await log.append(buffer)
    }
}

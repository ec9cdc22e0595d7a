/// Runs one RPC on the client: deadline, cancellation, interceptors, the request producer, and the
/// response handler.
@usableFromInline
enum ClientRPCExecutor {
    /// How the request producer runs relative to the response handler.
    enum ProducerMode {
        /// Before the response is awaited, in the calling task (one message, or a client stream whose
        /// response can only come after it).
        case beforeResponse
        /// Concurrently with the response handler, in a child task (bidirectional streaming).
        case concurrent
    }

    /// The deadline of a call (its own timeout, or an inherited deadline if sooner) and the options to
    /// open its stream with.
    @usableFromInline
    static func deadline(
        for options: CallOptions,
        clock: any RPCClock,
        readsInCallingTask: Bool = false
    ) throws(RPCError) -> (ContinuousClock.Instant?, CallOptions) {
        var deadline = options.timeout.map { clock.now.advanced(by: $0) }
        if let inherited = RPCTaskLocals.deadline {
            deadline = min(deadline ?? inherited, inherited)
        }
        var streamOptions = options
        // `withCall`'s cancellation handler cancels the stream, so reads in its task need none of their own.
        streamOptions.streamCancelledByCaller = readsInCallingTask
        if let deadline {
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else {
                throw RPCError(code: .deadlineExceeded, message: "Deadline exceeded before the call started.")
            }
            streamOptions.timeout = remaining
            streamOptions.deadline = deadline
        }
        return (deadline, streamOptions)
    }

    /// What every call gets around its work: the stream, the deadline's timer, and cancellation of the
    /// calling task turned into cancelling the call.
    ///
    /// `readsInCallingTask`: every read of the stream happens in `body`'s task (the unary path, not a
    /// response sequence a handler may hand to another task), so the transport may park reads without a
    /// cancellation handler of their own (``CallOptions/streamCancelledByCaller``).
    @inlinable
    static func withCall<Result: Sendable>(
        transport: any ClientTransport,
        descriptor: MethodDescriptor,
        options: CallOptions,
        readsInCallingTask: Bool = false,
        _ body: (ClientCall, ContinuousClock.Instant?) async throws -> Result
    ) async throws -> Result {
        let clock = transport.clock
        let (deadline, streamOptions) = try Self.deadline(
            for: options,
            clock: clock,
            readsInCallingTask: readsInCallingTask
        )
        return try await transport.withStream(descriptor: descriptor, options: streamOptions) { stream in
            let call = ClientCall(stream: stream)
            let timer = deadline.map { deadline in
                clock.scheduleTimer(at: deadline) {
                    call.cancel(with: .deadlineExceeded(waitingForConnection: stream.connectionWaitReason))
                }
            }
            defer { timer?.cancel() }
            return try await withTaskCancellationHandler {
                try await body(call, deadline)
            } onCancel: {
                call.cancel(with: .cancelledLocally)
            }
        }
    }

    /// Sends the request metadata, opening the stream; false if the stream could not start (the reason
    /// then comes from the response side).
    @usableFromInline
    static func sendHead(_ call: ClientCall, _ metadata: Metadata) async throws -> Bool {
        try metadata.validate()
        if let local = call.localError { throw local }
        do {
            try await call.stream.write(.metadata(metadata))
            return true
        } catch {
            return false
        }
    }

    /// The response head: metadata, or the status of a Trailers-Only response (the call is then finished).
    @usableFromInline
    enum ResponseHead: Sendable {
        case metadata(Metadata)
        case status(Status, Metadata)
    }

    @usableFromInline
    static func readHead(_ call: ClientCall) async throws -> ResponseHead {
        switch try await call.next() {
        case .metadata(let metadata):
            return .metadata(metadata)
        case .status(let status, let trailers):
            call.markFinished()
            return .status(status, trailers)
        case .message:
            call.cancel(with: .messageBeforeMetadata)
            throw RPCError.messageBeforeMetadata
        case nil:
            call.cancel(with: .endedWithoutStatus)
            throw RPCError.endedWithoutStatus
        }
    }

    /// Sends the request (`send` writes its messages), then half-closes. A write that failed because the
    /// stream is gone is not an error here: the response says what happened. Any other error cancels the
    /// RPC.
    @usableFromInline
    static func sendRequest(_ call: ClientCall, _ send: () async throws -> Void) async throws {
        do {
            try await send()
            do {
                try await call.stream.finish()
            } catch {
                return  // The stream is gone; the response says why.
            }
        } catch let error as RPCError {
            // A write that failed because the stream is gone: the response says what happened.
            if call.requestStreamClosed { return }
            call.cancel(with: error)
            throw call.localError ?? error
        } catch {
            if let local = call.localError { throw local }
            let wrapped = RPCError(code: .unknown, message: "The request producer threw an error.", cause: error)
            call.cancel(with: wrapped)
            throw wrapped
        }
    }

    static func execute<Input: Sendable, Output: Sendable, Result: Sendable>(
        request: StreamingClientRequest<Input>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Input>,
        deserializer: some MessageDeserializer<Output>,
        options: CallOptions,
        producerMode: ProducerMode,
        transport: any ClientTransport,
        interceptors: [any ClientInterceptor],
        handler: (StreamingClientResponse<Output>) async throws -> Result
    ) async throws -> Result {
        try await withCall(transport: transport, descriptor: descriptor, options: options) { call, deadline in
            var context = ClientContext(descriptor: descriptor, deadline: deadline)
            context.transportStream = call.stream
            switch producerMode {
            case .beforeResponse:
                let response = try await intercept(interceptors[...], request, context) { request, _ in
                    try await start(call, request, serializer, deserializer, options) { run in try await run() }
                }
                defer { call.cancelIfActive() }
                return try await handler(response)

            case .concurrent:
                return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
                    let response = try await intercept(interceptors[...], request, context) { request, _ in
                        try await start(call, request, serializer, deserializer, options) { run in
                            // Errors are recorded on the call by `runProducer`; the response reports them.
                            group.addTask { try? await run() }
                        }
                    }
                    defer {
                        call.cancelIfActive()
                        group.cancelAll()
                    }
                    return try await handler(response)
                }
            }
        }
    }

    /// The end of the interceptor chain: sends the request and waits for the response head.
    private static func start<Input: Sendable, Output: Sendable>(
        _ call: ClientCall,
        _ request: StreamingClientRequest<Input>,
        _ serializer: some MessageSerializer<Input>,
        _ deserializer: some MessageDeserializer<Output>,
        _ options: CallOptions,
        launch: (_ run: @escaping @Sendable () async throws -> Void) async throws -> Void
    ) async throws -> StreamingClientResponse<Output> {
        if try await sendHead(call, request.metadata) {
            let writer = RPCWriter(
                wrapping: RequestWriter(call: call, serializer: serializer, limit: options.maxRequestMessageBytes)
            )
            let producer = request.producer
            try await launch { try await runProducer(producer, writer: writer, call: call) }
        }

        switch try await readHead(call) {
        case .metadata(let metadata):
            let body = ResponseBody(call: call, deserializer: deserializer, limit: options.maxResponseMessageBytes)
            return StreamingClientResponse(
                accepted: .success(.init(metadata: metadata, bodyParts: RPCAsyncSequence(wrapping: body)))
            )
        case .status(let status, let trailers):
            if let error = RPCError(status: status, metadata: trailers) {
                return StreamingClientResponse(accepted: .failure(error))
            }
            // Trailers-Only with OK: no messages.
            return StreamingClientResponse(
                accepted: .success(.init(metadata: [:], bodyParts: .elements([.trailingMetadata(trailers)])))
            )
        }
    }

    /// Runs the request producer, then half-closes (see ``sendRequest(_:_:)``).
    private static func runProducer<Input: Sendable>(
        _ producer: @Sendable (RPCWriter<Input>) async throws -> Void,
        writer: RPCWriter<Input>,
        call: ClientCall
    ) async throws {
        try await sendRequest(call) { try await producer(writer) }
    }

    static func intercept<Input: Sendable, Output: Sendable>(
        _ interceptors: ArraySlice<any ClientInterceptor>,
        _ request: StreamingClientRequest<Input>,
        _ context: ClientContext,
        _ final: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard let first = interceptors.first else {
            return try await final(request, context)
        }
        return try await first.intercept(request: request, context: context) { request, context in
            try await intercept(interceptors.dropFirst(), request, context, final)
        }
    }
}

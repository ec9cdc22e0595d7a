/// Runs one RPC on the client: deadline, cancellation, interceptors, the request producer, and the
/// response handler.
enum ClientRPCExecutor {
    /// How the request producer runs relative to the response handler.
    enum ProducerMode {
        /// Before the response is awaited, in the calling task (one message, or a client stream whose
        /// response can only come after it).
        case beforeResponse
        /// Concurrently with the response handler, in a child task (bidirectional streaming).
        case concurrent
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
        let clock = transport.clock
        var deadline = options.timeout.map { clock.now.advanced(by: $0) }
        if let inherited = RPCTaskLocals.deadline {
            deadline = min(deadline ?? inherited, inherited)
        }
        var streamOptions = options
        if let deadline {
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else {
                throw RPCError(code: .deadlineExceeded, message: "Deadline exceeded before the call started.")
            }
            streamOptions.timeout = remaining
        }
        let context = ClientContext(descriptor: descriptor, deadline: deadline)

        return try await transport.withStream(descriptor: descriptor, options: streamOptions) { stream in
            let call = ClientCall(stream: stream)
            let timer = deadline.map { deadline in
                clock.scheduleTimer(at: deadline) {
                    call.cancel(with: RPCError(code: .deadlineExceeded, message: "Deadline exceeded."))
                }
            }
            defer { timer?.cancel() }

            return try await withTaskCancellationHandler {
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
            } onCancel: {
                call.cancel(with: RPCError(code: .cancelled, message: "The RPC was cancelled."))
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
        try request.metadata.validate()
        if let local = call.localError { throw local }

        var started = true
        do {
            try await call.stream.write(.metadata(request.metadata))
        } catch {
            // The stream could not start; the reason comes from the response side.
            started = false
        }
        if started {
            let writer = RPCWriter(
                wrapping: RequestWriter(call: call, serializer: serializer, limit: options.maxRequestMessageBytes)
            )
            let producer = request.producer
            try await launch { try await runProducer(producer, writer: writer, call: call) }
        }

        switch try await call.next() {
        case .metadata(let metadata):
            let body = ResponseBody(call: call, deserializer: deserializer, limit: options.maxResponseMessageBytes)
            return StreamingClientResponse(
                accepted: .success(.init(metadata: metadata, bodyParts: RPCAsyncSequence(wrapping: body)))
            )
        case .status(let status, let trailers):
            call.markFinished()
            if let error = RPCError(status: status, metadata: trailers) {
                return StreamingClientResponse(accepted: .failure(error))
            }
            // Trailers-Only with OK: no messages.
            return StreamingClientResponse(
                accepted: .success(.init(metadata: [:], bodyParts: .elements([.trailingMetadata(trailers)])))
            )
        case .message:
            let error = RPCError(code: .internal, message: "Received a response message before response metadata.")
            call.cancel(with: error)
            throw error
        case nil:
            let error = RPCError(code: .internal, message: "The response ended without a status.")
            call.cancel(with: error)
            throw error
        }
    }

    /// Runs the request producer, then half-closes. A write that failed because the stream is gone is
    /// not an error here: the response says what happened. Any other error cancels the RPC.
    private static func runProducer<Input: Sendable>(
        _ producer: @Sendable (RPCWriter<Input>) async throws -> Void,
        writer: RPCWriter<Input>,
        call: ClientCall
    ) async throws {
        do {
            try await producer(writer)
            do {
                try await call.stream.finish()
            } catch {
                return  // The stream is gone; the response says why.
            }
        } catch is RequestStreamClosed {
            return
        } catch let error as RPCError {
            call.cancel(with: error)
            throw call.localError ?? error
        } catch {
            if let local = call.localError { throw local }
            let wrapped = RPCError(code: .unknown, message: "The request producer threw an error.", cause: error)
            call.cancel(with: wrapped)
            throw wrapped
        }
    }

    private static func intercept<Input: Sendable, Output: Sendable>(
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

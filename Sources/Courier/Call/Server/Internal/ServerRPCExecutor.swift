internal import Logging
internal import Synchronization

/// What every RPC of a server shares: interceptors, limits, the logger.
@usableFromInline
struct ServerRPCEnvironment: Sendable {
    var interceptors: [any ServerInterceptor]
    @usableFromInline var maxRequestMessageBytes: Int?
    @usableFromInline var maxResponseMessageBytes: Int?
    var logger: Logger

    /// No interceptors: unary RPCs take the plain path.
    @usableFromInline var hasNoInterceptors: Bool { interceptors.isEmpty }
}

/// Runs one RPC on the server: deadline, cancellation, interceptors, handler, status.
@usableFromInline
enum ServerRPCExecutor {
    @usableFromInline
    static func execute<Input: Sendable, Output: Sendable>(
        stream: any ServerTransportStream,
        context: ServerContext,
        environment: ServerRPCEnvironment,
        deserializer: some MessageDeserializer<Input>,
        serializer: some MessageSerializer<Output>,
        handler:
            @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async {
        await withScope(stream: stream, context: context) { call in
            await run(call, context, environment, deserializer, serializer, handler)
        }
    }

    /// What every RPC gets around its handler: the deadline's timer and task-local value, and the task
    /// registered for cancellation.
    @usableFromInline
    static func withScope(
        stream: any ServerTransportStream,
        context: ServerContext,
        _ body: (ServerCall) async -> Void
    ) async {
        let call = ServerCall(stream: stream)
        var timer: (any RPCTimer)?
        if let deadline = context.deadline {
            if context.clock.now >= deadline {
                call.expire()
                return
            }
            timer = context.clock.scheduleTimer(at: deadline) { call.expire() }
        }

        await stream.cancellation.withCurrentTaskRegistered {
            if let deadline = context.deadline {
                await RPCTaskLocals.$deadline.withValue(deadline) {
                    await body(call)
                }
            } else {
                await body(call)
            }
        }
        timer?.cancel()
    }

    @usableFromInline
    static func checkRequestSize(_ buffer: MessageBuffer, limit: Int?) throws(RPCError) {
        try MessageKind.request.checkSize(buffer, limit: limit)
    }

    @inlinable
    static func serializeResponse<Serializer: MessageSerializer>(
        _ message: Serializer.Message,
        _ serializer: Serializer,
        _ options: RPCWriteOptions,
        _ limit: Int?
    ) throws(RPCError) -> MessageBuffer {
        try serializer.serializeForSending(message, options: options, limit: limit, kind: .response)
    }

    private static func run<Input: Sendable, Output: Sendable>(
        _ call: ServerCall,
        _ context: ServerContext,
        _ environment: ServerRPCEnvironment,
        _ deserializer: some MessageDeserializer<Input>,
        _ serializer: some MessageSerializer<Output>,
        _ handler:
            @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async {
        let messages = RequestMessages(
            stream: call.stream,
            deserializer: deserializer,
            limit: environment.maxRequestMessageBytes
        )
        let request = StreamingServerRequest(
            metadata: call.stream.metadata,
            messages: RPCAsyncSequence(wrapping: messages)
        )

        let response: StreamingServerResponse<Output>
        do {
            response = try await intercept(environment.interceptors[...], request, context, handler)
        } catch {
            await call.finish(error: error, logger: environment.logger, context: context)
            return
        }

        switch response.accepted {
        case .failure(let error):
            await call.finish(error: error, logger: environment.logger, context: context)
        case .success(let contents):
            do {
                try contents.metadata.validate()
                if let compression = contents.compression { call.stream.setResponseCompression(compression) }
                try await call.write(.metadata(contents.metadata))
                let writer = ResponseWriter(
                    call: call,
                    serializer: serializer,
                    limit: environment.maxResponseMessageBytes
                )
                let trailers = try await contents.producer(RPCWriter(wrapping: writer))
                try trailers.validate()
                await call.finish(status: .ok, trailers: trailers)
            } catch {
                await call.finish(error: error, logger: environment.logger, context: context)
            }
        }
    }

    private static func intercept<Input: Sendable, Output: Sendable>(
        _ interceptors: ArraySlice<any ServerInterceptor>,
        _ request: StreamingServerRequest<Input>,
        _ context: ServerContext,
        _ handler:
            @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard let first = interceptors.first else {
            return try await handler(request, context)
        }
        return try await first.intercept(request: request, context: context) { request, context in
            try await intercept(interceptors.dropFirst(), request, context, handler)
        }
    }
}

/// One RPC's stream, with the guarantee that exactly one status is sent.
@usableFromInline
final class ServerCall: Sendable {
    @usableFromInline let stream: any ServerTransportStream
    private let ended = CourierMutex(false)

    init(stream: any ServerTransportStream) {
        self.stream = stream
    }

    private func claimEnd() -> Bool {
        ended.withLock { ended in
            if ended { return false }
            ended = true
            return true
        }
    }

    /// The deadline passed: send `DEADLINE_EXCEEDED` now and cancel the handler.
    func expire() {
        guard claimEnd() else { return }
        stream.terminate(status: Status(code: .deadlineExceeded, message: "Deadline exceeded."), trailers: [:])
        stream.cancellation.cancel()
    }

    @usableFromInline
    func write(_ part: RPCResponsePart) async throws {
        if ended.withLock({ $0 }) {
            throw RPCError(code: .cancelled, message: "The RPC has already ended.")
        }
        try await stream.write(part)
    }

    @usableFromInline
    func finish(status: Status, trailers: Metadata) async {
        guard claimEnd() else { return }
        try? await stream.write(.status(status, trailers))
    }

    /// Ends the RPC with the status for `error`, logged as `environment` says.
    @usableFromInline
    func finish(error: any Error, environment: ServerRPCEnvironment, context: ServerContext) async {
        await finish(error: error, logger: environment.logger, context: context)
    }

    func finish(error: any Error, logger: Logger, context: ServerContext) async {
        var rpcError = RPCError(serverError: error)
        if rpcError.code == .unknown, !(error is RPCError), !(error is any RPCErrorConvertible) {
            logger.debug(
                "Handler threw an error; sent as UNKNOWN",
                metadata: ["rpc.method": "\(context.descriptor.path)", "error": "\(String(reflecting: error))"]
            )
        }
        do {
            try rpcError.metadata.validate()
        } catch {
            rpcError = error
        }
        await finish(status: rpcError.status, trailers: rpcError.metadata)
    }
}

/// The request messages of one RPC, read from the transport without an intermediate buffer.
private struct RequestMessages<Deserializer: MessageDeserializer>: AsyncSequence, Sendable
where Deserializer.Message: Sendable {
    typealias Element = Deserializer.Message
    typealias Failure = any Error

    let stream: any ServerTransportStream
    let deserializer: Deserializer
    let limit: Int?

    func makeAsyncIterator() -> Iterator { Iterator(base: self) }

    struct Iterator: AsyncIteratorProtocol {
        let base: RequestMessages
        var done = false

        mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
            try await next()
        }

        mutating func next() async throws -> Element? {
            guard !done else { return nil }
            guard let buffer = try await base.stream.nextMessage() else {
                done = true
                return nil
            }
            do {
                try ServerRPCExecutor.checkRequestSize(buffer, limit: base.limit)
            } catch {
                done = true
                throw error
            }
            return try base.deserializer.deserializeForRPC(buffer)
        }
    }
}

/// Serializes response messages and writes them to the call.
private struct ResponseWriter<Serializer: MessageSerializer>: RPCWriterProtocol where Serializer.Message: Sendable {
    let call: ServerCall
    let serializer: Serializer
    let limit: Int?

    func write(_ element: Serializer.Message) async throws {
        try await write(element, options: .default)
    }

    func write(_ element: Serializer.Message, options: RPCWriteOptions) async throws {
        let buffer = try ServerRPCExecutor.serializeResponse(element, serializer, options, limit)
        try await call.write(.message(buffer))
    }
}

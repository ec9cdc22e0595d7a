/// The unary fast path of the client: a call without interceptors writes its request and reads its
/// response directly, without the streaming shapes (request producer, response sequence) interceptors
/// need. A measured win (fewer allocations and generic instantiations per call); the rules it enforces
/// are the streaming path's, through the same helpers and error factories, and `UnaryShapeTests` runs
/// every shape over both paths.
extension ClientRPCExecutor {
    /// A unary call without interceptors: the request written and the response read directly, without
    /// the streaming shapes (request producer, response sequence) that interceptors need. Same wire
    /// behaviour and errors as ``execute(request:descriptor:serializer:deserializer:options:producerMode:transport:interceptors:handler:)``
    /// followed by collecting the one response.
    @inlinable
    static func executeUnary<Input: Sendable, Output: Sendable, Result: Sendable>(
        request: ClientRequest<Input>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Input>,
        deserializer: some MessageDeserializer<Output>,
        options: CallOptions,
        transport: any ClientTransport,
        handler: (ClientResponse<Output>) async throws -> Result
    ) async throws -> Result {
        // Every read is in this task, under withCall's cancellation handler.
        try await withCall(transport: transport, descriptor: descriptor, options: options, readsInCallingTask: true) {
            call,
            _ in
            let response = try await unaryResponse(call, request, serializer, deserializer, options)
            defer { call.cancelIfActive() }
            return try await handler(response)
        }
    }

    @inlinable
    static func unaryResponse<Input: Sendable, Output: Sendable>(
        _ call: ClientCall,
        _ request: ClientRequest<Input>,
        _ serializer: some MessageSerializer<Input>,
        _ deserializer: some MessageDeserializer<Output>,
        _ options: CallOptions
    ) async throws -> ClientResponse<Output> {
        if try await sendHead(call, request.metadata) {
            try await sendRequest(call) {
                try await RequestWriter(call: call, serializer: serializer, limit: options.maxRequestMessageBytes)
                    .write(request.message, options: .default)
            }
        }

        let metadata: Metadata
        switch try await readHead(call) {
        case .metadata(let received):
            metadata = received
        case .status(let status, let trailers):
            let error =
                RPCError(status: status, metadata: trailers)
                ?? RPCError.noMessage(.response)
            return ClientResponse(accepted: .failure(error))
        }

        var message: Output?
        do {
            while true {
                switch try await call.next() {
                case .message(let buffer):
                    try MessageKind.response.checkSize(buffer, limit: options.maxResponseMessageBytes)
                    let decoded = try deserializer.deserializeForRPC(buffer)
                    guard message == nil else {
                        throw RPCError.moreThanOneMessage(.response)
                    }
                    message = decoded
                case .status(let status, let trailers):
                    call.markFinished()
                    if let error = RPCError(status: status, metadata: trailers) { throw error }
                    guard let message else {
                        throw RPCError.noMessage(.response)
                    }
                    return ClientResponse(
                        accepted: .success(.init(metadata: metadata, message: message, trailingMetadata: trailers))
                    )
                case .metadata:
                    throw RPCError.metadataTwice
                case nil:
                    throw RPCError.endedWithoutStatus
                }
            }
        } catch let error as RPCError {
            // Local failures (limit, codec, protocol) cancel the RPC; a received status doesn't.
            call.cancel(with: error)
            return ClientResponse(accepted: .failure(call.localError ?? error))
        } catch {
            let wrapped = RPCError.readingResponseFailed(error)
            call.cancel(with: wrapped)
            return ClientResponse(accepted: .failure(call.localError ?? wrapped))
        }
    }
}

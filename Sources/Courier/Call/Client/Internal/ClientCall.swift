internal import Synchronization

/// One RPC's stream on the client, with the reason it ended early (deadline, cancellation, a local
/// failure) so that every later error reports that reason rather than the transport's view of it.
@usableFromInline
final class ClientCall: Sendable {
    private enum State {
        case active
        case finished
        case ended(RPCError)
    }

    @usableFromInline let stream: any ClientTransportStream
    private let state = CourierMutex(State.active)
    private let requestClosed = Atomic(false)

    @usableFromInline
    init(stream: any ClientTransportStream) {
        self.stream = stream
    }

    /// Ends the RPC early with `error` and cancels the stream on both ends; no-op once it has ended.
    @usableFromInline
    func cancel(with error: RPCError) {
        let cancelled = state.withLock { state -> Bool in
            guard case .active = state else { return false }
            state = .ended(error)
            return true
        }
        if cancelled { stream.cancel() }
    }

    /// Cancels the stream if the status hasn't arrived: the caller has left the RPC's scope.
    @usableFromInline
    func cancelIfActive() {
        cancel(with: .cancelledLocally)
    }

    /// The status arrived.
    @usableFromInline
    func markFinished() {
        state.withLock { state in
            if case .active = state { state = .finished }
        }
    }

    /// A request write failed because the stream can no longer carry messages (the server finished the
    /// RPC, the stream was reset): the RPC's outcome then comes from the response, not from the error
    /// the writer saw.
    var requestStreamClosed: Bool { requestClosed.load(ordering: .relaxed) }

    /// Records that a request write found the stream closed and returns the error the writer throws:
    /// the local reason if the RPC ended early, else the transport's (an ``RPCError``).
    @usableFromInline
    func requestWriteFailed(_ error: any Error) -> RPCError {
        requestClosed.store(true, ordering: .relaxed)
        return map(error)
    }

    /// The error the RPC ended with locally, if any.
    @usableFromInline
    var localError: RPCError? {
        state.withLock { if case .ended(let error) = $0 { error } else { nil } }
    }

    /// What to report for a transport error: the local reason if the RPC ended early, else the error.
    func map(_ error: any Error) -> RPCError {
        if let local = localError { return local }
        if let rpcError = error as? RPCError { return rpcError }
        if error is CancellationError { return .cancelledLocally }
        return RPCError(code: .unknown, message: "The transport failed.", cause: error)
    }

    @usableFromInline
    func next() async throws(RPCError) -> RPCResponsePart? {
        do {
            let part = try await stream.next()
            // A status that races with a local deadline or cancellation loses: gRPC reports the local reason.
            if let local = localError { throw local }
            return part
        } catch {
            throw map(error)
        }
    }
}

/// Serializes request messages and writes them to the stream.
@usableFromInline
struct RequestWriter<Serializer: MessageSerializer>: RPCWriterProtocol where Serializer.Message: Sendable {
    @usableFromInline let call: ClientCall
    @usableFromInline let serializer: Serializer
    @usableFromInline let limit: Int?

    @usableFromInline
    init(call: ClientCall, serializer: Serializer, limit: Int?) {
        self.call = call
        self.serializer = serializer
        self.limit = limit
    }

    @inlinable
    func write(_ element: Serializer.Message) async throws {
        try await write(element, options: .default)
    }

    @inlinable
    func write(_ element: Serializer.Message, options: RPCWriteOptions) async throws {
        if let local = call.localError { throw local }
        let buffer = try serializer.serializeForSending(element, options: options, limit: limit, kind: .request)
        do {
            try await call.stream.write(.message(buffer))
        } catch {
            throw call.requestWriteFailed(error)
        }
    }
}

/// The response body: messages, then trailing metadata or the error of a non-OK status.
struct ResponseBody<Deserializer: MessageDeserializer>: AsyncSequence, Sendable
where Deserializer.Message: Sendable {
    typealias Element = StreamingClientResponse<Deserializer.Message>.BodyPart
    typealias Failure = any Error

    let call: ClientCall
    let deserializer: Deserializer
    let limit: Int?

    func makeAsyncIterator() -> Iterator { Iterator(base: self) }

    struct Iterator: AsyncIteratorProtocol {
        let base: ResponseBody
        var done = false

        mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
            try await next()
        }

        mutating func next() async throws -> Element? {
            guard !done else { return nil }
            do {
                switch try await base.call.next() {
                case .message(let buffer):
                    try MessageKind.response.checkSize(buffer, limit: base.limit)
                    return .message(try base.deserializer.deserializeForRPC(buffer))
                case .status(let status, let trailers):
                    done = true
                    base.call.markFinished()
                    if let error = RPCError(status: status, metadata: trailers) { throw error }
                    return .trailingMetadata(trailers)
                case .metadata:
                    throw RPCError.metadataTwice
                case nil:
                    throw RPCError.endedWithoutStatus
                }
            } catch let error as RPCError {
                done = true
                // Local failures (limit, codec, protocol) cancel the RPC; a received status doesn't.
                base.call.cancel(with: error)
                throw base.call.localError ?? error
            }
        }
    }
}

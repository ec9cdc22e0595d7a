/// A request with one message, for unary and server-streaming calls.
public struct ClientRequest<Message: Sendable>: Sendable {
    /// Request metadata, sent as headers.
    public var metadata: Metadata
    /// The request message.
    public var message: Message

    /// Creates a request.
    ///
    /// - Parameters:
    ///   - message: The request message.
    ///   - metadata: Request metadata.
    public init(message: Message, metadata: Metadata = [:]) {
        self.message = message
        self.metadata = metadata
    }
}

/// A request whose messages a producer writes, for client-streaming and bidirectional calls.
///
/// ```swift
/// let request = StreamingClientRequest<HelloRequest> { writer in
///     for name in ["a", "b"] { try await writer.write(.with { $0.greeting = name }) }
/// }
/// ```
public struct StreamingClientRequest<Message: Sendable>: Sendable {
    /// Request metadata, sent as headers.
    public var metadata: Metadata
    /// Writes the request messages; the request stream ends (half-closes) when it returns.
    ///
    /// If it throws, the RPC is cancelled and the call fails with that error (an ``RPCError`` as it is,
    /// anything else as `UNKNOWN` with the error as its cause). In a bidirectional call it runs
    /// concurrently with the response handler.
    public var producer: @Sendable (RPCWriter<Message>) async throws -> Void

    /// Creates a request.
    ///
    /// - Parameters:
    ///   - metadata: Request metadata.
    ///   - producer: Writes the request messages.
    public init(
        metadata: Metadata = [:],
        producer: @escaping @Sendable (RPCWriter<Message>) async throws -> Void
    ) {
        self.metadata = metadata
        self.producer = producer
    }
}

extension StreamingClientRequest {
    /// A streaming request carrying exactly the message of a single-message request.
    ///
    /// - Parameter request: The single-message request.
    public init(_ request: ClientRequest<Message>) {
        let message = request.message
        self.init(metadata: request.metadata) { writer in try await writer.write(message) }
    }
}

/// A request with one message, as unary and server-streaming handlers receive it.
public struct ServerRequest<Message: Sendable>: Sendable {
    /// The request metadata (headers).
    public var metadata: Metadata
    /// The request message.
    public var message: Message

    /// Creates a request.
    ///
    /// - Parameters:
    ///   - metadata: Request metadata.
    ///   - message: The message.
    @inlinable
    public init(metadata: Metadata, message: Message) {
        self.metadata = metadata
        self.message = message
    }
}

/// A request whose messages arrive as a sequence, as client-streaming and bidirectional handlers (and
/// every interceptor) receive it.
public struct StreamingServerRequest<Message: Sendable>: Sendable {
    /// The request metadata (headers).
    public var metadata: Metadata
    /// The request messages, ending when the client half-closes. Iterating throws ``RPCError`` if the
    /// RPC is cancelled or a message can't be deserialized.
    public var messages: RPCAsyncSequence<Message, any Error>

    /// Creates a request.
    ///
    /// - Parameters:
    ///   - metadata: Request metadata.
    ///   - messages: The messages.
    public init(metadata: Metadata, messages: RPCAsyncSequence<Message, any Error>) {
        self.metadata = metadata
        self.messages = messages
    }
}

extension StreamingServerRequest {
    /// A streaming request holding the single message of `request`.
    ///
    /// - Parameter request: A single-message request.
    public init(_ request: ServerRequest<Message>) {
        self.init(metadata: request.metadata, messages: .elements([request.message]))
    }
}

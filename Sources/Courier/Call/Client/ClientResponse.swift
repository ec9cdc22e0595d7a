/// The response to a unary or client-streaming call: one message, or an error.
public struct ClientResponse<Message: Sendable>: Sendable {
    /// What a successful response carries.
    public struct Contents: Sendable {
        /// The response metadata (headers).
        public var metadata: Metadata
        /// The response message.
        public var message: Message
        /// The trailing metadata sent with the OK status.
        public var trailingMetadata: Metadata

        /// Creates contents.
        ///
        /// - Parameters:
        ///   - metadata: Response metadata.
        ///   - message: The message.
        ///   - trailingMetadata: Trailing metadata.
        @inlinable
        public init(metadata: Metadata = [:], message: Message, trailingMetadata: Metadata = [:]) {
            self.metadata = metadata
            self.message = message
            self.trailingMetadata = trailingMetadata
        }
    }

    /// The contents, or the error the RPC failed with (its metadata holds the trailers).
    public var accepted: Result<Contents, RPCError>

    /// Creates a response.
    ///
    /// - Parameter accepted: The contents or the error.
    @inlinable
    public init(accepted: Result<Contents, RPCError>) {
        self.accepted = accepted
    }

    /// The message.
    ///
    /// - Throws: The ``RPCError`` the call failed with.
    @inlinable
    public var message: Message {
        get throws(RPCError) { try accepted.get().message }
    }

    /// The response metadata (headers), or empty when the call failed.
    public var metadata: Metadata {
        (try? accepted.get().metadata) ?? [:]
    }

    /// The trailing metadata: the trailers of the OK status, or of the error.
    public var trailingMetadata: Metadata {
        switch accepted {
        case .success(let contents): contents.trailingMetadata
        case .failure(let error): error.metadata
        }
    }
}

/// The response to a server-streaming or bidirectional call: messages, or an error.
///
/// The body is consumed once, inside the call's response handler:
///
/// ```swift
/// for try await reply in response.messages { print(reply) }
/// ```
public struct StreamingClientResponse<Message: Sendable>: Sendable {
    /// A part of the body: a message, or the trailing metadata that ends a successful RPC.
    public enum BodyPart: Sendable {
        /// A response message.
        case message(Message)
        /// The trailing metadata of the OK status; always the last part.
        case trailingMetadata(Metadata)
    }

    /// What an accepted response carries.
    public struct Contents: Sendable {
        /// The response metadata (headers).
        public var metadata: Metadata
        /// The messages, then the trailing metadata; throws the ``RPCError`` of a non-OK status.
        public var bodyParts: RPCAsyncSequence<BodyPart, any Error>

        /// Creates contents.
        ///
        /// - Parameters:
        ///   - metadata: Response metadata.
        ///   - bodyParts: The body.
        public init(metadata: Metadata, bodyParts: RPCAsyncSequence<BodyPart, any Error>) {
            self.metadata = metadata
            self.bodyParts = bodyParts
        }
    }

    /// The contents, or the error the server rejected the RPC with before sending anything.
    public var accepted: Result<Contents, RPCError>

    /// Creates a response.
    ///
    /// - Parameter accepted: The contents or the error.
    public init(accepted: Result<Contents, RPCError>) {
        self.accepted = accepted
    }

    /// The response metadata (headers), or empty when the call was rejected.
    public var metadata: Metadata {
        (try? accepted.get().metadata) ?? [:]
    }

    /// The response messages; the sequence throws the ``RPCError`` of a non-OK status.
    public var messages: RPCAsyncSequence<Message, any Error> {
        switch accepted {
        case .success(let contents):
            RPCAsyncSequence(wrapping: MessagesOnly(base: contents.bodyParts))
        case .failure(let error):
            .throwing(error)
        }
    }

    private struct MessagesOnly: AsyncSequence, Sendable {
        typealias Element = Message
        typealias Failure = any Error
        let base: RPCAsyncSequence<BodyPart, any Error>

        func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator()) }

        struct Iterator: AsyncIteratorProtocol {
            var base: RPCAsyncSequence<BodyPart, any Error>.AsyncIterator
            mutating func next(isolation actor: isolated (any Actor)?) async throws -> Message? {
                while let part = try await base.next(isolation: actor) {
                    if case .message(let message) = part { return message }
                }
                return nil
            }
            mutating func next() async throws -> Message? { try await next(isolation: nil) }
        }
    }
}

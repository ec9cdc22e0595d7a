/// The response of a unary or client-streaming handler: one message, or an error.
///
/// ```swift
/// return ServerResponse(message: reply, metadata: ["x-served-by": "a"])
/// ```
public struct ServerResponse<Message: Sendable>: Sendable {
    /// What a successful response carries.
    public struct Contents: Sendable {
        /// Response metadata (headers).
        public var metadata: Metadata
        /// The message.
        public var message: Message
        /// Trailing metadata, sent with the OK status.
        public var trailingMetadata: Metadata
        /// How to compress the message; `nil` uses the request's compression. See
        /// ``StreamingServerResponse/Contents/compression``.
        public var compression: CompressionAlgorithm?

        /// Creates contents.
        ///
        /// - Parameters:
        ///   - metadata: Response metadata.
        ///   - message: The message.
        ///   - trailingMetadata: Trailing metadata.
        ///   - compression: How to compress the message.
        @inlinable
        public init(
            metadata: Metadata = [:],
            message: Message,
            trailingMetadata: Metadata = [:],
            compression: CompressionAlgorithm? = nil
        ) {
            self.metadata = metadata
            self.message = message
            self.trailingMetadata = trailingMetadata
            self.compression = compression
        }
    }

    /// The contents, or the error to fail the RPC with.
    public var accepted: Result<Contents, RPCError>

    /// Creates a successful response.
    ///
    /// - Parameters:
    ///   - message: The message.
    ///   - metadata: Response metadata.
    ///   - trailingMetadata: Trailing metadata.
    ///   - compression: How to compress the message; `nil` uses the request's compression.
    @inlinable
    public init(
        message: Message,
        metadata: Metadata = [:],
        trailingMetadata: Metadata = [:],
        compression: CompressionAlgorithm? = nil
    ) {
        self.accepted = .success(
            Contents(
                metadata: metadata,
                message: message,
                trailingMetadata: trailingMetadata,
                compression: compression
            )
        )
    }

    /// Creates a failed response; the same as throwing `error`.
    ///
    /// - Parameter error: The error.
    @inlinable
    public init(error: RPCError) {
        self.accepted = .failure(error)
    }
}

/// The response of a server-streaming or bidirectional handler (and of every interceptor): metadata
/// and a producer that writes the messages, or an error.
///
/// ```swift
/// return StreamingServerResponse { writer in
///     for reply in replies { try await writer.write(reply) }
///     return [:]  // trailing metadata
/// }
/// ```
public struct StreamingServerResponse<Message: Sendable>: Sendable {
    /// What an accepted response carries.
    public struct Contents: Sendable {
        /// Response metadata (headers), sent before the first message.
        public var metadata: Metadata
        /// Writes the response messages and returns the trailing metadata for the OK status. Throwing
        /// ends the RPC with the error's status instead.
        public var producer: @Sendable (RPCWriter<Message>) async throws -> Metadata
        /// How to compress the response messages: `nil` (the default) uses the request's compression,
        /// as grpc-go does; ``CompressionAlgorithm/identity`` sends them uncompressed; another algorithm
        /// is used if the client accepts it (`grpc-accept-encoding`) and ignored otherwise. Single messages
        /// can opt out with ``RPCWriteOptions/uncompressed``.
        public var compression: CompressionAlgorithm?

        /// Creates contents.
        ///
        /// - Parameters:
        ///   - metadata: Response metadata.
        ///   - compression: How to compress the response messages.
        ///   - producer: Writes the messages.
        public init(
            metadata: Metadata = [:],
            compression: CompressionAlgorithm? = nil,
            producer: @escaping @Sendable (RPCWriter<Message>) async throws -> Metadata
        ) {
            self.metadata = metadata
            self.compression = compression
            self.producer = producer
        }
    }

    /// The contents, or the error to reject the RPC with (sent as a Trailers-Only response).
    public var accepted: Result<Contents, RPCError>

    /// Creates an accepted response.
    ///
    /// - Parameters:
    ///   - metadata: Response metadata.
    ///   - compression: How to compress the response messages; `nil` uses the request's compression.
    ///     See ``Contents/compression``.
    ///   - producer: Writes the messages and returns trailing metadata.
    public init(
        metadata: Metadata = [:],
        compression: CompressionAlgorithm? = nil,
        producer: @escaping @Sendable (RPCWriter<Message>) async throws -> Metadata
    ) {
        self.accepted = .success(Contents(metadata: metadata, compression: compression, producer: producer))
    }

    /// Creates a rejected response; the same as throwing `error`.
    ///
    /// - Parameter error: The error.
    public init(error: RPCError) {
        self.accepted = .failure(error)
    }
}

extension StreamingServerResponse {
    /// The streaming form of a single-message response.
    ///
    /// - Parameter response: A single-message response.
    public init(_ response: ServerResponse<Message>) {
        switch response.accepted {
        case .success(let contents):
            self.init(metadata: contents.metadata, compression: contents.compression) { writer in
                try await writer.write(contents.message)
                return contents.trailingMetadata
            }
        case .failure(let error):
            self.init(error: error)
        }
    }
}

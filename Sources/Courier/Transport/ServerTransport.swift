/// Accepts RPCs for a server and moves their parts.
///
/// A server transport listens, accepts streams, and hands each to Courier in a task of its own: that
/// task runs interceptors and the handler, so a transport can give it a task-executor preference for
/// the event loop that owns the stream. Courier's core does routing, deadlines, interceptors and
/// status semantics above it.
///
/// Implementing it in a package without `NonisolatedNonsendingByDefault`: write `streamHandler`'s
/// type as `nonisolated(nonsending) @escaping @Sendable (any ServerTransportStream) async -> Void`, as
/// the requirement does; the handler runs on the executor of the task that calls it.
public protocol ServerTransport: Sendable {
    /// Listens for streams and calls `streamHandler` once for each, in a child task, until
    /// ``beginGracefulShutdown()`` is called and every stream has finished. Cancelling the calling task
    /// stops listening and cancels every stream.
    ///
    /// - Parameters:
    ///   - options: What the server asks of every stream (limits the transport enforces as bytes arrive).
    ///   - streamHandler: Serves one stream; it returns once the stream is finished.
    /// - Throws: ``RuntimeError`` if listening fails (``RuntimeError/Code/transportError``: the address is
    ///   in use; ``RuntimeError/Code/invalidConfiguration``: a TLS file can't be read) or the transport
    ///   is already listening (``RuntimeError/Code/transportIsAlreadyRunning``).
    func listen(
        options: ServerTransportOptions,
        _ streamHandler: nonisolated(nonsending) @escaping @Sendable (any ServerTransportStream) async -> Void
    ) async throws

    /// Stops accepting new streams; open ones finish, then ``listen(options:_:)`` returns.
    func beginGracefulShutdown()
}

/// What a ``CourierServer`` asks of its transport's streams: limits that are best enforced where the bytes
/// arrive.
public struct ServerTransportOptions: Sendable, Hashable {
    /// The largest request message a stream accepts, in bytes; `nil` for no limit. A transport that frames
    /// messages rejects a larger one from its length prefix, before buffering it, with
    /// `RESOURCE_EXHAUSTED`, and decompresses no further than this (zip bombs). Courier checks it again
    /// above the transport.
    public var maxRequestMessageBytes: Int?

    /// Creates options.
    ///
    /// - Parameter maxRequestMessageBytes: See ``maxRequestMessageBytes``.
    public init(maxRequestMessageBytes: Int? = 4 * 1024 * 1024) {
        self.maxRequestMessageBytes = maxRequestMessageBytes
    }
}

/// One RPC's stream on the server side.
///
/// The request head (path, metadata, timeout, peer) is known when the stream is handed over.
public protocol ServerTransportStream: AnyObject, Sendable {
    /// The clock the stream's deadline is enforced with: for the HTTP/2 transport, timers on the event
    /// loop that serves the stream; for the in-memory transport, the clock it was given.
    var clock: any RPCClock { get }

    /// The request path, such as `/hello.HelloService/SayHello`.
    var path: String { get }
    /// The request metadata.
    var metadata: Metadata { get }
    /// The time the client gave the RPC (HTTP/2: `grpc-timeout`), measured from when it arrived.
    var timeout: Duration? { get }
    /// A description of the client, such as `ipv4:127.0.0.1:52144` or `in-memory`.
    var peer: String { get }
    /// Signals that the client cancelled the RPC or the connection was lost; Courier then cancels the
    /// handler's task.
    var cancellation: RPCCancellationHandle { get }

    /// The client's verified identity, when the transport authenticated it (mutual TLS); otherwise `nil`.
    var peerIdentity: PeerIdentity? { get }

    /// The compression the client declared for its messages (HTTP/2: `grpc-encoding`), or `nil` when
    /// it sends them uncompressed.
    var requestCompression: CompressionAlgorithm? { get }

    /// Asks the transport to compress the response messages with `algorithm` (``CompressionAlgorithm/identity``
    /// for none), overriding its default, which is the request's compression. Called before the response
    /// metadata is written. A transport falls back to identity when the client doesn't accept the
    /// algorithm; one without compression ignores the call.
    ///
    /// - Parameter algorithm: The algorithm.
    func setResponseCompression(_ algorithm: CompressionAlgorithm)

    /// Receives the next request message.
    ///
    /// - Returns: The message, or `nil` once the client has half-closed.
    /// - Throws: ``RPCError``: `CANCELLED` when the client cancelled or the connection was lost,
    ///   `RESOURCE_EXHAUSTED` for a message over the transport's limit, `INTERNAL` for a malformed one.
    func nextMessage() async throws -> MessageBuffer?

    /// Sends a part: optional metadata, messages, then one status, which ends the stream. Suspends while
    /// the client's flow-control window or the transport's buffer is full.
    ///
    /// - Throws: Once the stream is gone (cancelled, connection lost, already finished).
    func write(_ part: RPCResponsePart) async throws

    /// Ends the stream now with `status`, discarding messages not yet sent, as when its deadline
    /// passes. Pending and later operations throw. Does nothing if the stream has already ended.
    ///
    /// - Parameters:
    ///   - status: The status to send.
    ///   - trailers: Trailing metadata to send with it.
    func terminate(status: Status, trailers: Metadata)

    /// The bytes of the messages sent and received so far, as they crossed the wire (see
    /// ``RPCMessageByteCounts``); `nil` when the transport doesn't count them. Metrics read it when the RPC
    /// ends. Cheap: no lock, no hop.
    var messageByteCounts: RPCMessageByteCounts? { get }

    /// The serial executor of the thread that serves the stream (HTTP/2: its event loop), or `nil` when the
    /// transport has none (in-memory). ``ServerContext/executor`` returns it; see there.
    var executor: (any SerialExecutor)? { get }
}

extension ServerTransportStream {
    /// No executor of its own: `nil`.
    public var executor: (any SerialExecutor)? { nil }

    /// No authenticated identity: `nil`.
    public var peerIdentity: PeerIdentity? { nil }

    /// No compression: `nil`.
    public var requestCompression: CompressionAlgorithm? { nil }

    /// Ignores the request: the transport doesn't compress.
    public func setResponseCompression(_ algorithm: CompressionAlgorithm) {}

    /// Not counted: `nil`.
    public var messageByteCounts: RPCMessageByteCounts? { nil }
}

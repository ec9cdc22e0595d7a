/// Carries a client's RPCs to a server: opens streams and moves their parts.
///
/// A transport is responsible for connections (establishing, multiplexing, reconnecting), for framing,
/// and for flow control. Courier's core is responsible for everything above: serialization, deadlines,
/// interceptors and status semantics. Two transports ship: `CourierInMemory` and `CourierHTTP2`.
///
/// Errors: a transport fails an RPC with ``RPCError``: `UNAVAILABLE` when it cannot reach the server
/// or the connection is lost, `CANCELLED` for a stream cancelled locally, `INTERNAL` for a protocol
/// violation by the peer, `RESOURCE_EXHAUSTED` for a received message over the limit in
/// ``CallOptions/maxResponseMessageBytes``.
///
/// Threading: a transport may run `body` with a task-executor preference for the event loop that owns
/// the stream, so that user code, the codec and the transport share one thread.
///
/// Implementing it in a package without `NonisolatedNonsendingByDefault`: write `body`'s type as
/// `nonisolated(nonsending) (any ClientTransportStream) async throws -> Result`, as the requirement
/// does; `body` runs on the caller's executor.
public protocol ClientTransport: Sendable {
    /// The clock Courier enforces this transport's deadlines with.
    var clock: any RPCClock { get }

    /// Runs the transport's connection management until ``beginGracefulShutdown()`` has been called and
    /// every open stream has finished; cancelling the calling task closes everything at once.
    ///
    /// - Throws: If the transport fails as a whole.
    func connect() async throws

    /// Stops new streams (they fail with `UNAVAILABLE`) and lets open ones finish; ``connect()``
    /// returns once they have.
    func beginGracefulShutdown()

    /// Receives the load-balancing policies of the client's ``ServiceConfig``, in order of preference,
    /// when the client is created (before ``connect()``); a transport uses the first policy it knows and
    /// its default when it knows none or the list is empty. It must not do I/O here.
    ///
    /// A default implementation ignores them.
    ///
    /// - Parameter configs: ``ServiceConfig/loadBalancingConfig``.
    func applyLoadBalancingConfig(_ configs: [LoadBalancingConfig])

    /// Opens a stream for one RPC and calls `body` with it; the stream is closed when `body` returns,
    /// and cancelled if it has not finished by then.
    ///
    /// Nothing reaches the wire until the first ``ClientTransportStream/write(_:)`` (the request
    /// metadata), so a stream that is never written to costs the server nothing.
    ///
    /// - Parameters:
    ///   - descriptor: The method to call.
    ///   - options: The call's options; ``CallOptions/timeout`` is the time left until the deadline.
    ///   - body: Drives the RPC.
    /// - Returns: What `body` returns.
    func withStream<Result: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ body: nonisolated(nonsending) (any ClientTransportStream) async throws -> Result
    ) async throws -> Result
}

/// One RPC's stream on the client side.
///
/// A reader (``next()``) and a writer (``write(_:)``, ``finish()``) may run concurrently, in two tasks;
/// each side is used by one task at a time.
public protocol ClientTransportStream: AnyObject, Sendable {
    /// Sends a part: ``RPCRequestPart/metadata(_:)`` once, first, then messages. Suspends while the
    /// peer's flow-control window or the transport's buffer is full.
    ///
    /// - Throws: Once the stream can't carry more messages (the server has finished the RPC, the stream
    ///   was cancelled, the connection failed). The RPC's outcome is then read from ``next()``.
    func write(_ part: RPCRequestPart) async throws

    /// Half-closes the stream: no more messages will be written.
    func finish() async throws

    /// Receives the next part from the server: optional metadata, messages, then a status.
    ///
    /// - Returns: The part, or `nil` once the status has been returned. A transport never returns
    ///   `nil` before a status; it throws instead.
    /// - Throws: ``RPCError``; see ``ClientTransport`` for the codes.
    func next() async throws -> RPCResponsePart?

    /// Cancels the stream on both ends (HTTP/2: RST_STREAM with CANCEL). Pending and later
    /// operations throw `CANCELLED`. Idempotent; does nothing once the status has arrived.
    func cancel()

    /// While the stream waits for a connection because the transport's attempts have failed (a
    /// wait-for-ready call), why the last attempt failed; `nil` otherwise. Courier adds it to the
    /// `DEADLINE_EXCEEDED` of a call whose deadline passes while it waits, as grpc-go adds "latest
    /// connection error". Read on the thread the transport's ``ClientTransport/clock`` fires its timers on.
    var connectionWaitReason: String? { get }

    /// The bytes of the messages sent and received so far, as they crossed the wire (see
    /// ``RPCMessageByteCounts``); `nil` when the transport doesn't count them. Metrics read it when the
    /// call ends. Cheap: no lock, no hop.
    var messageByteCounts: RPCMessageByteCounts? { get }
}

extension ClientTransport {
    /// Does nothing: a transport without load balancing (the in-memory one) has no policy to choose.
    public func applyLoadBalancingConfig(_ configs: [LoadBalancingConfig]) {}
}

extension ClientTransportStream {
    /// No reason: the stream doesn't wait for connections (or the transport doesn't say why).
    public var connectionWaitReason: String? { nil }

    /// Not counted: `nil`.
    public var messageByteCounts: RPCMessageByteCounts? { nil }
}

/// What a handler and a server interceptor know about the RPC they serve.
///
/// The handler's task is cancelled when the client cancels, the connection is lost, or the deadline
/// passes; check `Task.isCancelled` or use cancellation handlers in long-running work.
public struct ServerContext: Sendable {
    /// The method being served.
    public var descriptor: MethodDescriptor
    /// A description of the client, such as `ipv4:127.0.0.1:52144`.
    public var peer: String
    /// The client's identity as the transport verified it (the client certificate, with mutual TLS), or
    /// `nil` when the transport didn't authenticate the client.
    public var peerIdentity: PeerIdentity?
    /// When the RPC's deadline passes, on ``clock``; `nil` if the client set no timeout.
    ///
    /// Client calls made while serving the RPC inherit this deadline automatically.
    public var deadline: ContinuousClock.Instant?
    /// The clock the deadline is measured on.
    public var clock: any RPCClock
    /// The compression the client declared for its request messages (`grpc-encoding`), or `nil` when
    /// they are uncompressed. Individual messages may still be sent uncompressed.
    public var requestCompression: CompressionAlgorithm?

    /// The stream serving the RPC, when a server made the context: what ``messageByteCounts`` reads.
    package var transportStream: (any ServerTransportStream)?
    /// The server's shared state (drain signal, service names), when a server made the context.
    package var server: ServerShared?

    /// Creates a context.
    ///
    /// - Parameters:
    ///   - descriptor: The method.
    ///   - peer: The client's description.
    ///   - deadline: The deadline.
    ///   - clock: The deadline's clock.
    ///   - requestCompression: The request's compression.
    ///   - peerIdentity: The client's verified identity.
    public init(
        descriptor: MethodDescriptor,
        peer: String,
        deadline: ContinuousClock.Instant? = nil,
        clock: any RPCClock = .system,
        requestCompression: CompressionAlgorithm? = nil,
        peerIdentity: PeerIdentity? = nil
    ) {
        self.peerIdentity = peerIdentity
        self.requestCompression = requestCompression
        self.descriptor = descriptor
        self.peer = peer
        self.deadline = deadline
        self.clock = clock
    }

    /// A context with the transport's stream and the server's shared state.
    package init(
        descriptor: MethodDescriptor,
        peer: String,
        deadline: ContinuousClock.Instant?,
        clock: any RPCClock,
        requestCompression: CompressionAlgorithm?,
        peerIdentity: PeerIdentity?,
        transportStream: any ServerTransportStream,
        server: ServerShared
    ) {
        self.init(
            descriptor: descriptor,
            peer: peer,
            deadline: deadline,
            clock: clock,
            requestCompression: requestCompression,
            peerIdentity: peerIdentity
        )
        self.transportStream = transportStream
        self.server = server
    }

    /// The time left until the deadline (negative once it has passed), or `nil` without a deadline.
    public var timeRemaining: Duration? {
        deadline.map { clock.now.duration(to: $0) }
    }

    /// Whether the server has begun a graceful shutdown (``CourierServer/beginGracefulShutdown(grace:)``):
    /// it accepts no new RPCs and waits for the running ones. A long-lived streaming handler (a watch that
    /// may stay idle for hours) should then finish, so that the drain doesn't wait for it until the grace
    /// period cancels it. `false` for a context that no server made.
    public var isDraining: Bool { server?.isDraining ?? false }

    /// Suspends until the server begins a graceful shutdown (at once if it has), or until the calling task
    /// is cancelled (the RPC ended).
    ///
    /// ```swift
    /// // A watch that ends with OK when the server drains, instead of holding the drain.
    /// try await withThrowingTaskGroup(of: Void.self) { group in
    ///     group.addTask { for try await change in changes { try await writer.write(change) } }
    ///     group.addTask { await context.waitForDraining() }
    ///     try await group.next()
    ///     group.cancelAll()
    /// }
    /// ```
    ///
    /// For a context that no server made it waits for cancellation only.
    public func waitForDraining() async {
        // Without a server, a signal that nobody begins: only cancellation resumes it.
        await (server ?? ServerShared()).wait()
    }

    /// The fully qualified names of the services the server serves, sorted; `nil` for a context no server
    /// made. Server reflection lists them.
    package var servedServiceNames: [String]? { server?.serviceNames }

    /// The bytes of the RPC's messages sent and received so far as they crossed the transport (compressed,
    /// without framing; see ``RPCMessageByteCounts``), or `nil` when the transport doesn't count them.
    public var messageByteCounts: RPCMessageByteCounts? { transportStream?.messageByteCounts }

    /// The serial executor of the event loop serving this RPC, or `nil` when the transport has none (the
    /// in-memory transport, or a context no server made).
    ///
    /// An actor that returns it as its `unownedExecutor` runs its methods on that loop's thread, so a
    /// handler on the same loop calls it without hopping threads (and the loop's I/O is paused while it
    /// runs, so keep its methods short). Keep state that is shared by every RPC in one such actor, or one
    /// per loop with ``LoopLocal``:
    ///
    /// ```swift
    /// actor Counter {
    ///     let executor: any SerialExecutor
    ///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    ///     var count = 0
    ///     init(executor: any SerialExecutor) { self.executor = executor }
    ///     func increment() -> Int { count += 1; return count }
    /// }
    /// ```
    ///
    /// The executor stays valid while the server runs; jobs enqueued on it after the server has stopped
    /// never run.
    public var executor: (any SerialExecutor)? { transportStream?.executor }
}

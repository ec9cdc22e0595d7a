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

    /// The time left until the deadline (negative once it has passed), or `nil` without a deadline.
    public var timeRemaining: Duration? {
        deadline.map { clock.now.duration(to: $0) }
    }
}

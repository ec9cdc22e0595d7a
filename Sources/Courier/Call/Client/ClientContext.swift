/// What a client interceptor knows about the call it wraps.
public struct ClientContext: Sendable {
    /// The method being called.
    public var descriptor: MethodDescriptor
    /// The call's deadline on the transport's clock: the earlier of its own timeout and the deadline
    /// inherited from the RPC being served, if any.
    public var deadline: ContinuousClock.Instant?

    /// The stream carrying the call, when a client made the context: what ``messageByteCounts`` reads.
    package var transportStream: (any ClientTransportStream)?
    /// Whether the executor reports the call's attempts to ``attemptObservers`` (a call with a retry or
    /// hedging policy); otherwise the call is its only attempt.
    package var reportsAttempts = false
    /// Told of every attempt when ``reportsAttempts``; interceptors add themselves on the way down.
    package var attemptObservers: [any ClientAttemptObserving] = []

    /// Creates a context.
    ///
    /// - Parameters:
    ///   - descriptor: The method.
    ///   - deadline: The deadline.
    public init(descriptor: MethodDescriptor, deadline: ContinuousClock.Instant? = nil) {
        self.descriptor = descriptor
        self.deadline = deadline
    }

    /// The bytes of the call's messages sent and received so far as they crossed the transport (compressed,
    /// without framing; see ``RPCMessageByteCounts``), or `nil` when the transport doesn't count them. Read
    /// it once the response has ended for the totals.
    public var messageByteCounts: RPCMessageByteCounts? { transportStream?.messageByteCounts }
}

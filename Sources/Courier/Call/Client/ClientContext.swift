/// What a client interceptor knows about the call it wraps.
public struct ClientContext: Sendable {
    /// The method being called.
    public var descriptor: MethodDescriptor
    /// The call's deadline on the transport's clock: the earlier of its own timeout and the deadline
    /// inherited from the RPC being served, if any.
    public var deadline: ContinuousClock.Instant?

    /// Creates a context.
    ///
    /// - Parameters:
    ///   - descriptor: The method.
    ///   - deadline: The deadline.
    public init(descriptor: MethodDescriptor, deadline: ContinuousClock.Instant? = nil) {
        self.descriptor = descriptor
        self.deadline = deadline
    }
}

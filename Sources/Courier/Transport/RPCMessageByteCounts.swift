/// How many bytes of messages one RPC's stream has sent and received so far, as they crossed the
/// transport: compressed when the message was compressed, without the 5-byte gRPC prefix and without
/// metadata. gRFC A66's `…_total_compressed_message_size` instruments record these.
public struct RPCMessageByteCounts: Sendable, Hashable {
    /// The bytes of the messages sent.
    public var sent: Int
    /// The bytes of the messages received.
    public var received: Int

    /// Creates counts.
    ///
    /// - Parameters:
    ///   - sent: The bytes of the messages sent.
    ///   - received: The bytes of the messages received.
    public init(sent: Int = 0, received: Int = 0) {
        self.sent = sent
        self.received = received
    }
}

/// Options for one client call.
///
/// ```swift
/// var options = CallOptions.defaults
/// options.timeout = .seconds(30)
/// ```
public struct CallOptions: Sendable, Hashable {
    /// How long the call may take; `nil` means no limit of its own.
    ///
    /// The timeout becomes a deadline when the call starts. A call made while serving another RPC also
    /// inherits that RPC's deadline; the earlier of the two applies. When the deadline passes the call
    /// fails with `DEADLINE_EXCEEDED` and is cancelled on both ends.
    public var timeout: Duration?

    /// The largest serialized request message the client will send, in bytes; `nil` means no limit.
    /// A larger message fails the call with `RESOURCE_EXHAUSTED` before it is sent.
    public var maxRequestMessageBytes: Int?

    /// The largest response message the client will accept, in bytes; `nil` means no limit.
    /// A larger message fails the call with `RESOURCE_EXHAUSTED`. Defaults to 4 MiB, as in gRPC; a
    /// method config's limit replaces the default, and the smaller applies when the call sets one too.
    public var maxResponseMessageBytes: Int? {
        get { responseLimit ?? Self.defaultMaxResponseMessageBytes }
        set { responseLimit = .some(newValue) }
    }
    private var responseLimit: Int??
    static let defaultMaxResponseMessageBytes = 4 * 1024 * 1024
    var maxResponseMessageBytesIsSet: Bool { responseLimit != nil }

    /// How request messages are compressed (`grpc-encoding`); `nil` or ``CompressionAlgorithm/identity``
    /// sends them uncompressed. Responses are decompressed whatever the server chose, if Courier
    /// implements it.
    public var compression: CompressionAlgorithm?

    /// Whether the call waits for the transport to become ready instead of failing fast with
    /// `UNAVAILABLE` when connecting has failed (gRPC's wait-for-ready). It still ends at its deadline.
    /// Defaults to `false`, or to the method config's value; a value the call sets wins.
    public var waitForReady: Bool {
        get { waitForReadyValue ?? false }
        set { waitForReadyValue = newValue }
    }
    private var waitForReadyValue: Bool?
    var waitForReadyIsSet: Bool { waitForReadyValue != nil }

    /// The call's deadline on its transport's ``RPCClock``, set by Courier when the call starts (from
    /// ``timeout`` and any inherited deadline): a transport in this package computes the time it sends
    /// (`grpc-timeout`), after a reconnect or a retry too, from the same instant the call's timer fires at.
    package var deadline: ContinuousClock.Instant?

    /// Set by Courier on the options a stream is opened with when every read of the stream happens in the
    /// task that opened it and Courier cancels the stream (``ClientTransportStream/cancel()``) when that
    /// task is cancelled (the unary path): a transport in this package may then park a read without a
    /// cancellation handler of its own, which saves one per read.
    package var streamCancelledByCaller = false

    /// Creates options.
    ///
    /// - Parameters:
    ///   - timeout: See ``timeout``.
    ///   - maxRequestMessageBytes: See ``maxRequestMessageBytes``.
    ///   - maxResponseMessageBytes: See ``maxResponseMessageBytes``; the default (4 MiB) gives way to
    ///     a method config's limit.
    ///   - compression: See ``compression``.
    ///   - waitForReady: See ``waitForReady``; leave it out for the default (`false`, or the method
    ///     config's value).
    public init(
        timeout: Duration? = nil,
        maxRequestMessageBytes: Int? = nil,
        maxResponseMessageBytes: Int? = 4 * 1024 * 1024,
        compression: CompressionAlgorithm? = nil,
        waitForReady: Bool? = nil
    ) {
        self.timeout = timeout
        self.maxRequestMessageBytes = maxRequestMessageBytes
        self.responseLimit =
            maxResponseMessageBytes == Self.defaultMaxResponseMessageBytes ? nil : .some(maxResponseMessageBytes)
        self.compression = compression
        self.waitForReadyValue = waitForReady
    }

    /// No timeout, no request limit, a 4 MiB response limit, fail fast.
    public static var defaults: CallOptions { CallOptions() }
}

@_spi(CourierInternals) public import Courier  // InMemoryTransport's halves conform to ClientTransport and ServerTransport
internal import Synchronization

/// A connected client and server transport in one process, with the semantics of the network.
///
/// Libraries that embed Courier and Courier's own tests use it to run a real server and client without
/// sockets. Both directions of every stream are bounded (see ``Configuration``), so a slow reader
/// holds back a fast writer exactly as HTTP/2 flow control does; cancellation, deadlines,
/// Trailers-Only errors and graceful shutdown behave as they do over HTTP/2.
///
/// ```swift
/// let transport = InMemoryTransport()
/// try await withCourierServer(transport: transport.server, services: [Greeter()]) { _ in
///     try await withCourierClient(transport: transport.client) { client in
///         // make calls
///     }
/// }
/// ```
public struct InMemoryTransport: Sendable {
    /// Buffering limits of each stream direction.
    public struct Configuration: Sendable {
        /// Messages buffered per direction before the writer suspends. Default 16.
        public var maxBufferedMessages: Int
        /// Message bytes buffered per direction before the writer suspends. Default 64 KiB, HTTP/2's
        /// initial flow-control window.
        public var maxBufferedBytes: Int

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - maxBufferedMessages: See ``maxBufferedMessages``.
        ///   - maxBufferedBytes: See ``maxBufferedBytes``.
        public init(maxBufferedMessages: Int = 16, maxBufferedBytes: Int = 65_535) {
            self.maxBufferedMessages = maxBufferedMessages
            self.maxBufferedBytes = maxBufferedBytes
        }

        /// 16 messages and 64 KiB per direction.
        public static var defaults: Configuration { Configuration() }
    }

    /// The client side; give it to a `CourierClient`.
    public let client: InMemoryClientTransport
    /// The server side; give it to a `CourierServer`.
    public let server: InMemoryServerTransport
    /// The faults this pair injects: script delays, drops, resets, write failures, a lost connection or
    /// GOAWAY here to test how a client and a service handle them (see ``InMemoryFaults``).
    public let faults: InMemoryFaults

    /// Creates a connected pair.
    ///
    /// - Parameters:
    ///   - clock: The clock both sides enforce deadlines with; tests pass a ``ManualRPCClock``.
    ///   - configuration: Buffering limits.
    ///   - faults: The fault script; by default an empty one, reachable as ``faults``.
    public init(
        clock: any RPCClock = .system,
        configuration: Configuration = .defaults,
        faults: InMemoryFaults = .init()
    ) {
        self.faults = faults
        let connection = InMemoryConnection(configuration: configuration, clock: clock, faults: faults)
        self.client = InMemoryClientTransport(connection: connection, clock: clock)
        self.server = InMemoryServerTransport(connection: connection)
    }
}

/// The state both sides of an ``InMemoryTransport`` share.
final class InMemoryConnection: Sendable {
    let configuration: InMemoryTransport.Configuration
    /// The clock both sides enforce deadlines with.
    let clock: any RPCClock
    let acceptQueue: StreamChannel<InMemoryServerStream>
    let faults: InMemoryFaults

    let clientStreams = ClientStreamTracker()
    private let listening = CourierMutex(false)

    init(configuration: InMemoryTransport.Configuration, clock: any RPCClock, faults: InMemoryFaults) {
        self.configuration = configuration
        self.faults = faults
        self.clock = clock
        self.acceptQueue = StreamChannel(
            maxElements: .max,
            maxBytes: .max,
            closedError: RPCError(code: .unavailable, message: "The server is not accepting RPCs.")
        )
    }

    func claimListening() -> Bool {
        listening.withLock { listening in
            defer { listening = true }
            return !listening
        }
    }
}

/// The client side of an ``InMemoryTransport``.
public struct InMemoryClientTransport: ClientTransport {
    let connection: InMemoryConnection
    /// The clock deadlines are enforced with.
    public let clock: any RPCClock

    init(connection: InMemoryConnection, clock: any RPCClock) {
        self.connection = connection
        self.clock = clock
    }

    /// Suspends until ``beginGracefulShutdown()`` has been called and every stream has closed.
    public func connect() async throws {
        await connection.clientStreams.waitUntilDrained()
    }

    /// Refuses new streams with `UNAVAILABLE`; ``connect()`` returns once open streams have closed.
    public func beginGracefulShutdown() {
        connection.clientStreams.beginShutdown()
    }

    public func withStream<Result: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ body: (any ClientTransportStream) async throws -> Result
    ) async throws -> Result {
        try connection.clientStreams.open()
        defer { connection.clientStreams.close() }
        let stream = InMemoryClientStream(
            descriptor: descriptor,
            timeout: options.timeout,
            connection: connection,
            serverClock: connection.clock
        )
        defer { stream.cancel() }
        let key = connection.faults.register(stream.link)
        defer { connection.faults.unregister(key) }
        return try await body(stream)
    }
}

/// The server side of an ``InMemoryTransport``.
public struct InMemoryServerTransport: ServerTransport {
    let connection: InMemoryConnection

    init(connection: InMemoryConnection) {
        self.connection = connection
    }

    /// Serves streams, each in a child task, until shut down and drained, or cancelled.
    ///
    /// - Parameters:
    ///   - options: Limits; Courier checks the request message size above the transport, so nothing is
    ///     enforced here.
    ///   - streamHandler: Serves one stream.
    /// - Throws: `RuntimeError` `RuntimeError/Code/transportIsAlreadyRunning` if this transport is
    ///   already listening.
    public func listen(
        options: ServerTransportOptions,
        _ streamHandler: @escaping @Sendable (any ServerTransportStream) async -> Void
    ) async throws {
        guard connection.claimListening() else {
            throw RuntimeError(
                code: .transportIsAlreadyRunning,
                message: "The in-memory server transport is already listening."
            )
        }
        let queue = connection.acceptQueue
        await withDiscardingTaskGroup { group in
            while let stream = try? await queue.next() {
                group.addTask { await streamHandler(stream) }
            }
            // Cancelled (abort): stop accepting; the group cancels every handler.
            queue.fail(RPCError(code: .unavailable, message: "The server is not accepting RPCs."))
        }
    }

    /// Stops accepting streams; new ones fail with `UNAVAILABLE`, accepted ones are served.
    public func beginGracefulShutdown() {
        connection.acceptQueue.finish()
    }
}

/// One stream, client side.
final class InMemoryClientStream: ClientTransportStream {
    private struct State {
        var server: InMemoryServerStream?
        var done = false
    }

    private let descriptor: MethodDescriptor
    private let timeout: Duration?
    private let connection: InMemoryConnection
    private let serverClock: any RPCClock
    let link: InMemoryStreamLink
    private var requests: StreamChannel<MessageBuffer> { link.requests }
    private var responses: StreamChannel<RPCResponsePart> { link.responses }
    private let state = CourierMutex(State())
    private let sentMessageBytes = Atomic<Int>(0)
    private let receivedMessageBytes = Atomic<Int>(0)
    /// Message bytes as sent (the in-memory transport doesn't compress).
    var messageByteCounts: RPCMessageByteCounts? {
        RPCMessageByteCounts(
            sent: sentMessageBytes.load(ordering: .relaxed),
            received: receivedMessageBytes.load(ordering: .relaxed)
        )
    }

    init(descriptor: MethodDescriptor, timeout: Duration?, connection: InMemoryConnection, serverClock: any RPCClock) {
        self.descriptor = descriptor
        self.timeout = timeout
        self.connection = connection
        self.serverClock = serverClock
        self.link = InMemoryStreamLink(
            configuration: connection.configuration,
            faults: connection.faults,
            clock: connection.clock
        )
    }

    func write(_ part: RPCRequestPart) async throws {
        switch part {
        case .metadata(let metadata):
            let server = InMemoryServerStream(
                path: descriptor.path,
                metadata: metadata,
                timeout: timeout,
                clock: serverClock,
                link: link
            )
            let accepted = state.withLock { state -> Bool in
                guard state.server == nil, !state.done else { return false }
                state.server = server
                return true
            }
            guard accepted else {
                throw RPCError(code: .internal, message: "Request metadata sent twice or after the stream ended.")
            }
            link.open(path: descriptor.path)
            let deliver: Bool
            do {
                deliver = try await mapCancellation { try await link.applyFaults(at: .open) }
            } catch let error as RPCError {
                responses.fail(error)
                throw error
            }
            guard deliver else { return }
            do {
                try await connection.acceptQueue.send(server)
            } catch {
                let error = RPCError(code: .unavailable, message: "The server is not accepting RPCs.")
                responses.fail(error)
                throw error
            }
        case .message(let buffer):
            guard try await mapCancellation({ try await link.applyFaults(at: .everyRequestMessage) }) else { return }
            try await mapCancellation { try await requests.send(buffer) }
            sentMessageBytes.add(buffer.count, ordering: .relaxed)
        }
    }

    func finish() async throws {
        guard try await mapCancellation({ try await link.applyFaults(at: .requestEnd) }) else { return }
        requests.finish()
    }

    func next() async throws -> RPCResponsePart? {
        let part = try await mapCancellation { try await responses.next() }
        switch part {
        case .status: state.withLock { $0.done = true }
        case .message(let buffer): receivedMessageBytes.add(buffer.count, ordering: .relaxed)
        case .metadata, nil: break
        }
        return part
    }

    func cancel() {
        let cancelled = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            return true
        }
        guard cancelled else { return }
        let error = RPCError(code: .cancelled, message: "The RPC was cancelled.")
        requests.fail(error)
        responses.fail(error)
        link.serverCancellation.cancel()
        link.wakeSleepers()
    }
}

/// One stream, server side.
final class InMemoryServerStream: ServerTransportStream {
    let path: String
    let metadata: Metadata
    let timeout: Duration?
    let clock: any RPCClock
    let peer = "in-memory"
    private let link: InMemoryStreamLink
    var cancellation: RPCCancellationHandle { link.serverCancellation }
    private var requests: StreamChannel<MessageBuffer> { link.requests }
    private var responses: StreamChannel<RPCResponsePart> { link.responses }
    private let sentMessageBytes = Atomic<Int>(0)
    private let receivedMessageBytes = Atomic<Int>(0)
    /// Message bytes as sent (the in-memory transport doesn't compress).
    var messageByteCounts: RPCMessageByteCounts? {
        RPCMessageByteCounts(
            sent: sentMessageBytes.load(ordering: .relaxed),
            received: receivedMessageBytes.load(ordering: .relaxed)
        )
    }

    init(path: String, metadata: Metadata, timeout: Duration?, clock: any RPCClock, link: InMemoryStreamLink) {
        self.path = path
        self.metadata = metadata
        self.timeout = timeout
        self.clock = clock
        self.link = link
    }

    func nextMessage() async throws -> MessageBuffer? {
        let message = try await mapCancellation { try await requests.next() }
        if let message { receivedMessageBytes.add(message.count, ordering: .relaxed) }
        return message
    }

    func write(_ part: RPCResponsePart) async throws {
        let point: InMemoryFaults.Point
        switch part {
        case .metadata: point = .responseMetadata
        case .message: point = .everyResponseMessage
        case .status: point = .status
        }
        let deliver = try await mapCancellation { try await link.applyFaults(at: point) }
        if deliver {
            try await mapCancellation { try await responses.send(part) }
            if case .message(let buffer) = part { sentMessageBytes.add(buffer.count, ordering: .relaxed) }
        }
        if case .status = part {
            if deliver { responses.finish() }
            // The RPC is over: the client's further writes fail and are ignored, as after trailers.
            requests.fail(RPCError(code: .cancelled, message: "The server has finished the RPC."))
        }
    }

    func terminate(status: Status, trailers: Metadata) {
        responses.terminate(with: .status(status, trailers))
        requests.fail(RPCError(code: .cancelled, message: "The server has finished the RPC."))
        link.wakeSleepers()
    }
}

/// Reports a task cancelled while waiting on a channel as `CANCELLED`, as every transport does.
private func mapCancellation<R>(_ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch is CancellationError {
        throw RPCError(code: .cancelled, message: "The RPC was cancelled.")
    }
}

internal import Courier
internal import Synchronization

/// Where a client stream goes to be opened: the connection manager.
protocol HTTP2StreamRouter: AnyObject, Sendable {
    /// Opens `stream` on a usable connection (now, or once one is ready), or fails it. On the loop.
    func open(_ stream: HTTP2ClientStream)
}

/// One RPC on an HTTP/2 client connection: an adapter between the core's ``ClientTransportStream`` calls,
/// its connection's nghttp2 callbacks and a client-configured ``GRPCStreamStateMachine``, which decides
/// everything; this class performs its actions.
///
/// It talks to two things: its router (once, to be opened; the router hands it to a connection, which
/// calls ``attach(to:streamID:)``), and the connection it is attached to (to submit, resume, reset and
/// give back window). State confined to its loop.
final class HTTP2ClientStream: ClientTransportStream, HTTP2StreamAdapter, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only.
    let loop: EventLoop
    private let router: any HTTP2StreamRouter
    let descriptor: MethodDescriptor
    let options: CallOptions
    private let clock: LoopClock
    private let maxHeaderListBytes: Int
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    /// The HTTP/2 stream ID; -1 until opened (and again while a retry waits for a new stream).
    @exclusivity(unchecked) private(set) var id: Int32 = -1
    /// The connection the stream is open on.
    @exclusivity(unchecked) private var connection: HTTP2ClientConnection?
    @exclusivity(unchecked) private var machine: GRPCStreamStateMachine
    /// The machine's message byte counts, published for the RPC's task (relaxed stores on the loop).
    private let sentMessageBytes = Atomic<Int>(0)
    private let receivedMessageBytes = Atomic<Int>(0)
    var messageByteCounts: RPCMessageByteCounts? {
        RPCMessageByteCounts(
            sent: sentMessageBytes.load(ordering: .relaxed),
            received: receivedMessageBytes.load(ordering: .relaxed)
        )
    }
    @exclusivity(unchecked) var waiters = StreamWaiters<RPCResponsePart>()
    /// The writer of the request metadata, parked until the stream is opened.
    @exclusivity(unchecked) private var startWaiter: UnsafeContinuation<Void, any Error>?
    /// The response HEADERS block arriving.
    @exclusivity(unchecked) private var responseHead = GRPCResponseHead()
    /// Why the last connection attempt failed, while the call waits for a connection (wait-for-ready).
    @exclusivity(unchecked) private var waitReason: String?
    /// When the call's deadline passes, on the transport's clock: the `grpc-timeout` of every attempt.
    let deadline: ContinuousClock.Instant?

    /// Request bytes kept for a transparent retry.
    static let replayLimit = 64 * 1024

    init(
        loop: EventLoop,
        router: any HTTP2StreamRouter,
        descriptor: MethodDescriptor,
        options: CallOptions,
        configuration: HTTP2ClientTransport.Configuration
    ) {
        self.loop = loop
        self.router = router
        self.descriptor = descriptor
        self.options = options
        self.clock = LoopClock(loop: loop)
        self.maxHeaderListBytes = configuration.maxHeaderListBytes
        self.machine = GRPCStreamStateMachine(
            configuration: .client(
                .init(
                    requestCompression: options.compression,
                    maxResponseMessageBytes: options.maxResponseMessageBytes,
                    maxBufferedBytes: configuration.maxBufferedBytesPerStream,
                    replayLimit: Self.replayLimit,
                    maxTransparentRetries: 1
                )
            )
        )
        // The instant the call's own timer fires at, on the same clock.
        self.deadline = options.deadline ?? options.timeout.map { LoopClock(loop: loop).now.advanced(by: $0) }
    }

    /// The time left, for the `grpc-timeout` header of the attempt being opened.
    var timeRemaining: Duration? {
        deadline.map { max(.zero, clock.now.duration(to: $0)) }
    }

    /// The request's compression, if any.
    var requestCompression: CompressionAlgorithm? { machine.requestCompression }

    /// The request metadata (sent again by a transparent retry).
    var requestMetadata: Metadata { machine.requestMetadata }

    // MARK: ClientTransportStream (any thread)

    func write(_ part: RPCRequestPart) async throws {
        // Fast path, on the loop (where calls normally run): done at once unless the stream has to open
        // first or the buffer is full.
        if loop.inEventLoop, !waiters.hasWriter, startWaiter == nil {
            if try writeOnLoop(part) {
                if case .message(let buffer) = part { try await yieldIfShareUsed(afterWriting: buffer.count) }
                return
            }
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                // Still on the loop: nothing has changed since writeOnLoop returned.
                self.park(continuation, for: part)
            }
            return
        }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            onLoop {
                do {
                    if try self.writeOnLoop(part) { continuation.resume() } else { self.park(continuation, for: part) }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Parks a writer whose part ``writeOnLoop(_:)`` could not complete: the metadata until the stream
    /// opens, a message until the buffer drains.
    private func park(_ continuation: UnsafeContinuation<Void, any Error>, for part: RPCRequestPart) {
        if case .metadata = part { startWaiter = continuation } else { waiters.parkWriter(continuation) }
    }

    /// Writes a part; true when done, false when the caller must wait (see ``park(_:for:)``).
    private func writeOnLoop(_ part: RPCRequestPart) throws(RPCError) -> Bool {
        switch part {
        case .metadata(let metadata):
            switch machine.sendRequestHead(metadata) {
            case .failed(let error):
                throw error
            case .open:
                router.open(self)
                // Opened at once on a ready connection; failed at once when it can't be; else waiting.
                if case .failed(let error) = machine.termination { throw error }
                return machine.send != .awaitingStream
            }
        case .message(let buffer):
            let sent = machine.sendMessage(buffer)
            sentMessageBytes.store(machine.sentMessageBytes, ordering: .relaxed)
            switch sent {
            case .failed(let error):
                throw error
            case .queued(_, let resumeData, let mustWait):
                if resumeData, let connection { connection.resumeData(streamID: id) }
                return !mustWait
            }
        }
    }

    func finish() async throws {
        onLoop {
            if self.machine.finishRequest(), let connection = self.connection {
                connection.resumeData(streamID: self.id)
            }
        }
    }

    func next() async throws -> RPCResponsePart? {
        try await read(watchingCancellation: !options.streamCancelledByCaller)
    }

    func cancel() {
        onLoop {
            let reset = self.machine.cancel()
            if reset, let connection = self.connection { connection.resetStream(self.id, .cancel) }
            self.wakeAll()
        }
    }

    private static func part(_ part: RPCResponsePart) -> RPCResponsePart? { part }

    // MARK: Waiters (loop)

    func pollReader() -> Result<RPCResponsePart?, RPCError>? {
        let next = machine.nextInbound()
        releaseWindow(next.releaseWindow)
        return next.result.readerResult(Self.part)
    }

    var outboundIsFull: Bool { machine.outboundIsFull }

    /// After the call failed or ended: the start waiter and the writer get the write error, the reader
    /// what is left to read.
    private func wakeAll() {
        // The call has ended: window held for unread messages goes back to the connection (a reader may
        // never take them, and the stream is reset or closed).
        if machine.termination != nil { releaseWindow(machine.releaseHeldWindow()) }
        if case .failed(let error) = machine.termination {
            startWaiter?.resume(throwing: error)
            startWaiter = nil
            waiters.failWriter(error)
        } else if machine.termination == .closed {
            startWaiter?.resume(throwing: GRPCStreamStateMachine.rpcEnded)
            startWaiter = nil
            waiters.failWriter(GRPCStreamStateMachine.rpcEnded)
        }
        wakeReader()
    }

    private func releaseWindow(_ bytes: Int) {
        guard bytes > 0, id > 0, let connection else { return }
        connection.consume(streamID: id, bytes: bytes)
    }

    /// Why the last connection attempt failed, while the call waits (wait-for-ready) for a connection.
    /// Read on the loop (where the transport's timers fire); `nil` elsewhere.
    var connectionWaitReason: String? { loop.inEventLoop ? waitReason : nil }

    // MARK: From the connection (loop)

    /// The call waits for a connection: the last attempt failed with `reason`.
    func waitingForConnection(because reason: String?) {
        waitReason = reason
    }

    /// An HTTP/2 stream was opened for the call on `connection`.
    func attach(to connection: HTTP2ClientConnection, streamID: Int32) {
        id = streamID
        waitReason = nil
        self.connection = connection
        // The call ended while it waited for this stream: nothing will be sent on it.
        if machine.streamOpened() { connection.resetStream(streamID, .cancel) }
        if let startWaiter {
            self.startWaiter = nil
            startWaiter.resume()
        }
    }

    /// The connection could not be made, or was lost: the call fails with `error`.
    func connectionLost(_ error: RPCError) {
        guard machine.fail(error) else { return }
        wakeAll()
    }

    /// A response HEADERS block begins.
    func responseHeadersBegin() {
        responseHead = GRPCResponseHead()
    }

    /// A response header; false once the block exceeds the limit (the call fails with
    /// `RESOURCE_EXHAUSTED` and the stream is reset).
    func receiveHeader(name: HeaderBytes, value: HeaderBytes) -> Bool {
        if responseHead.add(name: name, value: value, maxListBytes: maxHeaderListBytes) { return true }
        let error = RPCError(
            code: .resourceExhausted,
            message: "The response header list exceeds \(maxHeaderListBytes) bytes."
        )
        if machine.protocolError(error), let connection { connection.resetStream(id, .cancel) }
        wakeAll()
        return false
    }

    /// A HEADERS block is complete: the response head, its trailers, or a Trailers-Only response.
    func receiveHeadersComplete(endStream: Bool) {
        // Moved out, not copied (a copy retained each of its references).
        var head = GRPCResponseHead()
        swap(&head, &responseHead)
        handle(machine.receiveResponseHead(head, endStream: endStream))
    }

    /// DATA with END_STREAM and no trailers.
    func receiveEndWithoutTrailers() {
        handle(machine.receiveEndWithoutTrailers())
    }

    private func handle(_ result: GRPCStreamStateMachine.OnResponseHead) {
        switch result {
        case .ignore:
            break
        case .delivered:
            wakeReader()
        case .failed(_, let reset):
            if reset, let connection { connection.resetStream(id, .cancel) }
            wakeAll()
        }
    }

    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        let result = machine.receiveData(bytes)
        receivedMessageBytes.store(machine.receivedMessageBytes, ordering: .relaxed)
        if result.releaseWindow > 0, let connection { connection.consume(streamID: id, bytes: result.releaseWindow) }
        if case .failed(_, let reset) = result.failure {
            if reset, let connection { connection.resetStream(id, .cancel) }
            wakeAll()
            return
        }
        wakeReader()
    }

    /// The HTTP/2 stream closed with `code`. True when the call must be opened again elsewhere (the
    /// server refused it unprocessed: gRPC's transparent retry).
    func streamClosed(_ code: HTTP2ErrorCode) -> Bool {
        switch machine.streamClosed(code) {
        case .retry:
            id = -1
            connection = nil
            return true
        case .failed, .ended, .cancelHandler:
            wakeAll()
            return false
        }
    }

    /// nghttp2's data provider asks for up to `length` bytes of DATA.
    func pullData(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> GRPCStreamStateMachine.DataPull {
        let pull = machine.pullData(into: buffer, length: length)
        if pull.writerMayResume { waiters.resumeWriter() }
        return pull
    }
}

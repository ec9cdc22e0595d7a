internal import Courier
internal import Synchronization

/// One gRPC call on an HTTP/2 server connection: an adapter between the core's ``ServerTransportStream``
/// calls, nghttp2's callbacks (through ``HTTP2ServerConnection``) and a server-configured
/// ``GRPCStreamStateMachine``, which decides everything; this class performs its actions.
///
/// Confined to the connection's loop. The handler's task normally runs on that loop too (the transport
/// gives it the loop as its task executor), so its reads and writes take the fast paths below; from any
/// other thread they hop to the loop first.
final class HTTP2ServerStream: ServerTransportStream, HTTP2StreamAdapter, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `connection.loop` only; `path`, `metadata` and
    // `timeout` are written before the stream is handed to a handler and never again.
    let id: Int32
    let connection: HTTP2ServerConnection
    let cancellation = RPCCancellationHandle()
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    @exclusivity(unchecked) private(set) var path = ""
    @exclusivity(unchecked) private(set) var metadata = Metadata()
    @exclusivity(unchecked) private(set) var timeout: Duration?
    var peer: String { connection.peer }
    var peerIdentity: PeerIdentity? { connection.peerIdentity }
    /// Timers on the loop that serves the stream.
    var clock: any RPCClock { LoopClock(loop: connection.loop) }
    var requestCompression: CompressionAlgorithm? { machine.requestCompression }
    var loop: EventLoop { connection.loop }
    /// The loop, whose jobs run on its thread: an actor on it serves this stream's handler without a hop.
    var executor: (any SerialExecutor)? { connection.loop }

    @exclusivity(unchecked) private var head: GRPCRequestHead
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
    @exclusivity(unchecked) var waiters = StreamWaiters<MessageBuffer>()

    init(id: Int32, connection: HTTP2ServerConnection) {
        self.id = id
        self.connection = connection
        self.head = GRPCRequestHead(maxListBytes: connection.configuration.maxHeaderListBytes)
        self.machine = GRPCStreamStateMachine(
            configuration: .server(
                .init(
                    maxRequestMessageBytes: connection.options.maxRequestMessageBytes,
                    maxBufferedBytes: connection.configuration.maxBufferedBytesPerStream
                )
            )
        )
    }

    // MARK: The request head (loop)

    /// A header of a trailers block the client sends after its messages; false when the list exceeds the
    /// limit (the stream is reset). (The request head's headers go to the connection, which hands the
    /// complete head to ``receiveHeadComplete(_:endStream:)``.)
    func receiveHeader(name: HeaderBytes, value: HeaderBytes) -> Bool {
        head.add(name: name, value: value, paths: connection.paths)
    }

    /// The request head is complete. True when a handler should serve the stream; otherwise it has been
    /// answered already (405, 415, or a Trailers-Only status).
    func receiveHeadComplete(_ head: consuming GRPCRequestHead, endStream: Bool) -> Bool {
        guard machine.termination == nil else { return false }
        path = head.path
        metadata = head.metadata
        switch machine.receiveRequestHead(head, endStream: endStream) {
        case .serve:
            timeout = machine.timeout
            return true
        case .reject(let rejection):
            connection.submitRejection(streamID: id, rejection)
            return false
        }
    }

    // MARK: Inbound (loop)

    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        let result = machine.receiveData(bytes)
        receivedMessageBytes.store(machine.receivedMessageBytes, ordering: .relaxed)
        handle(result)
    }

    func receiveEndOfStream() {
        handle(machine.receiveEndOfStream())
    }

    private func handle(_ result: GRPCStreamStateMachine.OnInbound) {
        connection.consume(streamID: id, bytes: result.releaseWindow)
        if case .terminate(let error) = result.failure {
            // The request is unusable: answer now; the handler's reads fail with the same error.
            terminateOnLoop(status: error.status, trailers: error.metadata)
        }
        wakeReader()
    }

    func pollReader() -> Result<MessageBuffer?, RPCError>? {
        let next = machine.nextInbound()
        connection.consume(streamID: id, bytes: next.releaseWindow)
        return next.result.readerResult(Self.message)
    }

    var outboundIsFull: Bool { machine.outboundIsFull }

    private static func message(_ part: RPCResponsePart) -> MessageBuffer? {
        if case .message(let buffer) = part { buffer } else { nil }
    }

    // MARK: ServerTransportStream (any thread)

    func nextMessage() async throws -> MessageBuffer? {
        try await read()
    }

    func write(_ part: RPCResponsePart) async throws {
        // Fast path, on the loop: queue the part and return unless the buffer is full.
        if loop.inEventLoop, !waiters.hasWriter {
            if try writeOnLoop(part) {
                if case .message(let buffer) = part { try await yieldIfShareUsed(afterWriting: buffer.count) }
                return
            }
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                // Still on the loop: nothing can have drained the buffer since writeOnLoop returned.
                self.waiters.parkWriter(continuation)
            }
            return
        }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            onLoop {
                do {
                    if try self.writeOnLoop(part) {
                        continuation.resume()
                    } else {
                        self.waiters.parkWriter(continuation)
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func setResponseCompression(_ algorithm: CompressionAlgorithm) {
        onLoop { self.machine.setResponseCompression(algorithm) }
    }

    func terminate(status: Status, trailers: Metadata) {
        onLoop { self.terminateOnLoop(status: status, trailers: trailers) }
    }

    // MARK: Outbound (loop)

    /// Writes a part; false when the writer must wait for the buffer to drain.
    private func writeOnLoop(_ part: RPCResponsePart) throws(RPCError) -> Bool {
        switch part {
        case .metadata(let metadata):
            switch machine.sendHead(metadata) {
            case .submit(let head): connection.submitResponseHead(streamID: id, head)
            case .ignore: break
            case .failed(let error): throw error
            }
            return true
        case .message(let buffer):
            let sent = machine.sendMessage(buffer)
            sentMessageBytes.store(machine.sentMessageBytes, ordering: .relaxed)
            switch sent {
            case .failed(let error):
                throw error
            case .queued(let head, let resumeData, let mustWait):
                if let head { connection.submitResponseHead(streamID: id, head) }
                if resumeData { connection.resumeData(streamID: id) }
                return !mustWait
            }
        case .status(let status, let trailers):
            perform(machine.sendStatus(status, trailers: trailers))
            return true
        }
    }

    private func perform(_ result: GRPCStreamStateMachine.OnSendStatus) {
        switch result {
        case .trailersOnly(let status, let trailers):
            connection.submitTrailersOnly(streamID: id, status: status, trailers: trailers)
        case .queued(let resumeData):
            if resumeData { connection.resumeData(streamID: id) } else { connection.io.scheduleFlush() }
        case .ignore:
            break
        }
    }

    private func terminateOnLoop(status: Status, trailers: Metadata) {
        let result = machine.terminate(status: status, trailers: trailers)
        guard result != .ignore else { return }
        perform(result)
        waiters.failWriter(GRPCStreamStateMachine.streamEnded)
    }

    /// nghttp2's data provider asks for up to `length` bytes of DATA.
    func pullData(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> GRPCStreamStateMachine.DataPull {
        let pull = machine.pullData(into: buffer, length: length)
        if pull.writerMayResume { waiters.resumeWriter() }
        return pull
    }

    /// HEADERS with END_STREAM went out; true when the stream must be reset with NO_ERROR.
    func sentEndOfStream() -> Bool {
        machine.sentEndOfStream()
    }

    // MARK: The end (loop)

    /// The HTTP/2 stream closed (the client reset it, or both sides ended).
    func streamClosed(_ code: HTTP2ErrorCode) {
        if machine.streamClosed(code) == .cancelHandler { cancellation.cancel() }
        // Window held for unread messages goes back to the connection: no reader may take them now.
        connection.consume(streamID: id, bytes: machine.releaseHeldWindow())
        waiters.failWriter(GRPCStreamStateMachine.clientCancelled)
        wakeReader()
    }

    /// The connection closed under the stream.
    func connectionClosed() {
        streamClosed(.cancel)
    }
}

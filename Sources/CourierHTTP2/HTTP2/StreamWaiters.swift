internal import Courier

/// The reader and the writer of one HTTP/2 stream while they wait: at most one of each, resumed from the
/// loop. Shared by both stream adapters; loop-confined, like its stream.
///
/// A continuation parked here, not an `AsyncStream`: resuming one costs tens of nanoseconds on the loop,
/// an `AsyncStream` element about a microsecond.
///
/// It also keeps the writer's share of a loop turn. A writer on the loop whose writes never need to wait (the
/// buffer has room) would otherwise run without pause: a bidirectional producer filled its whole 1 MiB window
/// before its own replies were read, and other streams' work waited behind it. Once a writer has written
/// ``turnShareBytes`` or ``turnShareMessages`` in one turn, it waits for the loop's next poll for I/O.
struct StreamWaiters<Element: Sendable> {
    private var reader: UnsafeContinuation<Element?, any Error>?
    private var writer: UnsafeContinuation<Void, any Error>?
    /// The parked writer waits for the next turn (its share is used), not for the buffer to drain.
    private var writerWaitsForTurn = false
    private var shareTurn: UInt64 = .max
    private var shareBytes = 0
    private var shareMessages = 0

    /// The bytes a writer may write per loop turn before it waits for the next.
    static var turnShareBytes: Int { 64 * 1024 }
    /// The messages a writer may write per loop turn before it waits for the next.
    static var turnShareMessages: Int { 256 }

    var hasReader: Bool { reader != nil }
    var hasWriter: Bool { writer != nil }

    mutating func parkReader(_ continuation: UnsafeContinuation<Element?, any Error>) {
        precondition(reader == nil, "one reader at a time")
        reader = continuation
    }

    /// Resumes the parked reader, if any.
    mutating func resumeReader(with result: Result<Element?, RPCError>) {
        guard let reader else { return }
        self.reader = nil
        reader.resume(with: result.mapError { $0 })
    }

    mutating func parkWriter(_ continuation: UnsafeContinuation<Void, any Error>) {
        precondition(writer == nil, "one writer at a time")
        writer = continuation
    }

    /// Resumes the parked writer, if any, unless it waits for the next turn: the buffer has room again.
    mutating func resumeWriter() {
        guard let writer, !writerWaitsForTurn else { return }
        self.writer = nil
        writer.resume()
    }

    /// Fails the parked writer, if any.
    mutating func failWriter(_ error: RPCError) {
        guard let writer else { return }
        self.writer = nil
        writerWaitsForTurn = false
        writer.resume(throwing: error)
    }

    /// Counts a message of `bytes` written in loop turn `turn`; true when the writer's share of the turn is
    /// used and it must wait for the next (``parkWriterForNextTurn(_:)``).
    mutating func chargeWrite(bytes: Int, turn: UInt64) -> Bool {
        if turn != shareTurn {
            shareTurn = turn
            shareBytes = 0
            shareMessages = 0
        }
        shareBytes += bytes
        shareMessages += 1
        return shareBytes >= Self.turnShareBytes || shareMessages >= Self.turnShareMessages
    }

    /// Parks the writer until ``nextTurnBegan(bufferFull:)``.
    mutating func parkWriterForNextTurn(_ continuation: UnsafeContinuation<Void, any Error>) {
        parkWriter(continuation)
        writerWaitsForTurn = true
    }

    /// The loop has polled for I/O: a writer that waited for the turn goes on, or, if the buffer is still
    /// full, waits for it to drain.
    mutating func nextTurnBegan(bufferFull: Bool) {
        guard writerWaitsForTurn else { return }
        writerWaitsForTurn = false
        if !bufferFull { resumeWriter() }
    }
}

extension GRPCStreamStateMachine.NextInbound.Result {
    /// The reader's result: what a parked reader is resumed with, or `nil` while there is nothing yet.
    /// `message` picks the element out of a part (the server reads messages, the client every part).
    @inline(__always)
    func readerResult<Element>(_ element: (RPCResponsePart) -> Element?) -> Result<Element?, RPCError>? {
        switch self {
        case .part(let part):
            guard let value = element(part) else {
                return .failure(RPCError(code: .internal, message: "Unexpected part on the stream."))
            }
            return .success(value)
        case .end: return .success(nil)
        case .failed(let error): return .failure(error)
        case .wait: return nil
        }
    }
}

/// What the two stream adapters (``HTTP2ServerStream``, ``HTTP2ClientStream``) share: the reader — a fast
/// path on the loop, else a continuation parked in ``StreamWaiters`` and resumed by ``wakeReader()`` — and
/// the writer's wait for its next turn. Each adapter says how its machine hands the reader a result.
protocol HTTP2StreamAdapter: AnyObject, Sendable {
    associatedtype Inbound: Sendable
    /// The loop the stream is confined to.
    var loop: EventLoop { get }
    /// The parked reader and writer.
    var waiters: StreamWaiters<Inbound> { get set }
    /// The reader's next result from the stream machine (giving window back as it does), or `nil` while
    /// there is nothing yet. On the loop.
    func pollReader() -> Result<Inbound?, RPCError>?
    /// Whether the outbound queue is over its limit. On the loop.
    var outboundIsFull: Bool { get }
}

extension HTTP2StreamAdapter {
    /// Runs `body` on the loop: now if the caller is on it, else queued.
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    /// The reader's next element: at once on the loop when one is there (no continuation, no
    /// cancellation handler), else once ``wakeReader()`` finds one. Cancelling the task fails the read with
    /// `CANCELLED` — unless `watchingCancellation` is false: the caller cancels the stream itself when the
    /// task is cancelled (``CallOptions/streamCancelledByCaller``), which wakes the reader as well.
    func read(watchingCancellation: Bool = true) async throws -> Inbound? {
        if loop.inEventLoop, !waiters.hasReader, let result = pollReader() { return try result.get() }
        guard watchingCancellation else { return try await parkReader() }
        return try await withTaskCancellationHandler {
            try await parkReader()
        } onCancel: {
            self.loop.execute {
                self.waiters.resumeReader(with: .failure(RPCError(code: .cancelled, message: "The RPC was cancelled.")))
            }
        }
    }

    /// Parks the reader until ``wakeReader()`` finds it something.
    @inline(__always)
    private func parkReader() async throws -> Inbound? {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Inbound?, any Error>) in
            onLoop {
                self.waiters.parkReader(continuation)
                self.wakeReader()
            }
        }
    }

    /// Resumes the parked reader if the machine has something for it. On the loop.
    func wakeReader() {
        guard waiters.hasReader, let result = pollReader() else { return }
        waiters.resumeReader(with: result)
    }

    /// After a message written on the loop: once the writer has used its share of the loop's turn, it waits
    /// for the loop's next poll for I/O, so that replies and other streams get their turn. On the loop.
    func yieldIfShareUsed(afterWriting bytes: Int) async throws {
        guard waiters.chargeWrite(bytes: bytes, turn: loop.ioTurn) else { return }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            waiters.parkWriterForNextTurn(continuation)
            loop.runAfterNextPoll { self.waiters.nextTurnBegan(bufferFull: self.outboundIsFull) }
        }
    }
}

internal import Courier

/// The reader and the writer of one HTTP/2 stream while they wait: at most one of each, resumed from the
/// loop. Shared by both stream adapters; loop-confined, like its stream.
///
/// A continuation parked here, not an `AsyncStream`: resuming one costs tens of nanoseconds on the loop,
/// an `AsyncStream` element about a microsecond.
struct StreamWaiters<Element: Sendable> {
    private var reader: UnsafeContinuation<Element?, any Error>?
    private var writer: UnsafeContinuation<Void, any Error>?

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

    /// Resumes the parked writer, if any: it may write again.
    mutating func resumeWriter() {
        guard let writer else { return }
        self.writer = nil
        writer.resume()
    }

    /// Fails the parked writer, if any.
    mutating func failWriter(_ error: RPCError) {
        guard let writer else { return }
        self.writer = nil
        writer.resume(throwing: error)
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

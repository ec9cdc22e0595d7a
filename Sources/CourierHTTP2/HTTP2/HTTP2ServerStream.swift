internal import CNGHTTP2
internal import Courier

/// One gRPC call on an HTTP/2 server connection.
///
/// Its state is confined to the connection's loop. The handler's task normally runs on that loop too
/// (the transport gives it the loop as its task executor), so its reads and writes touch the state
/// directly; from any other thread they hop to the loop first.
final class HTTP2ServerStream: ServerTransportStream, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `connection.loop` only; `path`, `metadata` and
    // `timeout` are written before the stream is handed to a handler and never again.

    enum Rejection: Error {
        case httpStatus(Int, String)
        case grpcStatus(Status)
    }

    let id: Int32
    let connection: HTTP2ServerConnection
    let cancellation = RPCCancellationHandle()
    private(set) var path = ""
    private(set) var metadata = Metadata()
    private(set) var timeout: Duration?
    var peer: String { connection.peer }
    /// Timers on the loop that serves the stream.
    var clock: any RPCClock { LoopClock(loop: connection.loop) }
    var peerIdentity: PeerIdentity? { connection.peerIdentity }
    private var loop: EventLoop { connection.loop }

    // Request head, while it arrives.
    private var methodIsPOST = false
    private var hasGRPCContentType = false
    private var timeoutValue: String?
    private var encoding: String?
    private var headerError: RPCError?
    /// The request's compression (`grpc-encoding`).
    private(set) var requestCompression: CompressionAlgorithm?
    /// The response's compression: the request's unless the handler chose another.
    private var responseCompression: CompressionAlgorithm?
    /// The client's `grpc-accept-encoding`, unparsed.
    private var acceptEncoding: String?

    // Inbound.
    private var deframer: GRPCMessageDeframer
    private var inbound = FIFO<MessageBuffer>()
    private var inboundEnded = false
    private var inboundError: RPCError?
    private var reader: UnsafeContinuation<MessageBuffer?, any Error>?
    private var unconsumedBytes = 0

    // Outbound.
    private var responded = false
    private var outbound = OutboundQueue()
    private var deferred = false
    private var pendingTrailers: PendingTrailers?
    private enum PendingTrailers {
        /// `grpc-status: 0` alone, from a block laid out once.
        case ok
        case list(HeaderList)
    }
    private var finished = false
    private var streamClosed = false
    private var writer: UnsafeContinuation<Void, any Error>?

    init(id: Int32, connection: HTTP2ServerConnection) {
        self.id = id
        self.connection = connection
        self.deframer = GRPCMessageDeframer(maxMessageBytes: connection.options.maxRequestMessageBytes)
    }

    // MARK: The request head (loop)

    /// Header bytes received so far, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them.
    private var headerListBytes = 0

    /// Adds a request header; false when the list exceeds the limit, which resets the stream (the
    /// connection and other streams are unaffected). Names are matched as bytes: the headers the
    /// transport owns never become Strings.
    func addHeader(name: HeaderBytes, value: HeaderBytes) -> Bool {
        headerListBytes += name.count + value.count + 32
        guard headerListBytes <= connection.configuration.maxHeaderListBytes else { return false }
        switch name.count {
        case 5 where name.equals(":path"):
            path = connection.internedPath(value)
            return true
        case 7 where name.equals(":method"):
            methodIsPOST = value.equals("POST")
            return true
        case 12 where name.equals("content-type"):
            hasGRPCContentType = value.isGRPCContentType
            return true
        case 12 where name.equals("grpc-timeout"):
            timeoutValue = value.string
            return true
        case 13 where name.equals("grpc-encoding"):
            encoding = value.string
            return true
        case 20 where name.equals("grpc-accept-encoding"):
            acceptEncoding = value.string
            return true
        case 2 where name.equals("te"), 7 where name.equals(":scheme"), 10 where name.equals(":authority"),
            10 where name.equals("user-agent"):
            return true  // not used by the server
        default:
            break
        }
        do {
            try GRPCHeaders.addReceived(name: name.string, value: value.string, to: &metadata)
        } catch {
            headerError = error
        }
        return true
    }

    func validateRequest() -> Result<Void, Rejection> {
        guard methodIsPOST else { return .failure(.httpStatus(405, "gRPC requires POST")) }
        guard hasGRPCContentType else {
            return .failure(.httpStatus(415, "Unsupported content-type"))
        }
        guard !path.isEmpty else {
            return .failure(.grpcStatus(Status(code: .unimplemented, message: "Missing :path.")))
        }
        if let timeoutValue {
            guard let parsed = GRPCTimeout.parse(timeoutValue) else {
                return .failure(.grpcStatus(Status(code: .internal, message: "Malformed grpc-timeout '\(timeoutValue.prefix(16))'.")))
            }
            timeout = parsed
        }
        if let encoding, encoding != "identity" {
            guard let algorithm = CompressionAlgorithm(name: encoding) else {
                return .failure(.grpcStatus(Status(code: .unimplemented, message: "Unsupported grpc-encoding '\(encoding.prefix(32))'.")))
            }
            requestCompression = algorithm
            responseCompression = algorithm
            deframer.compressionAllowed = true
        }
        if let headerError { return .failure(.grpcStatus(headerError.status)) }
        return .success(())
    }

    func markResponded() {
        responded = true
        finished = true
    }

    // MARK: Inbound (loop)

    func receivedData(_ bytes: UnsafeRawBufferPointer) {
        unconsumedBytes += bytes.count
        guard inboundError == nil, !inboundEnded, !finished else {
            releaseWindow()
            return
        }
        do {
            try deframer.process(bytes) { message in
                if message.compressed, let compression = requestCompression {
                    do {
                        var decompressed = try Zlib.decompress(
                            message.bytes, algorithm: compression,
                            limit: connection.options.maxRequestMessageBytes
                        )
                        decompressed.arrivedCompressed = true
                        inbound.append(decompressed)
                    } catch let failure as Zlib.Failure {
                        throw Zlib.rpcError(failure, algorithm: compression)
                    }
                } else {
                    inbound.append(message.bytes)
                }
            }
        } catch let failure as GRPCMessageDeframer.Failure {
            failInbound(failure.rpcError)
        } catch let error as RPCError {
            failInbound(error)
        } catch {
            failInbound(RPCError(code: .internal, message: "Invalid request body."))
        }
        // Open the window again only once the reader has taken what is buffered: a slow handler holds
        // at most one window of unread messages.
        if inboundCount == 0 { releaseWindow() }
        wakeReader()
    }

    func receivedEndOfStream() {
        guard !inboundEnded else { return }
        inboundEnded = true
        do {
            try deframer.finish()
        } catch let failure as GRPCMessageDeframer.Failure {
            failInbound(failure.rpcError)
        } catch {}
        wakeReader()
    }

    private var inboundCount: Int { inbound.count }

    /// Whether the client has half-closed.
    var requestEnded: Bool { inboundEnded }

    private func releaseWindow() {
        let bytes = unconsumedBytes
        unconsumedBytes = 0
        connection.consume(streamID: id, bytes: bytes)
    }

    private func failInbound(_ error: RPCError) {
        guard inboundError == nil else { return }
        inboundError = error
        inbound.removeAll()
        // The request is unusable: answer now; the handler's reads fail with the same error.
        terminateOnLoop(status: error.status, trailers: error.metadata)
    }

    private func popInbound() -> MessageBuffer? {
        guard let message = inbound.popFirst() else { return nil }
        if inbound.isEmpty { releaseWindow() }
        return message
    }

    private func wakeReader() {
        guard let reader else { return }
        if let message = popInbound() {
            self.reader = nil
            reader.resume(returning: message)
        } else if let inboundError {
            self.reader = nil
            reader.resume(throwing: inboundError)
        } else if inboundEnded || streamClosed {
            self.reader = nil
            if streamClosed && !inboundEnded {
                reader.resume(throwing: RPCError(code: .cancelled, message: "The client cancelled the RPC."))
            } else {
                reader.resume(returning: nil)
            }
        }
    }

    // MARK: ServerTransportStream (any thread)

    func nextMessage() async throws -> MessageBuffer? {
        // Fast path, on the loop (where handlers normally run): a message is already here, or the request
        // has ended. No continuation, no cancellation handler.
        if loop.inEventLoop, reader == nil {
            if let message = popInbound() { return message }
            if let inboundError { throw inboundError }
            if inboundEnded { return nil }
            if streamClosed { throw RPCError(code: .cancelled, message: "The client cancelled the RPC.") }
        }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<MessageBuffer?, any Error>) in
                onLoop {
                    self.reader = continuation
                    self.wakeReader()
                }
            }
        } onCancel: {
            self.loop.execute {
                guard let reader = self.reader else { return }
                self.reader = nil
                reader.resume(throwing: RPCError(code: .cancelled, message: "The RPC was cancelled."))
            }
        }
    }

    func write(_ part: RPCResponsePart) async throws {
        // Fast path, on the loop: queue the part and return unless the buffer is full.
        if loop.inEventLoop, writer == nil {
            if try writeOnLoop(part) { return }
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                // Still on the loop: nothing can have drained the buffer since writeOnLoop returned.
                self.writer = continuation
            }
            return
        }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            onLoop {
                do {
                    if try self.writeOnLoop(part) {
                        continuation.resume()
                    } else {
                        self.writer = continuation
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func setResponseCompression(_ algorithm: CompressionAlgorithm) {
        onLoop {
            guard !self.responded else { return }
            if algorithm == .identity {
                self.responseCompression = nil
            } else if algorithm == self.requestCompression || self.accepts(algorithm) {
                self.responseCompression = algorithm
            } else {
                self.responseCompression = nil
            }
        }
    }

    /// Whether the client's `grpc-accept-encoding` lists `algorithm`.
    private func accepts(_ algorithm: CompressionAlgorithm) -> Bool {
        guard let acceptEncoding else { return false }
        return acceptEncoding.split(separator: ",").contains {
            $0.filter { $0 != " " && $0 != "\t" } == algorithm.name
        }
    }

    func terminate(status: Status, trailers: Metadata) {
        onLoop { self.terminateOnLoop(status: status, trailers: trailers) }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    // MARK: Outbound (loop)

    var isGone: Bool { streamClosed || connection.closed }

    /// Writes a part; returns false when the caller must wait for the buffer to drain.
    private func writeOnLoop(_ part: RPCResponsePart) throws -> Bool {
        guard !finished, !isGone else {
            throw RPCError(code: .cancelled, message: "The stream has ended.")
        }
        switch part {
        case .metadata(let metadata):
            submitResponseHeaders(metadata)
            return true
        case .message(let buffer):
            guard buffer.count <= Int(UInt32.max) else {
                throw RPCError(code: .resourceExhausted, message: "A gRPC message can't exceed 4 GiB.")
            }
            if !responded { submitResponseHeaders([:]) }
            let framed = GRPCMessageFramer.frame(
                buffer, compression: buffer.allowsCompression ? responseCompression : nil
            )
            outbound.append(framed)
            resumeData()
            return outbound.byteCount <= connection.configuration.maxBufferedBytesPerStream
        case .status(let status, let trailers):
            finishOnLoop(status: status, trailers: trailers)
            return true
        }
    }

    private func submitResponseHeaders(_ metadata: Metadata) {
        guard !responded, let session = connection.nghttp2Session else { return }
        responded = true
        var provider = nghttp2_data_provider()
        provider.read_callback = readResponseData
        if responseCompression == nil && metadata.isEmpty {
            let head = StaticHeaderList.plainResponse
            _ = nghttp2_submit_response(session, id, head.nv, head.count, &provider)
        } else {
            var headers = HeaderList([(":status", "200"), ("content-type", "application/grpc")])
            if let responseCompression { headers.add("grpc-encoding", responseCompression.name) }
            headers.add("grpc-accept-encoding", GRPCHeaders.acceptEncoding)
            headers.add(contentsOf: GRPCHeaders.fields(for: metadata))
            headers.withNV { nv, count in
                _ = nghttp2_submit_response(session, id, nv, count, &provider)
            }
        }
        connection.scheduleFlush()
    }

    private func trailerList(status: Status, trailers: Metadata) -> HeaderList {
        var headers = HeaderList([("grpc-status", "\(status.code.rawValue)")])
        if !status.message.isEmpty { headers.add("grpc-message", GRPCStatusMessage.encode(status.message)) }
        headers.add(contentsOf: GRPCHeaders.fields(for: trailers))
        return headers
    }

    private func finishOnLoop(status: Status, trailers: Metadata) {
        guard !finished, let session = connection.nghttp2Session else { return }
        finished = true
        if !responded {
            // Trailers-Only: one HEADERS frame, :status 200, with the status, ending the stream.
            responded = true
            var headers = HeaderList([(":status", "200"), ("content-type", "application/grpc")])
            headers.add(contentsOf: trailerList(status: status, trailers: trailers).fields)
            headers.withNV { nv, count in
                _ = nghttp2_submit_response(session, id, nv, count, nil)
            }
        } else {
            if status.code == .ok && status.message.isEmpty && trailers.isEmpty {
                pendingTrailers = .ok
            } else {
                pendingTrailers = .list(trailerList(status: status, trailers: trailers))
            }
            resumeData()
        }
        connection.scheduleFlush()
    }

    private func terminateOnLoop(status: Status, trailers: Metadata) {
        guard !finished, !isGone else { return }
        outbound.removeAll()
        finishOnLoop(status: status, trailers: trailers)
        if let writer {
            self.writer = nil
            writer.resume(throwing: RPCError(code: .cancelled, message: "The stream has ended."))
        }
    }

    private func resumeData() {
        guard deferred, let session = connection.nghttp2Session else { return }
        deferred = false
        nghttp2_session_resume_data(session, id)
        connection.scheduleFlush()
    }

    /// nghttp2 asks for up to `length` bytes of DATA.
    fileprivate func readData(into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let copied = outbound.read(into: buffer, length: length)
        if let writer, outbound.byteCount <= connection.configuration.maxBufferedBytesPerStream {
            self.writer = nil
            writer.resume()
        }
        if outbound.isEmpty, let trailers = pendingTrailers, let session = connection.nghttp2Session {
            pendingTrailers = nil
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) | UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
            switch trailers {
            case .ok:
                _ = nghttp2_submit_trailer(session, id, StaticHeaderList.okTrailers.nv, StaticHeaderList.okTrailers.count)
            case .list(let list):
                list.withNV { nv, count in
                    _ = nghttp2_submit_trailer(session, id, nv, count)
                }
            }
            return copied
        }
        if copied == 0 {
            deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return copied
    }

    // MARK: The end (loop)

    func closedByPeer(errorCode: UInt32) {
        streamClosed = true
        if !finished || !inboundEnded {
            if !finished { cancellation.cancel() }
        }
        finished = true
        wakeReader()
        if let writer {
            self.writer = nil
            writer.resume(throwing: RPCError(code: .cancelled, message: "The client cancelled the RPC."))
        }
    }

    func connectionClosed() {
        closedByPeer(errorCode: UInt32(NGHTTP2_CANCEL.rawValue))
    }
}

/// The data provider's read callback: finds the stream and lets it fill nghttp2's buffer.
private func readResponseData(
    _ session: OpaquePointer?,
    _ streamID: Int32,
    _ buffer: UnsafeMutablePointer<UInt8>?,
    _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?,
    _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    // Not retained: nghttp2 calls this from inside the connection's own mem_send.
    Unmanaged<HTTP2ServerConnection>.fromOpaque(userData!)._withUnsafeGuaranteedRef { connection in
        guard let stream = connection.stream(id: streamID), let buffer, let flags else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        return stream.readData(into: buffer, length: length, flags: flags)
    }
}

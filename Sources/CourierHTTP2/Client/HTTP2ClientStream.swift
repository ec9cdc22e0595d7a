internal import CNGHTTP2
internal import Courier

/// One RPC on a client connection; state confined to the connection's loop.
final class HTTP2ClientStream: ClientTransportStream, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `manager.loop` only.
    let manager: HTTP2ConnectionManager
    /// The connection the stream was opened on; `nil` until then.
    private var connection: HTTP2ClientConnection?
    let descriptor: MethodDescriptor
    let options: CallOptions
    private(set) var id: Int32 = -1
    private var loop: EventLoop { manager.loop }

    // Inbound.
    private var parts = FIFO<RPCResponsePart>()
    private var reader: UnsafeContinuation<RPCResponsePart?, any Error>?
    private var failure: RPCError?
    private var statusDelivered = false
    private var responseHeaders = HeaderFields()
    private var headersReceived = false
    private var deframer: GRPCMessageDeframer
    private var unconsumedBytes = 0
    private var responseCompression: CompressionAlgorithm?

    // Outbound.
    private var outbound = OutboundQueue()
    private var halfClosed = false
    private var deferred = false
    private var started = false
    private var ended = false
    private var writer: UnsafeContinuation<Void, any Error>?
    private var startWaiter: UnsafeContinuation<Void, any Error>?

    // Transparent retry: a stream the server refused without processing it (RST_STREAM(REFUSED_STREAM), or
    // above the last-stream-id of a GOAWAY) is sent once more, on a usable connection, if no response has
    // arrived and the request so far fits the replay limit.
    private(set) var requestMetadata = Metadata()
    private var transparentRetries = 0
    static let replayLimit = 64 * 1024
    /// When the call's deadline passes, for the `grpc-timeout` of a retried stream.
    let deadline: ContinuousClock.Instant?

    struct HeaderFields {
        var status: Int?
        var contentType: String?
        var grpcStatus: String?
        var grpcMessage: String?
        var grpcEncoding: String?
        var metadata = Metadata()
        var invalid: RPCError?

        mutating func add(name: String, value: String) {
            switch name {
            case ":status": status = Int(value)
            case "content-type": contentType = value
            case "grpc-status": grpcStatus = value
            case "grpc-message": grpcMessage = value
            case "grpc-encoding": grpcEncoding = value
            default:
                do { try GRPCHeaders.addReceived(name: name, value: value, to: &metadata) } catch { invalid = error }
            }
        }
    }

    /// The request's compression: the call's choice, unless it is identity.
    var requestCompression: CompressionAlgorithm? {
        options.compression == .identity ? nil : options.compression
    }

    init(manager: HTTP2ConnectionManager, descriptor: MethodDescriptor, options: CallOptions) {
        self.manager = manager
        self.descriptor = descriptor
        self.options = options
        self.deframer = GRPCMessageDeframer(maxMessageBytes: options.maxResponseMessageBytes)
        // The instant the call's own timer fires at, on the same clock (the transport's loop clock).
        self.deadline = options.deadline ?? options.timeout.map { manager.clock.now.advanced(by: $0) }
        outbound.startRetaining(limit: Self.replayLimit)
    }

    /// The time left for the `grpc-timeout` header.
    var timeRemaining: Duration? {
        deadline.map { max(.zero, manager.clock.now.duration(to: $0)) }
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    // MARK: ClientTransportStream

    func write(_ part: RPCRequestPart) async throws {
        // Fast path, on the loop (where calls normally run): done at once unless the stream has to open
        // first or the buffer is full.
        if loop.inEventLoop, writer == nil, startWaiter == nil {
            if try writeOnLoop(part) { return }
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                // Still on the loop: nothing has changed since writeOnLoop returned.
                self.wait(continuation)
            }
            return
        }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            onLoop {
                do {
                    if try self.writeOnLoop(part) { continuation.resume() } else { self.wait(continuation) }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Parks a writer whose part ``writeOnLoop(_:)`` could not complete: until the stream opens, or until
    /// the buffer drains.
    private func wait(_ continuation: UnsafeContinuation<Void, any Error>) {
        if started && id <= 0 { startWaiter = continuation } else { writer = continuation }
    }

    /// Writes a part; true when done, false when the caller must wait (see ``wait(_:)``).
    private func writeOnLoop(_ part: RPCRequestPart) throws(RPCError) -> Bool {
        if let failure = failure ?? (ended ? RPCError(code: .cancelled, message: "The stream has ended.") : nil) {
            throw failure
        }
        switch part {
        case .metadata(let metadata):
            guard !started else { throw RPCError(code: .internal, message: "Request metadata sent twice.") }
            started = true
            requestMetadata = metadata
            manager.open(self, metadata: metadata)
            // Opened at once on a ready connection; failed at once when it can't be; else queued.
            if let failure { throw failure }
            return id > 0
        case .message(let buffer):
            guard buffer.count <= Int(UInt32.max) else {
                throw RPCError(code: .resourceExhausted, message: "A gRPC message can't exceed 4 GiB.")
            }
            let framed = GRPCMessageFramer.frame(buffer, compression: buffer.allowsCompression ? requestCompression : nil)
            outbound.append(framed)
            resumeData()
            return outbound.byteCount <= manager.configuration.maxBufferedBytesPerStream
        }
    }

    func finish() async throws {
        onLoop {
            guard !self.halfClosed else { return }
            self.halfClosed = true
            self.resumeData()
        }
    }

    func next() async throws -> RPCResponsePart? {
        // Fast path, on the loop (where calls normally run): a part is already here, or the RPC is over.
        if loop.inEventLoop, reader == nil {
            if let part = popPart() { return part }
            if let failure { throw failure }
            if statusDelivered { return nil }
        }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<RPCResponsePart?, any Error>) in
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

    func cancel() {
        onLoop {
            guard !self.statusDelivered || !self.ended else { return }
            let wasOpen = self.id > 0 && !self.ended
            self.fail(RPCError(code: .cancelled, message: "The RPC was cancelled."))
            if wasOpen { self.connection?.resetStream(self.id) }
        }
    }

    // MARK: From the connection (loop)

    func opened(streamID: Int32, on connection: HTTP2ClientConnection) {
        id = streamID
        self.connection = connection
        if let startWaiter {
            self.startWaiter = nil
            startWaiter.resume()
        }
    }

    /// The stream could not be opened, or the connection was lost.
    func fail(_ error: RPCError) {
        guard !ended else { return }
        ended = true
        if failure == nil && !statusDelivered { failure = error }
        for continuation in [startWaiter, writer].compactMap({ $0 }) { continuation.resume(throwing: error) }
        startWaiter = nil
        writer = nil
        wakeReader()
    }

    /// Response header bytes in the current block, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them.
    private var headerListBytes = 0

    /// Adds a response header; false once the block exceeds the configured limit (the stream then fails
    /// with `RESOURCE_EXHAUSTED` and is reset).
    func header(name: String, value: String) -> Bool {
        headerListBytes += name.utf8.count + value.utf8.count + 32
        guard headerListBytes <= manager.configuration.maxHeaderListBytes else {
            if !ended {
                fail(RPCError(
                    code: .resourceExhausted,
                    message: "The response header list exceeds \(manager.configuration.maxHeaderListBytes) bytes."
                ))
                if id > 0 { connection?.resetStream(id) }
            }
            return false
        }
        responseHeaders.add(name: name, value: value)
        return true
    }

    /// A HEADERS frame ended: response headers, trailers, or a Trailers-Only response.
    func headersComplete(endStream: Bool) {
        headerListBytes = 0
        guard !ended else { return }
        let fields = responseHeaders
        responseHeaders = HeaderFields()
        if !headersReceived {
            headersReceived = true
            outbound.stopRetaining()  // the server is processing the stream: it can't be retried now
            if let status = fields.status, (100..<200).contains(status) {
                headersReceived = false  // informational: the real headers follow
                return
            }
            guard fields.status == 200, let contentType = fields.contentType, GRPCHeaders.isGRPCContentType(contentType)
            else {
                // Not a gRPC response: the status comes from the HTTP status, unless grpc-status is present.
                if let grpcStatus = fields.grpcStatus, let code = GRPCHeaders.parseStatusCode(grpcStatus), fields.status == 200 {
                    deliverStatus(Status(code: code, message: GRPCStatusMessage.decode(fields.grpcMessage ?? "")), fields.metadata)
                } else {
                    deliverStatus(GRPCHeaders.status(forHTTPStatus: fields.status ?? 0), fields.metadata)
                }
                return
            }
            if endStream || fields.grpcStatus != nil {
                deliverTrailers(fields)
            } else {
                if let invalid = fields.invalid { protocolError(invalid); return }
                if let encoding = fields.grpcEncoding, encoding != "identity" {
                    guard let algorithm = CompressionAlgorithm(name: encoding) else {
                        protocolError(RPCError(code: .internal, message: "Unsupported response grpc-encoding '\(encoding.prefix(32))'."))
                        return
                    }
                    responseCompression = algorithm
                    deframer.compressionAllowed = true
                }
                parts.append(.metadata(fields.metadata))
                wakeReader()
            }
        } else {
            deliverTrailers(fields)
        }
    }

    private func deliverTrailers(_ fields: HeaderFields) {
        do {
            try deframer.finish()
        } catch let failure as GRPCMessageDeframer.Failure {
            protocolError(failure.rpcError)
            return
        } catch {}
        guard let grpcStatus = fields.grpcStatus else {
            deliverStatus(Status(code: .unknown, message: "The response ended without a grpc-status."), fields.metadata)
            return
        }
        guard let code = GRPCHeaders.parseStatusCode(grpcStatus) else {
            deliverStatus(Status(code: .unknown, message: "Invalid grpc-status '\(grpcStatus.prefix(16))'."), fields.metadata)
            return
        }
        deliverStatus(Status(code: code, message: GRPCStatusMessage.decode(fields.grpcMessage ?? "")), fields.metadata)
    }

    private func deliverStatus(_ status: Status, _ trailers: Metadata) {
        guard !statusDelivered, failure == nil else { return }
        statusDelivered = true
        parts.append(.status(status, trailers))
        wakeReader()
    }

    private func protocolError(_ error: RPCError) {
        guard !ended else { return }
        let wasOpen = id > 0
        fail(error)
        if wasOpen { connection?.resetStream(id) }
    }

    func receivedData(_ bytes: UnsafeRawBufferPointer) {
        unconsumedBytes += bytes.count
        guard failure == nil, !statusDelivered else {
            releaseWindow()
            return
        }
        do {
            try deframer.process(bytes) { message in
                if message.compressed, let compression = responseCompression {
                    do {
                        var decompressed = try Zlib.decompress(
                            message.bytes, algorithm: compression, limit: options.maxResponseMessageBytes
                        )
                        decompressed.arrivedCompressed = true
                        parts.append(.message(decompressed))
                    } catch let failure as Zlib.Failure {
                        throw Zlib.rpcError(failure, algorithm: compression)
                    }
                } else {
                    parts.append(.message(message.bytes))
                }
            }
        } catch let failure as GRPCMessageDeframer.Failure {
            protocolError(failure.rpcError)
            return
        } catch let error as RPCError {
            protocolError(error)
            return
        } catch {}
        if parts.isEmpty { releaseWindow() }
        wakeReader()
    }

    private func releaseWindow() {
        let bytes = unconsumedBytes
        unconsumedBytes = 0
        if id > 0 { connection?.consume(streamID: id, bytes: bytes) }
    }

    func closed(errorCode: UInt32) {
        if errorCode == UInt32(NGHTTP2_REFUSED_STREAM.rawValue), retryTransparently() { return }
        if !statusDelivered {
            let error: RPCError
            switch errorCode {
            case UInt32(NGHTTP2_REFUSED_STREAM.rawValue):
                error = RPCError(code: .unavailable, message: "The server refused the stream.")
            case UInt32(NGHTTP2_CANCEL.rawValue):
                error = RPCError(code: .cancelled, message: "The server cancelled the RPC.")
            case UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue):
                error = RPCError(code: .resourceExhausted, message: "The server reset the stream: ENHANCE_YOUR_CALM.")
            case UInt32(NGHTTP2_INADEQUATE_SECURITY.rawValue):
                error = RPCError(code: .permissionDenied, message: "The server reset the stream: INADEQUATE_SECURITY.")
            default:
                error = RPCError(code: .internal, message: "The stream was reset (HTTP/2 error \(errorCode)) before a status.")
            }
            fail(error)
        } else {
            ended = true
            for continuation in [writer].compactMap({ $0 }) {
                continuation.resume(throwing: RPCError(code: .cancelled, message: "The RPC has ended."))
            }
            writer = nil
            wakeReader()
        }
    }

    /// Sends the refused stream again on a usable connection; false if it can't be retried.
    private func retryTransparently() -> Bool {
        guard transparentRetries == 0, !headersReceived, outbound.retaining, !ended, failure == nil, !statusDelivered
        else { return false }
        transparentRetries += 1
        id = -1
        connection = nil
        deferred = false
        unconsumedBytes = 0
        outbound.rewind()
        manager.open(self, metadata: requestMetadata)
        return true
    }

    private func popPart() -> RPCResponsePart? {
        guard let part = parts.popFirst() else { return nil }
        if parts.isEmpty { releaseWindow() }
        return part
    }

    private func wakeReader() {
        guard let reader else { return }
        if let part = popPart() {
            self.reader = nil
            reader.resume(returning: part)
        } else if let failure {
            self.reader = nil
            reader.resume(throwing: failure)
        } else if statusDelivered {
            self.reader = nil
            reader.resume(returning: nil)
        }
    }

    // MARK: Request body (loop)

    private func resumeData() {
        guard deferred, id > 0, let connection, let session = connection.nghttp2Session else { return }
        deferred = false
        nghttp2_session_resume_data(session, id)
        connection.scheduleFlush()
    }

    func readData(into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let copied = outbound.read(into: buffer, length: length)
        if let writer, outbound.byteCount <= manager.configuration.maxBufferedBytesPerStream {
            self.writer = nil
            writer.resume()
        }
        if outbound.isEmpty && halfClosed {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return copied
        }
        if copied == 0 {
            deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return copied
    }
}

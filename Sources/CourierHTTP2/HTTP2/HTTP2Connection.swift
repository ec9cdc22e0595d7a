internal import CNGHTTP2
internal import Courier

/// The HTTP/2 half of a connection: the one place an nghttp2 session is created, fed, drained and
/// submitted to. ``HTTP2ServerConnection`` and ``HTTP2ClientConnection`` subclass it and receive the
/// session's events through the overridable methods below; their streams never touch the session — they
/// ask their connection, which asks this class.
///
/// Confined to its loop. A class with overridable methods rather than a protocol so that nghttp2's
/// `user_data` is an unretained pointer to it and each callback is one virtual call.
class HTTP2Connection: @unchecked Sendable {
    // @unchecked Sendable: touched on `loop` only (subclasses assert it); Sendable so that work can be
    // queued for it on its own loop.
    let loop: EventLoop
    /// The socket half.
    let io: ConnectionIO
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    @exclusivity(unchecked) private var session: OpaquePointer?

    init(loop: EventLoop) {
        self.loop = loop
        self.io = ConnectionIO(loop: loop)
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    /// Whether the session exists (``startSession(server:settings:)`` succeeded).
    final var hasSession: Bool { session != nil }

    /// Creates the session and queues the first SETTINGS (sent with the next flush).
    ///
    /// - Returns: false if nghttp2 could not create it (out of memory).
    final func startSession(server: Bool, settings: SessionSettings) -> Bool {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, onBeginFrame)
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceive)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSend)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // Windows open only as the application reads (flow control is backpressure).
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 * 1024)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        let rc =
            server
            ? nghttp2_session_server_new2(&session, callbacks, userData, option)
            : nghttp2_session_client_new2(&session, callbacks, userData, option)
        guard rc == 0, let session else { return false }
        settings.submit(to: session)
        return true
    }

    // MARK: Bytes in and out

    /// Feeds received bytes to the session, which calls back for each frame.
    ///
    /// - Returns: false on a connection error (nghttp2 has queued GOAWAY; send it, then close).
    final func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let session else { return false }
        return nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
            >= 0
    }

    /// Appends everything the session wants to send (frames, and DATA pulled from the streams' providers).
    final func drainOutput(into output: inout [UInt8]) {
        guard let session else { return }
        while true {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count <= 0 { break }
            output.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
        }
    }

    /// Whether the session wants neither to read nor to write: it is finished (after GOAWAY both ways, or
    /// a fatal error).
    final var sessionIsFinished: Bool {
        guard let session else { return true }
        return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    /// The highest stream ID the peer opened that the session processed.
    final var lastProcessedStreamID: Int32 {
        guard let session else { return 0 }
        return nghttp2_session_get_last_proc_stream_id(session)
    }

    /// Whether nghttp2 knows the stream (it is open or half-closed).
    final func streamExists(_ id: Int32) -> Bool {
        guard let session else { return false }
        return nghttp2_session_find_stream(session, id) != nil
    }

    // MARK: Submitting

    /// Server: the response head, with a data provider for the messages and trailers that follow.
    final func submitResponseHead(streamID: Int32, _ head: GRPCStreamStateMachine.ResponseHead) {
        guard let session else { return }
        var provider = nghttp2_data_provider()
        provider.read_callback = onReadData
        switch head {
        case .plain:
            let block = StaticHeaderList.plainResponse
            _ = nghttp2_submit_response(session, streamID, block.nv, block.count, &provider)
        case .custom(let compression, let metadata):
            var headers = HeaderList([(":status", "200"), ("content-type", "application/grpc")])
            if let compression { headers.add("grpc-encoding", compression.name) }
            headers.add("grpc-accept-encoding", GRPCHeaders.acceptEncoding)
            headers.add(contentsOf: GRPCHeaders.fields(for: metadata))
            headers.withNV { nv, count in _ = nghttp2_submit_response(session, streamID, nv, count, &provider) }
        }
        io.scheduleFlush()
    }

    /// Server: one HEADERS frame with `:status 200`, the status and trailing metadata, ending the stream.
    final func submitTrailersOnly(streamID: Int32, status: Status, trailers: Metadata) {
        guard let session else { return }
        var headers = HeaderList([(":status", "200"), ("content-type", "application/grpc")])
        headers.add(contentsOf: Self.statusFields(status, trailers))
        headers.withNV { nv, count in _ = nghttp2_submit_response(session, streamID, nv, count, nil) }
        io.scheduleFlush()
    }

    /// Server: an answer without a handler: a plain HTTP status, or a Trailers-Only gRPC status.
    final func submitRejection(streamID: Int32, _ rejection: GRPCStreamStateMachine.Rejection) {
        guard let session else { return }
        var headers = HeaderList()
        switch rejection {
        case .httpStatus(let status):
            headers.add(":status", "\(status)")
            headers.add("content-type", "text/plain")
        case .trailersOnly(let status):
            headers.add(":status", "200")
            headers.add("content-type", "application/grpc")
            headers.add("grpc-accept-encoding", GRPCHeaders.acceptEncoding)
            headers.add(contentsOf: Self.statusFields(status, [:]))
        }
        headers.withNV { nv, count in _ = nghttp2_submit_response(session, streamID, nv, count, nil) }
        io.scheduleFlush()
    }

    private static func statusFields(_ status: Status, _ trailers: Metadata) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [("grpc-status", "\(status.code.rawValue)")]
        if !status.message.isEmpty { fields.append(("grpc-message", GRPCStatusMessage.encode(status.message))) }
        fields.append(contentsOf: GRPCHeaders.fields(for: trailers))
        return fields
    }

    /// Client: a request, with a data provider for its messages.
    ///
    /// - Returns: The new stream's ID, or nghttp2's (negative) error.
    final func submitRequest(_ headers: HeaderList) -> Int32 {
        guard let session else { return Int32(NGHTTP2_ERR_INVALID_STATE.rawValue) }
        var provider = nghttp2_data_provider()
        provider.read_callback = onReadData
        let id = headers.withNV { nv, count in nghttp2_submit_request(session, nil, nv, count, &provider, nil) }
        io.scheduleFlush()
        return id
    }

    /// Tells nghttp2 that a stream whose data provider deferred has data (or its end) now.
    final func resumeData(streamID: Int32) {
        guard let session else { return }
        nghttp2_session_resume_data(session, streamID)
        io.scheduleFlush()
    }

    /// RST_STREAM.
    final func resetStream(_ streamID: Int32, _ code: HTTP2ErrorCode) {
        guard let session, !io.closed else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
        io.scheduleFlush()
    }

    /// Gives `bytes` of a stream's received DATA back to the peer's windows (stream and connection).
    final func consume(streamID: Int32, bytes: Int) {
        guard let session, bytes > 0, !io.closed else { return }
        nghttp2_session_consume(session, streamID, bytes)
        io.scheduleFlush()
    }

    /// Gives back connection window for DATA no stream will read.
    final func consumeConnection(bytes: Int) {
        guard let session, bytes > 0 else { return }
        nghttp2_session_consume_connection(session, bytes)
    }

    /// GOAWAY.
    final func submitGoAway(lastStreamID: Int32, _ code: HTTP2ErrorCode, debugData: String = "") {
        guard let session else { return }
        var debug = Array(debugData.utf8)
        debug.withUnsafeMutableBufferPointer { buffer in
            _ = nghttp2_submit_goaway(
                session,
                UInt8(NGHTTP2_FLAG_NONE.rawValue),
                lastStreamID,
                code.rawValue,
                buffer.baseAddress,
                buffer.count
            )
        }
        io.scheduleFlush()
    }

    /// Server: the first GOAWAY of a graceful shutdown, naming stream 2³¹−1: a notice that the session
    /// will end, after which the session still takes the streams the client sends (the final GOAWAY, with
    /// the real last stream ID, follows through ``submitGoAway(lastStreamID:_:debugData:)``).
    final func submitShutdownNotice() {
        guard let session else { return }
        _ = nghttp2_submit_shutdown_notice(session)
        io.scheduleFlush()
    }

    /// PING with an 8-byte payload (the peer echoes it in its ACK). nghttp2 answers the peer's PINGs itself.
    final func submitPing(_ payload: UInt64) {
        guard let session else { return }
        var bytes = payload.bigEndian
        withUnsafeBytes(of: &bytes) { raw in
            _ = nghttp2_submit_ping(
                session,
                UInt8(NGHTTP2_FLAG_NONE.rawValue),
                raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            )
        }
        io.scheduleFlush()
    }

    /// Submits the trailers of a stream whose data provider just reported EOF without END_STREAM.
    private func submitTrailers(streamID: Int32, _ trailers: GRPCStreamStateMachine.Trailers) {
        guard let session else { return }
        switch trailers {
        case .ok:
            let block = StaticHeaderList.okTrailers
            _ = nghttp2_submit_trailer(session, streamID, block.nv, block.count)
        case .status(let status, let metadata):
            HeaderList(Self.statusFields(status, metadata)).withNV { nv, count in
                _ = nghttp2_submit_trailer(session, streamID, nv, count)
            }
        }
    }

    // MARK: Events, overridden by the server and client connections

    /// A frame header arrived.
    func frameBegins(type: HTTP2FrameType, streamID: Int32) {}

    /// A HEADERS frame that opens a request (server) or carries a response head or trailers (client) begins.
    func headersBegin(streamID: Int32, category: HTTP2HeadersCategory) {}

    /// A header field of the current block. Return false to reset the stream and skip the rest of the block.
    func header(streamID: Int32, name: HeaderBytes, value: HeaderBytes) -> Bool { true }

    /// A HEADERS block (with its CONTINUATIONs) is complete.
    func headersComplete(streamID: Int32, category: HTTP2HeadersCategory, endStream: Bool) {}

    /// DATA bytes of a stream.
    func dataReceived(streamID: Int32, bytes: UnsafeRawBufferPointer) {}

    /// A DATA frame with END_STREAM is complete.
    func dataEndedStream(streamID: Int32) {}

    /// The peer's SETTINGS (not an ACK).
    func settingsReceived() {}

    /// The peer's RST_STREAM.
    func resetReceived(streamID: Int32, code: HTTP2ErrorCode) {}

    /// The peer's GOAWAY; `debugData` is its opaque data as text (grpc's `too_many_pings`, say).
    func goAwayReceived(lastStreamID: Int32, code: HTTP2ErrorCode, debugData: String) {}

    /// The peer's PING (nghttp2 has queued the ACK) or the ACK of ours (`ack`), with its payload.
    func pingReceived(ack: Bool, payload: UInt64) {}

    /// A HEADERS or DATA frame went out (activity that, for example, resets the peer's ping strikes).
    func headersOrDataSent(streamID: Int32) {}

    /// A HEADERS frame with END_STREAM went out.
    func endStreamHeadersSent(streamID: Int32) {}

    /// nghttp2 closed a stream (`code` is the RST_STREAM code, or NO_ERROR).
    func streamClosed(streamID: Int32, code: HTTP2ErrorCode) {}

    /// A stream's data provider asks for up to `length` bytes; `nil` when the stream is unknown.
    func pullData(
        streamID: Int32,
        into buffer: UnsafeMutablePointer<UInt8>,
        length: Int
    ) -> GRPCStreamStateMachine.DataPull? {
        nil
    }

    // MARK: Callback plumbing

    fileprivate final func readData(
        streamID: Int32,
        buffer: UnsafeMutablePointer<UInt8>,
        length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let pull = pullData(streamID: streamID, into: buffer, length: length) else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        if pull.deferred { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        switch pull.end {
        case nil:
            break
        case .endStream:
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
        case .trailers(let trailers):
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) | UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
            submitTrailers(streamID: streamID, trailers)
        }
        return pull.count
    }
}

/// The frame types the connections tell apart.
enum HTTP2FrameType: Equatable {
    case data, headers, rstStream, settings, ping, goAway, windowUpdate, other

    init(_ raw: UInt8) {
        switch UInt32(raw) {
        case NGHTTP2_DATA.rawValue: self = .data
        case NGHTTP2_HEADERS.rawValue: self = .headers
        case NGHTTP2_RST_STREAM.rawValue: self = .rstStream
        case NGHTTP2_SETTINGS.rawValue: self = .settings
        case NGHTTP2_PING.rawValue: self = .ping
        case NGHTTP2_GOAWAY.rawValue: self = .goAway
        case NGHTTP2_WINDOW_UPDATE.rawValue: self = .windowUpdate
        default: self = .other
        }
    }
}

/// What a HEADERS block is, as nghttp2 classifies it.
enum HTTP2HeadersCategory: Equatable {
    /// Server: a request head (it opens a stream).
    case request
    /// Client: a response head.
    case response
    /// Trailers (either side), or a second block.
    case headers
    case pushResponse

    init(_ category: nghttp2_headers_category) {
        switch category {
        case NGHTTP2_HCAT_REQUEST: self = .request
        case NGHTTP2_HCAT_RESPONSE: self = .response
        case NGHTTP2_HCAT_PUSH_RESPONSE: self = .pushResponse
        default: self = .headers
        }
    }
}

// MARK: nghttp2 callbacks: free functions; the connection travels as user_data.

/// Runs `body` with the connection behind `user_data`, without retaining it: nghttp2 calls back only from
/// inside `mem_recv`/`mem_send`, which the connection itself is running (so it is alive).
@inline(__always)
private func withConnection<R>(_ userData: UnsafeMutableRawPointer?, _ body: (HTTP2Connection) -> R) -> R {
    Unmanaged<HTTP2Connection>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}

private func onBeginFrame(
    _ session: OpaquePointer?,
    _ header: UnsafePointer<nghttp2_frame_hd>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let header else { return 0 }
    // A connection that finds a violation queues GOAWAY itself and stops reading; returning a failure
    // here would make nghttp2 drop that GOAWAY.
    withConnection(userData) {
        $0.frameBegins(type: HTTP2FrameType(header.pointee.type), streamID: header.pointee.stream_id)
    }
    return 0
}

private func onBeginHeaders(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    withConnection(userData) {
        $0.headersBegin(streamID: frame.pointee.hd.stream_id, category: HTTP2HeadersCategory(frame.pointee.headers.cat))
    }
    return 0
}

private func onHeader(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?,
    _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?,
    _ valueLength: Int,
    _ flags: UInt8,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    let accepted = withConnection(userData) {
        $0.header(
            streamID: frame.pointee.hd.stream_id,
            name: HeaderBytes(base: name, count: nameLength),
            value: HeaderBytes(base: value, count: valueLength)
        )
    }
    // Refused (over the header-list limit): nghttp2 resets the stream and skips the rest of the block.
    return accepted ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
}

private func onFrameReceive(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    withConnection(userData) { connection in
        switch HTTP2FrameType(header.type) {
        case .headers:
            connection.headersComplete(
                streamID: header.stream_id,
                category: HTTP2HeadersCategory(frame.pointee.headers.cat),
                endStream: endStream
            )
        case .data:
            if endStream { connection.dataEndedStream(streamID: header.stream_id) }
        case .settings:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { connection.settingsReceived() }
        case .rstStream:
            connection.resetReceived(
                streamID: header.stream_id,
                code: HTTP2ErrorCode(rawValue: frame.pointee.rst_stream.error_code)
            )
        case .goAway:
            let goAway = frame.pointee.goaway
            let debugData =
                goAway.opaque_data.map {
                    String(
                        decoding: UnsafeBufferPointer(start: $0, count: min(goAway.opaque_data_len, 256)),
                        as: UTF8.self
                    )
                } ?? ""
            connection.goAwayReceived(
                lastStreamID: goAway.last_stream_id,
                code: HTTP2ErrorCode(rawValue: goAway.error_code),
                debugData: debugData
            )
        case .ping:
            let ack = header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
            let payload = withUnsafeBytes(of: frame.pointee.ping.opaque_data) { $0.loadUnaligned(as: UInt64.self) }
            connection.pingReceived(ack: ack, payload: UInt64(bigEndian: payload))
        case .windowUpdate, .other:
            break
        }
    }
    return 0
}

private func onDataChunk(
    _ session: OpaquePointer?,
    _ flags: UInt8,
    _ streamID: Int32,
    _ data: UnsafePointer<UInt8>?,
    _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    withConnection(userData) {
        $0.dataReceived(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
    }
    return 0
}

private func onFrameSend(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let header = frame.pointee.hd
    guard header.type == UInt8(NGHTTP2_HEADERS.rawValue) || header.type == UInt8(NGHTTP2_DATA.rawValue) else {
        return 0
    }
    withConnection(userData) { connection in
        connection.headersOrDataSent(streamID: header.stream_id)
        if header.type == UInt8(NGHTTP2_HEADERS.rawValue), header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
            connection.endStreamHeadersSent(streamID: header.stream_id)
        }
    }
    return 0
}

private func onStreamClose(
    _ session: OpaquePointer?,
    _ streamID: Int32,
    _ errorCode: UInt32,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    withConnection(userData) { $0.streamClosed(streamID: streamID, code: HTTP2ErrorCode(rawValue: errorCode)) }
    return 0
}

private func onReadData(
    _ session: OpaquePointer?,
    _ streamID: Int32,
    _ buffer: UnsafeMutablePointer<UInt8>?,
    _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?,
    _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return withConnection(userData) { $0.readData(streamID: streamID, buffer: buffer, length: length, flags: flags) }
}

internal import CCourierLinux
internal import CNGHTTP2
internal import Courier
#if canImport(Glibc)
internal import Glibc
#endif

/// One accepted HTTP/2 connection on the server: the socket, the nghttp2 session and the stream table,
/// confined to one event loop and driven synchronously from I/O completions.
final class HTTP2ServerConnection: @unchecked Sendable {
    // @unchecked Sendable: every mutable property is touched on `loop` only (asserted in debug builds).
    let loop: EventLoop
    let fd: Int32
    let peer: String
    private let owner: HTTP2ServerTransport.Listener
    private var session: OpaquePointer?
    private var streams: [Int32: HTTP2ServerStream] = [:]
    private let io: ConnectionIO
    private var closing = false
    private var goingAway = false
    var closed: Bool { io.closed }
    /// The client's verified certificate (mutual TLS), set when the handshake completes, before any stream.
    private(set) var peerIdentity: PeerIdentity?
    /// Closes a connection that hasn't sent its preface and SETTINGS in time; cancelled when it has.
    private var handshakeTimer: LoopTimer?
    /// Rapid Reset accounting: RST_STREAMs received in the current one-second window.
    private var resetWindowStart = ContinuousClock.now
    private var resetsInWindow = 0

    let configuration: HTTP2ServerTransport.Configuration

    init(
        fd: Int32,
        loop: EventLoop,
        owner: HTTP2ServerTransport.Listener,
        configuration: HTTP2ServerTransport.Configuration
    ) {
        self.fd = fd
        self.loop = loop
        self.owner = owner
        self.configuration = configuration
        self.peer = Sockets.peerAddress(of: fd)?.description ?? "unknown"
        self.io = ConnectionIO(loop: loop)
        io.attach(fd: fd)
        io.onReceive = { [unowned self] bytes in self.received(bytes) }
        io.onFailure = { [unowned self] result, _ in self.close(reason: result == 0 ? "peer closed" : "I/O failed") }
        io.produceOutput = { [unowned self] output in self.produceOutput(&output) }
        io.afterOutput = { [unowned self] in self.closeIfDone() }
        io.onFinalized = { [unowned self] in self.owner.connectionClosed(self) }
        io.onTLSFailure = { [unowned self] failure in self.close(reason: failure.description) }
        io.onHandshakeComplete = { [unowned self] in self.peerIdentity = self.io.tls?.peerIdentity }
    }

    deinit {
        lastPathBytes.deallocate()
        if let session { nghttp2_session_del(session) }
    }

    /// Sets up the session, sends SETTINGS and starts reading. On the loop.
    func start() {
        loop.preconditionInEventLoop()
        _ = Sockets.setNoDelay(fd)
        // unowned(unsafe), not weak: a weak reference gives the connection a side table, which sends every
        // retain and release of it down Swift's slow path (measured: ≈9 % of a unary benchmark). Safe because
        // the timer fires on the loop and is cancelled in close(), and the connection lives until closed.
        handshakeTimer = loop.scheduleTimer(at: .now.advanced(by: configuration.handshakeTimeout)) { [unowned(unsafe) self] in
            self.close(reason: "no HTTP/2 preface and SETTINGS within the handshake timeout")
        }
        if let tls = owner.tls {
            do {
                io.tls = try TLSSession(context: tls, serverName: nil)
            } catch {
                close(reason: error.description)
                return
            }
        }
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, onBeginFrame)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceive)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSend)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 * 1024)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        guard nghttp2_session_server_new2(&session, callbacks, userData, option) == 0 else {
            close(reason: "nghttp2_session_server_new2 failed")
            return
        }
        SessionSettings(
            maxConcurrentStreams: configuration.maxConcurrentStreams,
            streamWindowBytes: configuration.streamWindowBytes,
            maxHeaderListBytes: configuration.maxHeaderListBytes,
            connectionWindowBytes: configuration.connectionWindowBytes
        ).submit(to: session)
        io.armReceive()
        io.scheduleFlush()
    }

    // MARK: The session's side of the socket

    private func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let session else { return false }
        if nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) < 0 {
            // A protocol error: nghttp2 has queued GOAWAY; send it, then close.
            closing = true
            return false
        }
        return !closing
    }

    private func produceOutput(_ output: inout [UInt8]) {
        guard let session else { return }
        while true {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count <= 0 { break }
            output.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
        }
    }

    private func closeIfDone() {
        guard let session, !io.closed, io.outputIdle else { return }
        if closing {
            close(reason: "closing")
        } else if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
            close(reason: "session finished")
        }
    }

    func scheduleFlush() {
        io.scheduleFlush()
    }

    // MARK: Lifecycle

    /// Starts a graceful close: GOAWAY now; the connection closes when its streams have finished.
    func beginGracefulShutdown() {
        guard let session, !goingAway, !io.closed else { return }
        goingAway = true
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0
        )
        if streams.isEmpty { closing = true }
        io.scheduleFlush()
    }

    /// The client's SETTINGS arrived: the connection is established.
    fileprivate func receivedSettings() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
    }

    /// Counts a client RST_STREAM; too many per second is an attack (Rapid Reset): GOAWAY and close.
    fileprivate func receivedReset() {
        let now = ContinuousClock.now
        if resetWindowStart.duration(to: now) >= .seconds(1) {
            resetWindowStart = now
            resetsInWindow = 0
        }
        resetsInWindow += 1
        guard resetsInWindow > configuration.maxStreamResetsPerSecond, let session else { return }
        terminate(errorCode: NGHTTP2_ENHANCE_YOUR_CALM, lastStreamID: nghttp2_session_get_last_proc_stream_id(session))
    }

    /// A connection error: GOAWAY with `errorCode`, every stream cancelled, no more reading; the socket
    /// closes once the GOAWAY is out.
    private func terminate(errorCode: nghttp2_error_code, lastStreamID: Int32) {
        guard let session, !closing else { return }
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, UInt32(errorCode.rawValue), nil, 0)
        goingAway = true
        closing = true
        for stream in streams.values { stream.connectionClosed() }
        streams.removeAll()
        io.scheduleFlush()
    }

    /// Closes the socket now; every open stream is cancelled.
    func close(reason: String) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        guard !io.closed else { return }
        closing = true
        for stream in streams.values { stream.connectionClosed() }
        streams.removeAll()
        io.close()
    }

    // MARK: Streams, from the nghttp2 callbacks

    /// The highest stream ID the client has opened.
    private var highestStreamID: Int32 = 0

    /// A frame header arrived. HEADERS that would open a stream at or below the highest ID already opened
    /// (stream-ID reuse) are a connection error (RFC 9113 §5.1.1); nghttp2 alone would ignore them.
    fileprivate func beginFrame(type: UInt8, streamID: Int32) {
        guard type == UInt8(NGHTTP2_HEADERS.rawValue), streamID > 0, let session else { return }
        if streamID > highestStreamID {
            highestStreamID = streamID
        } else if nghttp2_session_find_stream(session, streamID) == nil {  // not trailers on an open stream
            terminate(errorCode: NGHTTP2_PROTOCOL_ERROR, lastStreamID: highestStreamID)
        }
    }

    fileprivate func beginHeaders(streamID: Int32) {
        guard !closing else {  // e.g. after a Rapid Reset GOAWAY: serve nothing more
            headerStream = nil
            return
        }
        let stream = HTTP2ServerStream(id: streamID, connection: self)
        streams[streamID] = stream
        headerStream = stream
    }

    /// The stream whose request head is arriving: its header callbacks skip the table lookup.
    private var headerStream: HTTP2ServerStream?

    fileprivate func header(streamID: Int32, name: HeaderBytes, value: HeaderBytes) -> Bool {
        if let stream = headerStream, stream.id == streamID { return stream.addHeader(name: name, value: value) }
        return streams[streamID]?.addHeader(name: name, value: value) ?? true
    }

    /// The last request path seen: most connections call a few methods over and over, so the path's
    /// String is made once and shared instead of allocated per request.
    private var lastPath = ""
    private var lastPathBytes = UnsafeMutableBufferPointer<UInt8>(start: nil, count: 0)

    func internedPath(_ bytes: HeaderBytes) -> String {
        if bytes.count == lastPathBytes.count, bytes.count > 0, memcmp(bytes.base!, lastPathBytes.baseAddress!, bytes.count) == 0 {
            return lastPath
        }
        lastPathBytes.deallocate()
        lastPathBytes = .allocate(capacity: bytes.count)
        if bytes.count > 0 { lastPathBytes.baseAddress!.update(from: bytes.base!, count: bytes.count) }
        lastPath = bytes.string
        return lastPath
    }

    fileprivate func headersComplete(streamID: Int32, endStream: Bool) {
        let known = headerStream?.id == streamID ? headerStream : streams[streamID]
        headerStream = nil
        guard let stream = known, !stream.isGone else { return }
        switch stream.validateRequest() {
        case .success:
            if endStream { stream.receivedEndOfStream() }
            owner.serve(stream)
        case .failure(let rejection):
            respondImmediately(stream, rejection)
            if endStream { stream.receivedEndOfStream() }
        }
    }

    fileprivate func dataChunk(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else {
            // Nothing reads it: give the window back at once.
            if let session { nghttp2_session_consume_connection(session, bytes.count) }
            return
        }
        stream.receivedData(bytes)
    }

    fileprivate func endOfStream(streamID: Int32) {
        streams[streamID]?.receivedEndOfStream()
    }

    /// The response ended (END_STREAM sent) while the client was still sending: PROTOCOL-HTTP2 asks for a
    /// RST_STREAM(NO_ERROR) so that the client stops.
    fileprivate func responseEnded(streamID: Int32) {
        guard let session, let stream = streams[streamID], !stream.requestEnded else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, UInt32(NGHTTP2_NO_ERROR.rawValue))
        io.scheduleFlush()
    }

    fileprivate func streamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.closedByPeer(errorCode: errorCode)
        if goingAway && streams.isEmpty {
            closing = true
            io.scheduleFlush()
        }
    }

    /// An immediate answer without a handler (bad content-type: HTTP 415; unsupported method).
    private func respondImmediately(_ stream: HTTP2ServerStream, _ rejection: HTTP2ServerStream.Rejection) {
        guard let session else { return }
        var headers = HeaderList()
        switch rejection {
        case .httpStatus(let status, _):
            headers.add(":status", "\(status)")
            headers.add("content-type", "text/plain")
        case .grpcStatus(let status):
            headers.add(":status", "200")
            headers.add("content-type", "application/grpc")
            headers.add("grpc-accept-encoding", GRPCHeaders.acceptEncoding)
            headers.add("grpc-status", "\(status.code.rawValue)")
            if !status.message.isEmpty { headers.add("grpc-message", GRPCStatusMessage.encode(status.message)) }
        }
        headers.withNV { nv, count in
            _ = nghttp2_submit_response(session, stream.id, nv, count, nil)
        }
        stream.markResponded()
        io.scheduleFlush()
    }

    // MARK: Used by streams

    var nghttp2Session: OpaquePointer? { session }

    func stream(id: Int32) -> HTTP2ServerStream? { streams[id] }

    func consume(streamID: Int32, bytes: Int) {
        guard let session, bytes > 0, !io.closed else { return }
        nghttp2_session_consume(session, streamID, bytes)
        io.scheduleFlush()
    }
}

extension Sockets {
    static func setNoDelay(_ fd: Int32) -> Bool {
        (try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)) != nil
    }
}

// MARK: nghttp2 callbacks: free functions, the connection travels as user_data.

/// Runs `body` with the connection behind `user_data`, without retaining it: nghttp2 only calls back
/// from inside `mem_recv`/`mem_send`, which the connection itself is running (so it is alive).
@inline(__always)
private func withConnection<R>(_ userData: UnsafeMutableRawPointer?, _ body: (HTTP2ServerConnection) -> R) -> R {
    Unmanaged<HTTP2ServerConnection>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}

private func onBeginFrame(
    _ session: OpaquePointer?,
    _ header: UnsafePointer<nghttp2_frame_hd>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let header else { return 0 }
    // On a violation the connection has queued GOAWAY(PROTOCOL_ERROR) and stops reading; nghttp2 goes on
    // (returning a failure here would drop the GOAWAY).
    withConnection(userData) { $0.beginFrame(type: header.pointee.type, streamID: header.pointee.stream_id) }
    return 0
}

private func onBeginHeaders(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
    else { return 0 }
    withConnection(userData) { $0.beginHeaders(streamID: frame.pointee.hd.stream_id) }
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
    switch Int(header.type) {
    case Int(NGHTTP2_HEADERS.rawValue):
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            withConnection(userData) { $0.headersComplete(streamID: header.stream_id, endStream: endStream) }
        } else if endStream {
            // Trailers from the client end its stream.
            withConnection(userData) { $0.endOfStream(streamID: header.stream_id) }
        }
    case Int(NGHTTP2_DATA.rawValue):
        if endStream { withConnection(userData) { $0.endOfStream(streamID: header.stream_id) } }
    case Int(NGHTTP2_SETTINGS.rawValue):
        if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { withConnection(userData) { $0.receivedSettings() } }
    case Int(NGHTTP2_RST_STREAM.rawValue):
        withConnection(userData) { $0.receivedReset() }
    default:
        break
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
    withConnection(userData) { $0.dataChunk(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length)) }
    return 0
}

private func onFrameSend(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let header = frame.pointee.hd
    if header.type == UInt8(NGHTTP2_HEADERS.rawValue), header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
        withConnection(userData) { $0.responseEnded(streamID: header.stream_id) }
    }
    return 0
}

private func onStreamClose(
    _ session: OpaquePointer?,
    _ streamID: Int32,
    _ errorCode: UInt32,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    withConnection(userData) { $0.streamClosed(streamID: streamID, errorCode: errorCode) }
    return 0
}

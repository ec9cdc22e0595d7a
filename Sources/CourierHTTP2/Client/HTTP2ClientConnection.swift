internal import CCourierLinux
internal import CNGHTTP2
internal import Courier
#if canImport(Glibc)
internal import Glibc
#endif

/// One HTTP/2 connection from a client: socket, nghttp2 client session and the streams multiplexed on
/// it, confined to one event loop. RPCs started while it connects wait; if connecting fails they fail
/// with `UNAVAILABLE`. nghttp2 queues streams beyond the server's MAX_CONCURRENT_STREAMS.
final class HTTP2ClientConnection: @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only.
    enum State {
        case idle
        case connecting
        case ready
        case failed(RPCError)
    }

    let loop: EventLoop
    let configuration: HTTP2ClientTransport.Configuration
    /// Every address the target resolved to, tried in order.
    private let addresses: [SocketAddress]
    private var addressIndex = 0
    private var address: SocketAddress { addresses[addressIndex] }
    private let authority: String
    private unowned let manager: HTTP2ConnectionManager
    private var fd: Int32 = -1
    private var session: OpaquePointer?
    private(set) var state = State.idle
    private var streams: [Int32: HTTP2ClientStream] = [:]
    private var pendingOpens: [(HTTP2ClientStream, Metadata)] = []

    private let io: ConnectionIO
    /// The server sent GOAWAY: no new streams here; the connection closes once its streams have ended.
    private var goingAway = false
    private var connectHandler: IOHandler!
    private var connectAddress: UnsafeMutableRawPointer?
    private var connecting: Bool { io.otherOperationsInFlight > 0 }
    private var closed: Bool { io.closed }

    init(
        manager: HTTP2ConnectionManager,
        addresses: [SocketAddress],
        authority: String,
        configuration: HTTP2ClientTransport.Configuration
    ) {
        self.manager = manager
        self.loop = manager.loop
        self.addresses = addresses
        self.authority = authority
        self.configuration = configuration
        self.io = ConnectionIO(loop: manager.loop)
        self.connectHandler = IOHandler { [unowned self] in self.connected($0) }
        io.onReceive = { [unowned self] bytes in self.received(bytes) }
        io.onFailure = { [unowned self] result, sending in
            self.lost(result == 0 ? "the server closed the connection" : "\(sending ? "send" : "recv") failed (\(-result))")
        }
        io.produceOutput = { [unowned self] output in self.produceOutput(&output) }
        io.onFinalized = { [unowned self] in self.manager.connectionClosed(self) }
        io.onTLSFailure = { [unowned self] failure in self.tlsFailed(failure) }
    }

    deinit {
        connectAddress?.deallocate()
        if let session { nghttp2_session_del(session) }
    }

    var nghttp2Session: OpaquePointer? { session }

    // MARK: Connecting (loop)

    func startConnecting() {
        state = .connecting
        manager.connectionAttempts += 1
        fd = socket(address.family, CCourierLinux_SOCK_STREAM_CLOEXEC, 0)
        io.attach(fd: fd)
        guard fd >= 0 else {
            connectFailed(IOError(errno: errno, call: "socket"))
            return
        }
        do {
            // The address must outlive the operation: copy it into memory this object owns.
            try address.withSockAddr { pointer, length in
                let copy = UnsafeMutableRawPointer.allocate(byteCount: Int(length), alignment: 8)
                copy.copyMemory(from: pointer, byteCount: Int(length))
                connectAddress = copy
                io.otherOperationsInFlight += 1
                loop.submitConnect(fd: fd, address: copy.assumingMemoryBound(to: sockaddr.self), length: length, handler: connectHandler)
            }
        } catch {
            connectFailed(error)
        }
    }

    private func connected(_ result: Int32) {
        io.otherOperationsInFlight -= 1
        if closed {
            io.finalizeIfIdle()
            return
        }
        guard result == 0 else {
            if addressIndex + 1 < addresses.count {
                // Try the next address the name resolved to.
                Glibc.close(fd)
                fd = -1
                io.attach(fd: -1)
                connectAddress?.deallocate()
                connectAddress = nil
                addressIndex += 1
                startConnecting()
                return
            }
            connectFailed(IOError(errno: -result, call: "connect(\(address))"))
            return
        }
        if address.family != AF_UNIX { _ = Sockets.setNoDelay(fd) }
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks, clientOnHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, clientOnFrameReceive)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, clientOnDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, clientOnStreamClose)
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        guard nghttp2_session_client_new2(&session, callbacks, Unmanaged.passUnretained(self).toOpaque(), option) == 0 else {
            connectFailed(IOError(errno: ENOMEM, call: "nghttp2_session_client_new2"))
            return
        }
        SessionSettings(
            enablePush: false,
            streamWindowBytes: configuration.streamWindowBytes,
            maxHeaderListBytes: configuration.maxHeaderListBytes,
            connectionWindowBytes: configuration.connectionWindowBytes
        ).submit(to: session)
        // Streams wait for the server's SETTINGS: until then its MAX_CONCURRENT_STREAMS is unknown, and
        // streams over it would be refused instead of queued.
        if let tls = manager.tls {
            do {
                io.tls = try TLSSession(context: tls, serverName: HTTP2ClientTransport.host(ofAuthority: authority))
            } catch {
                tlsFailed(error)
                return
            }
            io.armReceive()
            io.startTLS()
            return
        }
        io.armReceive()
        io.scheduleFlush()
    }

    /// TLS failed: while connecting, the attempt failed (with the reason, such as a certificate that
    /// didn't verify); afterwards, the connection is lost.
    private func tlsFailed(_ failure: TLSSession.Failure) {
        if case .connecting = state {
            connectFailed(RPCError(code: .unavailable, message: "TLS with \(address) failed: \(failure)."))
        } else {
            lost("TLS failed: \(failure)")
        }
    }

    /// The server's first SETTINGS arrived: the connection is ready.
    fileprivate func receivedSettings() {
        guard case .connecting = state else { return }
        state = .ready
        manager.connectionReady(self)
        let pending = pendingOpens
        pendingOpens = []
        for (stream, metadata) in pending { submit(stream, metadata: metadata) }
        scheduleFlush()
    }

    private func connectFailed(_ error: any Error) {
        let rpcError = error as? RPCError
            ?? RPCError(code: .unavailable, message: "Could not connect to \(address): \(error)", cause: error)
        state = .failed(rpcError)
        let pending = pendingOpens
        pendingOpens = []
        manager.connectionFailed(self, pending: pending, error: rpcError)
        close()
    }

    // MARK: Streams (loop)

    func open(_ stream: HTTP2ClientStream, metadata: Metadata) {
        loop.preconditionInEventLoop()
        if goingAway {
            manager.open(stream, metadata: metadata)  // this connection takes no new streams
            return
        }
        switch state {
        case .idle, .connecting:
            pendingOpens.append((stream, metadata))
        case .ready:
            submit(stream, metadata: metadata)
        case .failed(let error):
            stream.fail(error)
        }
    }

    private func submit(_ stream: HTTP2ClientStream, metadata: Metadata) {
        guard let session, !closed else {
            stream.fail(RPCError(code: .unavailable, message: "The connection is closed."))
            return
        }
        var headers = HeaderList([
            (":method", "POST"), (":scheme", manager.tls == nil ? "http" : "https"), (":path", stream.descriptor.path), (":authority", authority),
        ])
        if let timeout = stream.timeRemaining { headers.add("grpc-timeout", GRPCTimeout.encode(timeout)) }
        headers.add("content-type", "application/grpc")
        headers.add("te", "trailers")
        if let compression = stream.requestCompression { headers.add("grpc-encoding", compression.name) }
        headers.add("grpc-accept-encoding", GRPCHeaders.acceptEncoding)
        headers.add("user-agent", "grpc-swift-courier/0.1")
        headers.add(contentsOf: GRPCHeaders.fields(for: metadata))
        var provider = nghttp2_data_provider()
        provider.read_callback = clientReadRequestData
        let id = headers.withNV { nv, count in
            nghttp2_submit_request(session, nil, nv, count, &provider, nil)
        }
        guard id > 0 else {
            stream.fail(RPCError(code: .unavailable, message: "Could not open a stream (nghttp2 error \(id))."))
            return
        }
        streams[id] = stream
        stream.opened(streamID: id, on: self)
        scheduleFlush()
    }

    func stream(id: Int32) -> HTTP2ClientStream? { streams[id] }

    func resetStream(_ id: Int32) {
        guard let session, !closed else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, UInt32(NGHTTP2_CANCEL.rawValue))
        scheduleFlush()
    }

    func consume(streamID: Int32, bytes: Int) {
        guard let session, bytes > 0, !closed else { return }
        nghttp2_session_consume(session, streamID, bytes)
        scheduleFlush()
    }

    fileprivate func streamClosed(_ id: Int32, errorCode: UInt32) {
        defer { closeIfDrained() }
        streams.removeValue(forKey: id)?.closed(errorCode: errorCode)
    }

    // MARK: The session's side of the socket (loop)

    private func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let session else { return false }
        if nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) < 0 {
            lost("the server violated HTTP/2")
            return false
        }
        return true
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

    func scheduleFlush() {
        io.scheduleFlush()
    }

    /// The connection failed: every RPC on it fails with `UNAVAILABLE`.
    private func lost(_ reason: String) {
        let error = RPCError(code: .unavailable, message: "The connection was lost: \(reason).")
        state = .failed(error)
        for stream in streams.values { stream.fail(error) }
        streams.removeAll()
        close()
    }

    /// Closes the connection; open streams fail with `UNAVAILABLE`.
    func close() {
        guard !closed else { return }
        let error = RPCError(code: .unavailable, message: "The connection was closed.")
        for stream in streams.values { stream.fail(error) }
        streams.removeAll()
        for (stream, _) in pendingOpens { stream.fail(error) }
        pendingOpens.removeAll()
        if case .ready = state { state = .failed(error) }
        io.close()
    }

    /// GOAWAY: stop using the connection for new streams and reopen the ones not yet sent elsewhere.
    /// Streams above `lastStreamID` are closed by nghttp2 with REFUSED_STREAM, and retry themselves. No
    /// GOAWAY goes back.
    fileprivate func receivedGoAway(lastStreamID: Int32, errorCode: UInt32) {
        guard !goingAway else { return }
        goingAway = true
        manager.connectionGoingAway(self)
        let pending = pendingOpens
        pendingOpens = []
        for (stream, metadata) in pending { manager.open(stream, metadata: metadata) }
        // Streams the server will never process: forget them here (a CANCEL tells nghttp2 and the server)
        // and let them retry elsewhere, as if refused.
        for id in streams.keys.sorted() where id > lastStreamID {
            guard let stream = streams.removeValue(forKey: id) else { continue }
            if let session { nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, UInt32(NGHTTP2_CANCEL.rawValue)) }
            stream.closed(errorCode: UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
        }
        scheduleFlush()
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard goingAway, streams.isEmpty, pendingOpens.isEmpty, !closed else { return }
        close()
    }

    /// Whether new streams can still be opened on this connection.
    var isUsable: Bool {
        if goingAway { return false }
        return switch state {
        case .idle, .connecting, .ready: !closed
        case .failed: false
        }
    }

    var hasStreams: Bool { !streams.isEmpty || !pendingOpens.isEmpty }
}

// MARK: nghttp2 client callbacks

@inline(__always)
private func clientConnection(_ userData: UnsafeMutableRawPointer?) -> HTTP2ClientConnection {
    Unmanaged<HTTP2ClientConnection>.fromOpaque(userData!).takeUnretainedValue()
}

private func clientOnHeader(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?,
    _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?,
    _ valueLength: Int,
    _ flags: UInt8,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        let stream = clientConnection(userData).stream(id: frame.pointee.hd.stream_id)
    else { return 0 }
    let accepted = stream.header(
        name: String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
        value: String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
    )
    // Over the limit: the stream has failed and is reset; ignore the rest of the block.
    return accepted ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
}

private func clientOnFrameReceive(
    _ session: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame else { return 0 }
    let header = frame.pointee.hd
    if header.type == UInt8(NGHTTP2_SETTINGS.rawValue), header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
        clientConnection(userData).receivedSettings()
        return 0
    }
    if header.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
        clientConnection(userData).receivedGoAway(
            lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code
        )
        return 0
    }
    guard let stream = clientConnection(userData).stream(id: header.stream_id) else { return 0 }
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    if header.type == UInt8(NGHTTP2_HEADERS.rawValue) {
        stream.headersComplete(endStream: endStream)
    } else if header.type == UInt8(NGHTTP2_DATA.rawValue), endStream {
        // DATA with END_STREAM and no trailers: the response ended without a status.
        stream.headersComplete(endStream: true)
    }
    return 0
}

private func clientOnDataChunk(
    _ session: OpaquePointer?,
    _ flags: UInt8,
    _ streamID: Int32,
    _ data: UnsafePointer<UInt8>?,
    _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    let connection = clientConnection(userData)
    if let stream = connection.stream(id: streamID) {
        stream.receivedData(UnsafeRawBufferPointer(start: data, count: length))
    } else if let session {
        nghttp2_session_consume(session, streamID, length)
    }
    return 0
}

private func clientOnStreamClose(
    _ session: OpaquePointer?,
    _ streamID: Int32,
    _ errorCode: UInt32,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    clientConnection(userData).streamClosed(streamID, errorCode: errorCode)
    return 0
}

private func clientReadRequestData(
    _ session: OpaquePointer?,
    _ streamID: Int32,
    _ buffer: UnsafeMutablePointer<UInt8>?,
    _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?,
    _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let stream = clientConnection(userData).stream(id: streamID), let buffer, let flags else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    return stream.readData(into: buffer, length: length, flags: flags)
}

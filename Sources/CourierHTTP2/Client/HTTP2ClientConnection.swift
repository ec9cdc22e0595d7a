internal import CCourierLinux
internal import Courier
internal import Logging

#if canImport(Glibc)
internal import Glibc
#endif

/// What a client connection tells its owner (the connection manager).
protocol HTTP2ClientConnectionDelegate: AnyObject {
    /// The server's SETTINGS arrived: the connection takes streams.
    func connectionReady(_ connection: HTTP2ClientConnection)
    /// Connecting failed; `waiting` are the streams that were waiting for it.
    func connectionFailed(_ connection: HTTP2ClientConnection, waiting: [HTTP2ClientStream], error: RPCError)
    /// The server sent GOAWAY (or the owner drains the connection): the next stream needs another
    /// connection.
    func connectionGoingAway(_ connection: HTTP2ClientConnection)
    /// The connection was lost or closed (its streams fail now): the next stream needs another
    /// connection.
    func connectionLost(_ connection: HTTP2ClientConnection, error: RPCError)
    /// The socket is closed and nothing is in flight: the connection can be let go.
    func connectionClosed(_ connection: HTTP2ClientConnection)
    /// A stream this connection can't carry (it went away, or the server refused the stream unprocessed):
    /// open it elsewhere.
    func reroute(_ stream: HTTP2ClientStream)
    /// Something the connection's machine reported: a timeout, `too_many_pings`, an idle close.
    func connection(_ connection: HTTP2ClientConnection, observed event: ClientConnectionStateMachine.Event)
    /// A keepalive PING went out.
    func connectionSentKeepalivePing(_ connection: HTTP2ClientConnection)
    /// A quiet connection gave its receive buffer's pages back.
    func connectionReleasedIdleBuffers(_ connection: HTTP2ClientConnection)
}

/// One HTTP/2 connection from a client: the socket (``ConnectionIO``), the nghttp2 session
/// (``HTTP2Connection``), the streams multiplexed on it and the ``ClientConnectionStateMachine``, confined
/// to one event loop.
final class HTTP2ClientConnection: HTTP2Connection, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only, except `isUsable`'s reads in tests.
    let configuration: HTTP2ClientTransport.Configuration
    private let authority: String
    private let tls: TLSContext?
    private unowned let delegate: any HTTP2ClientConnectionDelegate
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    @exclusivity(unchecked) private var machine: ClientConnectionStateMachine
    @exclusivity(unchecked) private var timers: [ClientConnectionStateMachine.Timer: LoopTimer] = [:]
    /// Bytes arrived since the keepalive timer was armed: the one store keepalive costs per receive
    /// (grpc-go's `activity` flag); the machine reads it when the timer fires.
    @exclusivity(unchecked) private var receivedSinceKeepaliveArmed = false
    /// When bytes last arrived; read from the clock per receive only while keepalive is on.
    @exclusivity(unchecked) private var lastReceived: ContinuousClock.Instant?
    private let tracksLastReceived: Bool
    /// A stream was opened since the idle timer was armed (the one store the idle timeout costs per RPC).
    @exclusivity(unchecked) private var streamOpenedSinceIdleArmed = false
    /// Bytes arrived since the quiet timer was armed (one store per receive).
    @exclusivity(unchecked) private var receivedSinceQuietArmed = false
    /// A connect that timed out is still in flight: once it completes, connect to this address instead.
    @exclusivity(unchecked) private var abandonedConnectNext: Int?
    @exclusivity(unchecked) private var nextPingPayload: UInt64 = 0
    @exclusivity(unchecked) private var fd: Int32 = -1
    @exclusivity(unchecked) private var streams: [Int32: HTTP2ClientStream] = [:]
    /// Streams waiting for the connection to be ready.
    @exclusivity(unchecked) private var waiting: [HTTP2ClientStream] = []
    @exclusivity(unchecked) private var connectHandler: IOHandler!
    @exclusivity(unchecked) private var connectAddress: UnsafeMutableRawPointer?
    /// The request's `:scheme`.
    private let scheme: String
    /// The connection was reported to the observer as open (its close is reported once finalized).
    @exclusivity(unchecked) private var reportedOpen = false

    init(
        delegate: any HTTP2ClientConnectionDelegate,
        loop: EventLoop,
        addresses: [SocketAddress],
        authority: String,
        configuration: HTTP2ClientTransport.Configuration,
        management: ClientConnectionStateMachine.Configuration = .none,
        tls: TLSContext?
    ) {
        self.delegate = delegate
        self.machine = ClientConnectionStateMachine(addresses: addresses, configuration: management)
        self.tracksLastReceived = management.keepalive != nil
        self.authority = authority
        self.configuration = configuration
        self.tls = tls
        self.scheme = tls == nil ? "http" : "https"
        super.init(loop: loop)
        self.connectHandler = IOHandler { [unowned self] in self.connected($0) }
        io.onReceive = { [unowned self] bytes in self.received(bytes) }
        io.onFailure = { [unowned self] result, sending in
            let reason: String
            switch (result, self.io.peerEnd) {
            case (0, .closeNotify?): reason = "the server closed the connection (TLS close_notify)"
            case (0, .truncated?): reason = "the server's TLS connection was truncated (it ended without close_notify)"
            case (0, _): reason = "the server closed the connection"
            default: reason = "\(sending ? "send" : "recv") failed (\(-result))"
            }
            self.perform(self.machine.transportFailed(reason))
        }
        io.produceOutput = { [unowned self] output in self.drainOutput(into: &output) }
        io.afterOutput = { [unowned self] in self.outputFlushed() }
        io.onFinalized = { [unowned self] in
            if self.reportedOpen { self.configuration.connectionObserver?.connectionClosed() }
            self.reportedOpen = false
            self.delegate.connectionClosed(self)
        }
        io.onIdleBuffersReleased = { [unowned self] in self.delegate.connectionReleasedIdleBuffers(self) }
        io.onTLSFailure = { [unowned self] failure in
            self.configuration.logger.info(
                "TLS handshake failed",
                metadata: ["server.address": "\(self.authority)", "courier.reason": "\(failure.description)"]
            )
            self.perform(self.machine.tlsFailed(failure.description))
        }
    }

    deinit {
        connectAddress?.deallocate()
    }

    /// Whether new streams can still be opened on this connection.
    var isUsable: Bool { machine.isUsable && !io.closed }

    /// The address connected to (or being connected to).
    var address: SocketAddress { machine.address }

    /// Whether streams are open or waiting.
    var hasStreams: Bool { !streams.isEmpty || !waiting.isEmpty }

    // MARK: Performing the machine's actions

    private func perform(_ actions: [ClientConnectionStateMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: ClientConnectionStateMachine.Action) {
        switch action {
        case .connect(let index):
            connect(to: machine.addresses[index])
        case .abandonConnect(let next):
            // close(2) doesn't cancel a connect in flight: shut the socket down (the connect completes
            // soon, with an error) and connect to the next address once it has.
            abandonedConnectNext = next
            if fd >= 0 { loop.shutdownSocket(fd: fd) }
        case .startSession:
            configuration.logger.debug("Connected", metadata: ["server.address": "\(authority)"])
            reportedOpen = true
            configuration.connectionObserver?.connectionOpened()
            startSession()
        case .openWaitingStreams:
            delegate.connectionReady(self)
            let ready = waiting
            waiting = []
            for stream in ready { submit(stream) }
        case .connectFailed(let error):
            configuration.logger.debug(
                "Connecting failed",
                metadata: ["server.address": "\(authority)", "courier.reason": "\(error.message)"]
            )
            let failed = waiting
            waiting = []
            delegate.connectionFailed(self, waiting: failed, error: error)
            shutDown(error, orderly: false)
        case .goingAway(let lastStreamID):
            delegate.connectionGoingAway(self)
            let rerouted = waiting
            waiting = []
            for stream in rerouted { delegate.reroute(stream) }
            // Streams the server will never process: forget them here (a CANCEL tells nghttp2 and the
            // server) and send them again elsewhere, as if refused.
            for id in streams.keys.sorted() where id > lastStreamID {
                guard let stream = streams.removeValue(forKey: id) else { continue }
                configuration.connectionObserver?.streamClosed()
                resetStream(id, .cancel)
                if stream.streamClosed(.refusedStream) { delegate.reroute(stream) }
            }
            closeIfDrained()
        case .sendPing:
            nextPingPayload &+= 1
            submitPing(nextPingPayload)
            delegate.connectionSentKeepalivePing(self)
        case .lost(let error):
            configuration.logger.info(
                "Connection lost",
                metadata: ["server.address": "\(authority)", "courier.reason": "\(error.message)"]
            )
            delegate.connectionLost(self, error: error)
            shutDown(error, orderly: false)
        case .close(let error):
            configuration.logger.debug(
                "Connection closed",
                metadata: ["server.address": "\(authority)", "courier.reason": "\(error.message)"]
            )
            delegate.connectionLost(self, error: error)
            shutDown(error, orderly: true)
        case .armTimer(let timer, let deadline):
            timers[timer]?.cancel()
            switch timer {
            case .keepalive: receivedSinceKeepaliveArmed = false
            case .idle: streamOpenedSinceIdleArmed = false
            case .quiet: receivedSinceQuietArmed = false
            case .connect: break
            }
            // unowned(unsafe), not weak: a weak reference gives the connection a side table, which slows
            // every retain and release of it. Safe: the timer fires on the loop, and every timer is
            // cancelled when the connection shuts down, before it can be released.
            timers[timer] = loop.scheduleTimer(at: deadline) { [unowned(unsafe) self] in
                self.timers[timer] = nil
                self.perform(self.machine.timerFired(timer, now: .now, observed: self.observation))
            }
        case .cancelTimer(let timer):
            timers.removeValue(forKey: timer)?.cancel()
        case .notify(let event):
            configuration.logger.debug(
                "Connection event",
                metadata: ["server.address": "\(authority)", "courier.event": "\(event)"]
            )
            delegate.connection(self, observed: event)
        case .releaseIdleBuffers:
            io.releaseIdleBuffers()
        }
    }

    /// What the machine is told when a timer fires.
    private var observation: ClientConnectionStateMachine.Observation {
        .init(
            receivedSinceKeepaliveArmed: receivedSinceKeepaliveArmed,
            lastReceived: lastReceived,
            streamOpenedSinceIdleArmed: streamOpenedSinceIdleArmed,
            streams: streams.count + waiting.count,
            receivedSinceQuietArmed: receivedSinceQuietArmed
        )
    }

    /// Fails every stream on the connection with `error`, cancels the timers and closes the socket:
    /// `orderly`, with TLS close_notify (a clean close); otherwise at once (the peer is gone or broken).
    private func shutDown(_ error: RPCError, orderly: Bool) {
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
        let open = streams
        streams.removeAll()
        let pending = waiting
        waiting = []
        for stream in open.values {
            configuration.connectionObserver?.streamClosed()
            stream.connectionLost(error)
        }
        for stream in pending { stream.connectionLost(error) }
        if orderly { io.close() } else { io.abort() }
    }

    private func closeIfDrained() {
        guard streams.isEmpty, waiting.isEmpty else { return }
        perform(machine.streamsDrained())
    }

    // MARK: Connecting (loop)

    func start() {
        loop.preconditionInEventLoop()
        perform(machine.start(now: .now))
    }

    private func connect(to address: SocketAddress) {
        if fd >= 0 {
            // A previous address's socket: it failed to connect, nothing else is in flight on it.
            loop.closeSocket(fd: fd)
            fd = -1
            io.attach(fd: -1)
        }
        connectAddress?.deallocate()
        connectAddress = nil
        fd = socket(address.family, CCourierLinux_SOCK_STREAM_CLOEXEC, 0)
        guard fd >= 0 else {
            let error = IOError(errno: errno, call: "socket")
            perform(machine.connectCompleted(errno: error.errno, description: error.description, now: .now))
            return
        }
        io.attach(fd: fd)
        do {
            // The address must outlive the operation: copy it into memory this object owns.
            try address.withSockAddr { pointer, length in
                let copy = UnsafeMutableRawPointer.allocate(byteCount: Int(length), alignment: 8)
                copy.copyMemory(from: pointer, byteCount: Int(length))
                connectAddress = copy
                io.otherOperationsInFlight += 1
                loop.submitConnect(
                    fd: fd,
                    address: copy.assumingMemoryBound(to: sockaddr.self),
                    length: length,
                    handler: connectHandler
                )
            }
        } catch {
            perform(machine.connectCompleted(errno: EINVAL, description: "\(error)", now: .now))
        }
    }

    private func connected(_ result: Int32) {
        io.otherOperationsInFlight -= 1
        if io.closed {
            io.finalizeIfIdle()
            return
        }
        if let next = abandonedConnectNext {
            // The connect that timed out has completed (whatever it says): on to the next address.
            abandonedConnectNext = nil
            connect(to: machine.addresses[next])
            return
        }
        let error = result == 0 ? nil : IOError(errno: -result, call: "connect(\(machine.address))")
        perform(machine.connectCompleted(errno: -result, description: error?.description ?? "", now: .now))
    }

    private func startSession() {
        if machine.address.family != AF_UNIX { Sockets.setNoDelay(fd) }
        let settings = SessionSettings(
            enablePush: false,
            streamWindowBytes: configuration.streamWindowBytes,
            maxHeaderListBytes: configuration.maxHeaderListBytes,
            connectionWindowBytes: configuration.connectionWindowBytes
        )
        guard startSession(server: false, settings: settings) else {
            perform(machine.transportFailed("nghttp2_session_client_new2 failed"))
            return
        }
        if let tls {
            do {
                io.tls = try TLSSession(context: tls, serverName: ClientTarget.host(ofAuthority: authority))
            } catch {
                perform(machine.tlsFailed(error.description))
                return
            }
            io.armReceive()
            io.startTLS()
            return
        }
        io.armReceive()
        io.scheduleFlush()
    }

    // MARK: The socket's side (loop)

    private func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
        receivedSinceKeepaliveArmed = true
        receivedSinceQuietArmed = true
        if tracksLastReceived { lastReceived = .now }
        if machine.idleBuffersReleased { perform(machine.bytesReceivedAfterRelease(now: .now)) }
        guard feed(bytes) else {
            perform(machine.protocolViolation("the server violated HTTP/2"))
            return false
        }
        if sessionIsFinished {
            // nghttp2 gave up on the session (for instance: the server's first frame wasn't SETTINGS) and
            // wants neither to read nor to write: no answer will come on this connection.
            perform(machine.protocolViolation("the server's bytes are not HTTP/2 (the session ended)"))
            return false
        }
        return true
    }

    private func outputFlushed() {
        guard !io.closed, io.outputIdle, hasSession, sessionIsFinished else { return }
        perform(machine.protocolViolation("the HTTP/2 session ended"))
    }

    // MARK: Streams (loop)

    /// Opens `stream` here: now if the connection is ready, once it is otherwise; elsewhere if it can't.
    func open(_ stream: HTTP2ClientStream) {
        loop.preconditionInEventLoop()
        switch machine.streamRequested() {
        case .open: submit(stream)
        case .wait: waiting.append(stream)
        case .reroute: delegate.reroute(stream)
        case .fail(let error): stream.connectionLost(error)
        }
    }

    private func submit(_ stream: HTTP2ClientStream) {
        streamOpenedSinceIdleArmed = true
        // The PING goes out before the stream's HEADERS (gRFC A8).
        if machine.keepaliveIsDormant { perform(machine.streamOpened(now: .now)) }
        // Room for every field at once: the pseudo-headers, up to six more, and the metadata.
        let metadata = stream.requestMetadata
        var headers = HeaderList(capacity: 10 + metadata.count)
        headers.add(":method", "POST")
        headers.add(":scheme", scheme)
        headers.add(":path", stream.descriptor.path)
        headers.add(":authority", authority)
        if let timeout = stream.timeRemaining { headers.add("grpc-timeout", GRPCTimeout.encode(timeout)) }
        headers.add("content-type", "application/grpc")
        headers.add("te", "trailers")
        if let compression = stream.requestCompression { headers.add("grpc-encoding", compression.name) }
        headers.add("grpc-accept-encoding", GRPCHeaders.acceptEncoding)
        headers.add("user-agent", HTTP2ClientTransport.userAgent)
        headers.add(contentsOf: GRPCHeaders.fields(for: metadata))
        let id = submitRequest(headers)
        guard id > 0 else {
            stream.connectionLost(
                RPCError(code: .unavailable, message: "Could not open a stream (nghttp2 error \(id)).")
            )
            return
        }
        streams[id] = stream
        configuration.connectionObserver?.streamOpened()
        stream.attach(to: self, streamID: id)
    }

    // MARK: Session events

    override func headersBegin(streamID: Int32, category: HTTP2HeadersCategory) {
        streams[streamID]?.responseHeadersBegin()
    }

    override func header(streamID: Int32, name: HeaderBytes, value: HeaderBytes) -> Bool {
        // Over the limit, the stream has failed and is reset; the rest of the block is skipped.
        streams[streamID]?.receiveHeader(name: name, value: value) ?? true
    }

    override func headersComplete(streamID: Int32, category: HTTP2HeadersCategory, endStream: Bool) {
        streams[streamID]?.receiveHeadersComplete(endStream: endStream)
    }

    override func dataReceived(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else {
            consume(streamID: streamID, bytes: bytes.count)
            return
        }
        stream.receiveData(bytes)
    }

    override func dataEndedStream(streamID: Int32) {
        // DATA with END_STREAM and no trailers: the response ended without a status.
        streams[streamID]?.receiveEndWithoutTrailers()
    }

    override func settingsReceived() {
        perform(machine.receivedSettings(now: .now))
    }

    override func goAwayReceived(lastStreamID: Int32, code: HTTP2ErrorCode, debugData: String) {
        // No GOAWAY goes back: the server is closing this connection anyway.
        configuration.logger.log(
            level: code == .noError ? .debug : .info,
            "GOAWAY received",
            metadata: [
                "server.address": "\(authority)", "courier.http2.error_code": "\(code)",
                "courier.http2.debug_data": "\(debugData)",
            ]
        )
        perform(machine.receivedGoAway(lastStreamID: lastStreamID, code: code, debugData: debugData))
    }

    override func pingReceived(ack: Bool, payload: UInt64) {
        guard ack else { return }  // nghttp2 answers the server's PINGs itself
        perform(machine.receivedPingAck(now: .now))
    }

    override func streamClosed(streamID: Int32, code: HTTP2ErrorCode) {
        defer { closeIfDrained() }
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        configuration.connectionObserver?.streamClosed()
        if stream.streamClosed(code) { delegate.reroute(stream) }
    }

    override func pullData(
        streamID: Int32,
        into buffer: UnsafeMutablePointer<UInt8>,
        length: Int
    ) -> GRPCStreamStateMachine.DataPull? {
        streams[streamID]?.pullData(into: buffer, length: length)
    }

    // MARK: Closing

    /// Closes the connection; its streams fail with `UNAVAILABLE`.
    func close() {
        perform(machine.close())
    }

    /// Takes no new streams and closes once the open ones have ended (at once if not ready yet).
    func drain() {
        perform(machine.drain())
    }
}

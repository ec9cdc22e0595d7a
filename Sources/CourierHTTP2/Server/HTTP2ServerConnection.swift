internal import Courier
internal import Logging

/// One accepted HTTP/2 connection on the server: the socket (``ConnectionIO``), the nghttp2 session
/// (``HTTP2Connection``), the stream table and the ``ServerConnectionStateMachine``, confined to one event
/// loop and driven synchronously from I/O completions.
///
/// An event goes: completion → ``ConnectionIO`` → ``HTTP2Connection/feed(_:)`` → an nghttp2 callback →
/// an override below → the connection's or a stream's state machine → actions, performed here.
final class HTTP2ServerConnection: HTTP2Connection, @unchecked Sendable {
    // @unchecked Sendable: every mutable property is touched on `loop` only.
    let fd: Int32
    let peer: String
    private let owner: HTTP2ServerTransport.Listener
    /// The loop's handler tasks, which run this connection's streams.
    private let handlers: HandlerPool
    let configuration: HTTP2ServerTransport.Configuration
    /// What the server asks of every stream.
    let options: ServerTransportOptions
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    @exclusivity(unchecked) private var machine: ServerConnectionStateMachine
    @exclusivity(unchecked) private var timers: [ServerConnectionStateMachine.Timer: LoopTimer] = [:]
    /// PINGs to submit once the output queued before them has been drained from the session.
    @exclusivity(unchecked) private var pingsAfterOutput: [UInt64] = []
    @exclusivity(unchecked) private var streams: [Int32: HTTP2ServerStream] = [:]
    /// The stream whose request head is arriving: its header callbacks skip the table lookup.
    @exclusivity(unchecked) private var headerStream: HTTP2ServerStream?
    /// `headerStream`'s ID (-1 without one), and its request head as it arrives: kept here, so that each
    /// header callback adds to it in place, without taking a reference to the stream.
    @exclusivity(unchecked) private var headerStreamID: Int32 = -1
    @exclusivity(unchecked) private var headerBlock: GRPCRequestHead
    /// Request paths, interned.
    let paths = PathInterner()
    /// The client's verified certificate (mutual TLS), set when the handshake completes, before any stream.
    @exclusivity(unchecked) private(set) var peerIdentity: PeerIdentity?

    var closed: Bool { io.closed }

    init(
        fd: Int32,
        loop: EventLoop,
        owner: HTTP2ServerTransport.Listener,
        handlers: HandlerPool,
        configuration: HTTP2ServerTransport.Configuration,
        options: ServerTransportOptions
    ) {
        self.fd = fd
        self.owner = owner
        self.handlers = handlers
        self.configuration = configuration
        self.options = options
        self.headerBlock = GRPCRequestHead(maxListBytes: configuration.maxHeaderListBytes)
        self.peer = Sockets.peerAddress(of: fd)?.description ?? "unknown"
        self.machine = ServerConnectionStateMachine(
            configuration: .init(
                handshakeTimeout: configuration.handshakeTimeout,
                maxStreamResetsPerSecond: configuration.maxStreamResetsPerSecond,
                keepaliveTime: configuration.keepaliveTime,
                keepaliveTimeout: configuration.keepaliveTimeout,
                minPingInterval: configuration.minPingInterval,
                permitPingsWithoutStreams: configuration.permitPingsWithoutStreams,
                maxPingStrikes: configuration.maxPingStrikes,
                maxConnectionIdle: configuration.maxConnectionIdle,
                maxConnectionAge: configuration.maxConnectionAge,
                maxConnectionAgeGrace: configuration.maxConnectionAgeGrace,
                goAwayPingTimeout: configuration.goAwayPingTimeout,
                releaseIdleBuffersAfter: configuration.releaseIdleBuffersAfter
            )
        )
        super.init(loop: loop)
        io.attach(fd: fd)
        io.onReceive = { [unowned self] bytes in self.received(bytes) }
        io.onFailure = { [unowned self] result, _ in
            self.perform(self.machine.transportFailed(reason: result == 0 ? "peer closed" : "I/O failed"))
        }
        io.produceOutput = { [unowned self] output in self.drainOutput(into: &output) }
        io.afterOutput = { [unowned self] in self.outputFlushed() }
        io.onFinalized = { [unowned self] in
            self.configuration.connectionObserver?.connectionClosed()
            self.owner.connectionClosed(self)
        }
        io.onTLSFailure = { [unowned self] failure in
            self.configuration.logger.info(
                "TLS handshake failed",
                metadata: ["network.peer.address": "\(self.peer)", "courier.reason": "\(failure.description)"]
            )
            self.perform(self.machine.transportFailed(reason: failure.description))
        }
        io.onHandshakeComplete = { [unowned self] in self.peerIdentity = self.io.tls?.peerIdentity }
        io.onIdleBuffersReleased = { [unowned self] in self.owner.connectionReleasedIdleBuffers() }
    }

    /// Sets up TLS and the session, sends SETTINGS and starts reading. On the loop.
    func start() {
        loop.preconditionInEventLoop()
        Sockets.setNoDelay(fd)
        configuration.connectionObserver?.connectionOpened()
        configuration.logger.debug("Connection accepted", metadata: ["network.peer.address": "\(peer)"])
        perform(machine.start(now: .now, ageJitter: Double.random(in: -1...1)))
        if let tls = owner.tls {
            do {
                io.tls = try TLSSession(context: tls, serverName: nil)
            } catch {
                perform(machine.transportFailed(reason: error.description))
                return
            }
        }
        let settings = SessionSettings(
            maxConcurrentStreams: configuration.maxConcurrentStreams,
            streamWindowBytes: configuration.streamWindowBytes,
            maxHeaderListBytes: configuration.maxHeaderListBytes,
            connectionWindowBytes: configuration.connectionWindowBytes
        )
        guard startSession(server: true, settings: settings) else {
            perform(machine.transportFailed(reason: "nghttp2_session_server_new2 failed"))
            return
        }
        io.armReceive()
        io.scheduleFlush()
    }

    // MARK: Performing the machine's actions

    private func perform(_ actions: [ServerConnectionStateMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: ServerConnectionStateMachine.Action) {
        switch action {
        case .none:
            break
        case .armTimer(let timer, let deadline):
            timers[timer]?.cancel()
            // unowned(unsafe), not weak: a weak reference gives the connection a side table, which sends every
            // retain and release of it down Swift's slow path (measured: ≈9 % of a unary benchmark). Safe: the
            // timer fires on the loop and is cancelled when the connection closes.
            timers[timer] = loop.scheduleTimer(at: deadline) { [unowned(unsafe) self] in
                self.timers[timer] = nil
                let actions = self.machine.timerFired(timer, now: .now)
                if actions.contains(where: \.endsConnection) {  // keepalive, idle, age, handshake timeouts
                    self.configuration.logger.debug(
                        "Connection timer fired",
                        metadata: ["network.peer.address": "\(self.peer)", "courier.timer": "\(timer)"]
                    )
                }
                self.perform(actions)
            }
        case .cancelTimer(let timer):
            timers.removeValue(forKey: timer)?.cancel()
        case .goAway(let lastStreamID, let thenClose):
            if lastStreamID == ServerConnectionStateMachine.maxStreamID {
                configuration.logger.debug(
                    "Sending GOAWAY (drain begins)",
                    metadata: ["network.peer.address": "\(peer)"]
                )
                submitShutdownNotice()  // the first phase: streams still arrive and are served
            } else {
                configuration.logger.debug(
                    "Sending GOAWAY (final)",
                    metadata: ["network.peer.address": "\(peer)", "courier.http2.last_stream_id": "\(lastStreamID)"]
                )
                submitGoAway(lastStreamID: lastStreamID, .noError)
            }
            // `thenClose` is carried out by the machine itself: it is `.closing`, and closes once flushed.
            if thenClose { io.scheduleFlush() }
        case .ping(let payload):
            // After what is queued has gone out: nghttp2 sends PINGs ahead of other frames, and the first
            // GOAWAY's PING must follow the GOAWAY, so that its ACK proves the client has seen it.
            pingsAfterOutput.append(payload)
            io.scheduleFlush()
        case .terminate(let lastStreamID, let code, let debugData):
            configuration.logger.info(
                "Sending GOAWAY and closing the connection",
                metadata: [
                    "network.peer.address": "\(peer)", "courier.http2.error_code": "\(code)",
                    "courier.http2.debug_data": "\(debugData)",
                ]
            )
            submitGoAway(lastStreamID: lastStreamID, code, debugData: debugData)
            cancelStreams()
            io.scheduleFlush()
        case .closeWhenFlushed:
            io.scheduleFlush()
        case .releaseIdleBuffers:
            io.releaseIdleBuffers()
        case .close(let reason), .closeAfterDrainingInput(let reason), .abort(let reason):
            configuration.logger.debug(
                "Connection closed",
                metadata: ["network.peer.address": "\(peer)", "courier.reason": "\(reason)"]
            )
            for timer in timers.values { timer.cancel() }
            timers.removeAll()
            cancelStreams()
            switch action {
            case .abort: io.abort()
            case .closeAfterDrainingInput: io.closeAfterDrainingInput()
            default: io.close()
            }
        }
    }

    private func cancelStreams() {
        let open = streams
        streams.removeAll()
        headerStream = nil
        headerStreamID = -1
        for stream in open.values {
            configuration.connectionObserver?.streamClosed()
            stream.connectionClosed()
        }
    }

    // MARK: The socket's side

    private func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard machine.isServing else { return false }
        switch machine.bytesReceived(now: .now) {
        case .none: break
        case let action: perform(action)  // the quiet timer, armed again after a release
        }
        guard feed(bytes) else {
            // A protocol error: nghttp2 has queued GOAWAY; send it, then close.
            perform(machine.receivedProtocolViolation())
            return false
        }
        return machine.isServing
    }

    private func outputFlushed() {
        if !pingsAfterOutput.isEmpty, !io.closed {
            for payload in pingsAfterOutput { submitPing(payload) }
            pingsAfterOutput.removeAll()
        }
        guard !io.closed, io.outputIdle else { return }
        perform(machine.outputFlushed(sessionFinished: sessionIsFinished))
    }

    // MARK: Lifecycle (from the listener)

    /// Starts a graceful close: the two-phase GOAWAY now; the connection closes when its streams have
    /// finished.
    func beginGracefulShutdown() {
        guard hasSession, !io.closed else { return }
        perform(machine.beginGracefulShutdown(now: .now))
    }

    /// Closes the socket now; every open stream is cancelled.
    func close(reason: String) {
        perform(machine.transportFailed(reason: reason))
    }

    // MARK: Session events

    override func frameBegins(type: HTTP2FrameType, streamID: Int32) {
        machine.frameReceived()
        guard type == .headers else { return }
        perform(machine.headersBegin(streamID: streamID, streamIsOpen: streamExists(streamID)))
    }

    override func headersBegin(streamID: Int32, category: HTTP2HeadersCategory) {
        guard category == .request else { return }
        guard machine.streamOpened() else {  // e.g. after a Rapid Reset GOAWAY: serve nothing more
            headerStream = nil
            headerStreamID = -1
            return
        }
        let stream = HTTP2ServerStream(id: streamID, connection: self)
        configuration.connectionObserver?.streamOpened()
        streams[streamID] = stream
        headerStream = stream
        headerStreamID = streamID
        headerBlock = GRPCRequestHead(maxListBytes: configuration.maxHeaderListBytes)
    }

    override func header(streamID: Int32, name: HeaderBytes, value: HeaderBytes) -> Bool {
        if streamID == headerStreamID { return headerBlock.add(name: name, value: value, paths: paths) }
        return streams[streamID]?.receiveHeader(name: name, value: value) ?? true
    }

    override func headersComplete(streamID: Int32, category: HTTP2HeadersCategory, endStream: Bool) {
        if category == .request {
            guard streamID == headerStreamID, let stream = headerStream else { return }
            headerStream = nil
            headerStreamID = -1
            // Moved to the stream, not copied.
            var head = GRPCRequestHead(maxListBytes: configuration.maxHeaderListBytes)
            swap(&head, &headerBlock)
            guard machine.isServing else { return }
            if stream.receiveHeadComplete(consume head, endStream: endStream) { handlers.serve(stream) }
        } else if endStream {
            streams[streamID]?.receiveEndOfStream()  // trailers from the client end its request
        }
    }

    override func dataReceived(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else {
            consumeConnection(bytes: bytes.count)  // nothing reads it: give the window back at once
            return
        }
        stream.receiveData(bytes)
    }

    override func dataEndedStream(streamID: Int32) {
        streams[streamID]?.receiveEndOfStream()
    }

    override func settingsReceived() {
        perform(machine.receivedSettings())
    }

    override func resetReceived(streamID: Int32, code: HTTP2ErrorCode) {
        perform(machine.receivedReset(now: .now))
    }

    override func goAwayReceived(lastStreamID: Int32, code: HTTP2ErrorCode, debugData: String) {
        configuration.logger.debug(
            "GOAWAY received",
            metadata: [
                "network.peer.address": "\(peer)", "courier.http2.error_code": "\(code)",
                "courier.http2.debug_data": "\(debugData)",
            ]
        )
    }

    override func pingReceived(ack: Bool, payload: UInt64) {
        if ack {
            perform(machine.receivedPingAck(payload: payload))
        } else {
            perform(machine.receivedPing(now: .now))
        }
    }

    override func headersOrDataSent(streamID: Int32) {
        machine.headersOrDataSent()
    }

    override func endStreamHeadersSent(streamID: Int32) {
        guard let stream = streams[streamID], stream.sentEndOfStream() else { return }
        // The response ended while the client was still sending: PROTOCOL-HTTP2 asks for RST_STREAM(NO_ERROR).
        resetStream(streamID, .noError)
    }

    override func streamClosed(streamID: Int32, code: HTTP2ErrorCode) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        configuration.connectionObserver?.streamClosed()
        stream.streamClosed(code)
        perform(machine.streamClosed(now: .now))
    }

    override func pullData(
        streamID: Int32,
        into buffer: UnsafeMutablePointer<UInt8>,
        length: Int
    ) -> GRPCStreamStateMachine.DataPull? {
        streams[streamID]?.pullData(into: buffer, length: length)
    }
}

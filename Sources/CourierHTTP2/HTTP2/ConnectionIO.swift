#if canImport(Glibc)
internal import Glibc
#endif

/// The socket half of an HTTP/2 connection, on its loop: one recv in flight into a connection-owned
/// buffer; everything the session produced in a loop turn gathered and sent with one send; and a close
/// that waits for the operations in flight (`close(2)` does not cancel them) before releasing the socket.
///
/// The owner supplies the session's side through closures, which run on the loop. Every socket call goes
/// through the loop's backend, so a test's fake backend can play the kernel.
///
/// ## Closing and TLS close_notify
/// ``close()`` is the orderly close, for both sides: on a TLS connection whose handshake completed and
/// that has reported no failure, what was already encrypted and close_notify go out before the socket is
/// shut down (waiting for a send in flight at most ``closeNotifyLinger``). ``abort()`` shuts the socket
/// down at once, for a peer that is gone or broken.
///
/// How the peer ended is ``peerEnd``. HTTP/2 delimits everything it carries (END_STREAM, trailers,
/// GOAWAY), so a connection cut short can end streams only by failing them, never by completing them: an
/// RPC completes on its own END_STREAM, and a stream still open when the peer's bytes end fails
/// (`UNAVAILABLE` on a client) whether TLS ended with close_notify or not. A TLS EOF without close_notify is
/// reported as ``PeerEnd/truncated`` (in the error RPCs get), so that a middlebox cutting connections is
/// told apart from a peer closing them.
///
/// ## Quiet connections
/// The receive buffer is page-aligned so that ``releaseIdleBuffers()`` can give its pages back to the
/// kernel while the connection is quiet: an idle connection then holds no receive pages at all (a page
/// per connection, the one the last bytes were written to, ≈4 KiB of an idle connection's ≈19 KiB).
final class ConnectionIO: @unchecked Sendable {
    // @unchecked Sendable: touched on `loop` only; Sendable so that it can queue work on its own loop.
    let loop: EventLoop
    // `@exclusivity(unchecked)`: loop-confined state, whose dynamic exclusivity checks cost 3-5 % of the
    // CPU (DesignNotes/Performance.md, "Exclusivity checks on loop-confined state").
    @exclusivity(unchecked) private(set) var fd: Int32 = -1
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private var receiveHandler: IOHandler!
    @exclusivity(unchecked) private var sendHandler: IOHandler!
    @exclusivity(unchecked) private(set) var receiving = false
    /// The receive in flight was cancelled by ``releaseIdleBuffers()``, to drop its buffer's pages once
    /// the kernel has let go of it.
    @exclusivity(unchecked) private var releasingReceiveBuffer = false
    @exclusivity(unchecked) private(set) var sending = false
    @exclusivity(unchecked) private(set) var closed = false
    @exclusivity(unchecked) private var finalized = false
    /// A failure was reported (``onFailure`` or ``onTLSFailure``): later ones are not.
    @exclusivity(unchecked) private var failed = false
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) private var pendingOutput: [UInt8] = []
    @exclusivity(unchecked) private var inFlight: [UInt8] = []
    @exclusivity(unchecked) private var inFlightOffset = 0
    /// Operations other than recv/send in flight (a connect), which also delay the final close.
    @exclusivity(unchecked) var otherOperationsInFlight = 0
    /// TLS between the socket and the session, if the connection is secure.
    @exclusivity(unchecked) var tls: TLSSession?
    /// Plaintext the session produced, waiting for TLS (for the handshake to complete, or to be encrypted).
    @exclusivity(unchecked) private var plaintextOutput: [UInt8] = []
    /// An orderly TLS close is sending its last bytes (close_notify); the socket is shut down after.
    @exclusivity(unchecked) private var lingering = false
    @exclusivity(unchecked) private var lingerTimer: LoopTimer?

    /// How long an orderly close waits for a send in flight before close_notify is given up. 1 s
    /// (tests shorten it).
    @exclusivity(unchecked) var closeNotifyLinger: Duration = .seconds(1)
    /// How long ``closeAfterDrainingInput()`` reads and discards before it closes anyway. 1 s, as grpc-go's
    /// HTTP/2 server waits after a GOAWAY before closing.
    @exclusivity(unchecked) var inputDrainLinger: Duration = .seconds(1)
    /// ``closeAfterDrainingInput()`` is reading and discarding until the peer's end or the linger.
    @exclusivity(unchecked) private var discardingInput = false
    @exclusivity(unchecked) private var inputDrainTimer: LoopTimer?
    /// The socket's sending side is shut down (the drain told the peer nothing more comes): nothing more
    /// is sent, close_notify included (it went before).
    @exclusivity(unchecked) private var outputShut = false

    /// How the peer ended the connection.
    enum PeerEnd: Equatable {
        /// End of stream on a cleartext connection.
        case eof
        /// TLS ended with the peer's close_notify.
        case closeNotify
        /// End of stream on a TLS connection without close_notify: the connection was cut short.
        case truncated
    }

    /// How the peer ended the connection, once ``onFailure`` has reported `0`.
    @exclusivity(unchecked) private(set) var peerEnd: PeerEnd?

    /// Received bytes. Return false to stop reading (the owner is closing).
    var onReceive: (UnsafeRawBufferPointer) -> Bool = { _ in true }
    /// The peer closed (`0`) or recv/send failed (a negative errno). Called at most once, and not after
    /// ``onTLSFailure``.
    var onFailure: (_ result: Int32, _ whileSending: Bool) -> Void = { _, _ in }
    /// TLS failed (handshake, verification, a bad record); the owner should close. Called at most once, and
    /// not after ``onFailure``.
    var onTLSFailure: (TLSSession.Failure) -> Void = { _ in }
    /// Appends what the session wants to send.
    var produceOutput: (inout [UInt8]) -> Void = { _ in }
    /// The TLS handshake completed.
    var onHandshakeComplete: () -> Void = {}
    /// Runs after each flush and send completion, when the owner may decide to close.
    var afterOutput: () -> Void = {}
    /// The receive buffer's pages went back to the kernel (``releaseIdleBuffers()``).
    var onIdleBuffersReleased: () -> Void = {}
    /// The socket is closed and no operation is in flight: the owner may be released.
    var onFinalized: () -> Void = {}

    init(loop: EventLoop) {
        self.loop = loop
        self.receiveBuffer = .allocate(byteCount: Self.receiveBufferBytes, alignment: Self.pageSize)
        self.receiveHandler = IOHandler { [unowned self] in self.received($0) }
        self.sendHandler = IOHandler { [unowned self] in self.sent($0) }
    }

    deinit {
        receiveBuffer.deallocate()
    }

    /// The receive buffer's size: a multiple of every page size Linux uses.
    static let receiveBufferBytes = 64 * 1024
    private static let pageSize = max(16, Int(sysconf(Int32(_SC_PAGESIZE))))

    /// Adopts a connected (or connecting) socket.
    func attach(fd: Int32) {
        self.fd = fd
    }

    /// Whether nothing is waiting to be sent. A flush that is scheduled counts as waiting: the session may
    /// hold frames it hasn't handed over yet (a GOAWAY submitted while a send was in flight), and a close
    /// decided before that flush would drop them.
    var outputIdle: Bool { !sending && !flushScheduled && pendingOutput.isEmpty && plaintextOutput.isEmpty }

    func armReceive() {
        guard !receiving, !closed, fd >= 0 else { return }
        receiving = true
        loop.submitRecv(fd: fd, buffer: receiveBuffer.baseAddress!, count: receiveBuffer.count, handler: receiveHandler)
    }

    private func received(_ result: Int32) {
        receiving = false
        if releasingReceiveBuffer {
            releasingReceiveBuffer = false
            if result == -ECANCELED {
                if closed {
                    finalizeIfIdle()
                    return
                }
                dropReceiveBufferPages()
                armReceive()
                return
            }
            // The bytes won the race with the cancellation: an ordinary receive.
        }
        if discardingInput {
            if result > 0 || Self.madeNoProgress(result) {
                armReceive()
            } else {
                endInputDrain()  // the peer's end, or a failure: nothing more will be read
            }
            return
        }
        if closed {
            finalizeIfIdle()
            return
        }
        guard result > 0 else {
            if Self.madeNoProgress(result) {
                armReceive()
            } else {
                if result == 0 {
                    if let tls { peerEnd = tls.receivedCloseNotify ? .closeNotify : .truncated } else { peerEnd = .eof }
                }
                reportFailure(result, whileSending: false)
            }
            return
        }
        let bytes = UnsafeRawBufferPointer(start: receiveBuffer.baseAddress, count: Int(result))
        if let tls {
            let wasComplete = tls.handshakeComplete
            let keepReading: Bool
            var stopped = false
            do {
                keepReading = try tls.receive(bytes) { plaintext in
                    if onReceive(plaintext) { return true }
                    stopped = true
                    return false
                }
            } catch {
                failTLS(error)
                return
            }
            if !wasComplete, tls.handshakeComplete { onHandshakeComplete() }
            if keepReading {
                armReceive()
            } else if !stopped, !closed {
                // The peer ended TLS (close_notify).
                peerEnd = .closeNotify
                reportFailure(0, whileSending: false)
                return
            }
        } else if onReceive(bytes) {
            armReceive()
        }
        scheduleFlush()
    }

    /// Gives back what a quiet connection holds without needing it (the owner calls this when nothing has
    /// arrived for a while): the capacity of the send buffers that are empty, and the receive buffer's
    /// pages. The receive in flight is cancelled first (the kernel may write into its buffer until it
    /// completes); on its `-ECANCELED` completion the pages go back to the kernel (`MADV_DONTNEED`) and the
    /// receive is armed again, so the next bytes fault in one zeroed page. Bytes that beat the cancellation
    /// are received as usual, and the pages stay.
    func releaseIdleBuffers() {
        guard !closed else { return }
        if !sending {
            inFlight = []
            inFlightOffset = 0
        }
        if pendingOutput.isEmpty { pendingOutput = [] }
        if plaintextOutput.isEmpty { plaintextOutput = [] }
        guard receiving, !releasingReceiveBuffer, !discardingInput else { return }
        releasingReceiveBuffer = true
        loop.cancelRecv(fd: fd, handler: receiveHandler)
    }

    /// Returns the receive buffer's pages to the kernel; only while no receive is in flight.
    private func dropReceiveBufferPages() {
        precondition(!receiving, "the kernel may be writing into the receive buffer")
        // Best effort: a failure (none is expected for private anonymous memory) only keeps the pages.
        if madvise(receiveBuffer.baseAddress!, receiveBuffer.count, MADV_DONTNEED) == 0 { onIdleBuffersReleased() }
    }

    /// Flushes once the loop's current round of jobs has run (see ``EventLoop/requestFlush(_:)``).
    func scheduleFlush() {
        guard !flushScheduled, !closed, !outputShut else { return }
        flushScheduled = true
        loop.requestFlush(self)
    }

    func flush() {
        flushScheduled = false
        guard !closed, !outputShut else { return }
        if let tls {
            produceOutput(&plaintextOutput)
            do {
                try tls.send(&plaintextOutput, into: &pendingOutput)
            } catch {
                failTLS(error)
                return
            }
        } else {
            produceOutput(&pendingOutput)
        }
        if !sending, !pendingOutput.isEmpty {
            swap(&inFlight, &pendingOutput)
            pendingOutput.removeAll(keepingCapacity: true)
            inFlightOffset = 0
            submitSend()
        }
        afterOutput()
    }

    private func submitSend() {
        sending = true
        inFlight.withUnsafeBytes { raw in
            loop.submitSend(
                fd: fd,
                buffer: raw.baseAddress! + inFlightOffset,
                count: raw.count - inFlightOffset,
                handler: sendHandler
            )
        }
    }

    private func sent(_ result: Int32) {
        sending = false
        if closed {
            if lingering { continueLinger(result) } else { finalizeIfIdle() }
            return
        }
        guard result > 0 else {
            if Self.madeNoProgress(result) {
                submitSend()
            } else {
                reportFailure(result, whileSending: true)
            }
            return
        }
        inFlightOffset += Int(result)
        if inFlightOffset < inFlight.count {
            submitSend()
            return
        }
        inFlight.removeAll(keepingCapacity: true)
        if !pendingOutput.isEmpty { scheduleFlush() }
        afterOutput()
    }

    /// A completion that moved nothing and failed nothing: `EAGAIN` (a non-blocking socket had no room or
    /// no data) or `EINTR`. The same operation is submitted again.
    @inline(__always)
    private static func madeNoProgress(_ result: Int32) -> Bool {
        result == -EAGAIN || result == -EWOULDBLOCK || result == -EINTR
    }

    private func reportFailure(_ result: Int32, whileSending: Bool) {
        guard !failed else { return }
        failed = true
        onFailure(result, whileSending)
    }

    /// Sends the alert OpenSSL queued (best effort, without waiting: it tells the peer why), then
    /// reports the failure.
    private func failTLS(_ failure: TLSSession.Failure) {
        var alert: [UInt8] = []
        tls?.drainCiphertext(into: &alert)
        if !alert.isEmpty, !sending, fd >= 0 {
            // Best effort: the connection is failing, and an alert that doesn't fit now is not waited for.
            _ = alert.withUnsafeBytes { loop.sendWithoutWaiting(fd: fd, buffer: $0.baseAddress!, count: $0.count) }
        }
        guard !failed else { return }
        failed = true
        onTLSFailure(failure)
    }

    /// Starts a client's TLS handshake (the ClientHello goes out with the next flush).
    func startTLS() {
        guard let tls else { return }
        do {
            try tls.startHandshake()
        } catch {
            failTLS(error)
            return
        }
        scheduleFlush()
    }

    /// Closes in the orderly way. On a TLS connection whose handshake completed and that has reported no
    /// failure, the records already encrypted and then close_notify are sent first, in one send that
    /// doesn't wait (after a send in flight completes, waiting for it at most ``closeNotifyLinger``); then
    /// the socket is shut down (waking operations in flight), and it is closed once they have completed.
    /// Frames the session has queued but not yet flushed are not sent: flush first to send them (a
    /// GOAWAY, say). If the socket can't take the last bytes at once, close_notify is given up.
    func close() {
        if discardingInput { stopInputDrain() }
        guard !closed else { return }
        closed = true
        guard fd >= 0, !failed, !outputShut, let tls, tls.handshakeComplete else {
            shutDownAndFinalize()
            return
        }
        tls.shutdown(into: &pendingOutput)
        guard sending else {
            sendLastBytes()
            shutDownAndFinalize()
            return
        }
        lingering = true
        // unowned(unsafe): the connection is finalized (and may be released) only after the linger ends,
        // which cancels this timer.
        lingerTimer = loop.scheduleTimer(at: .now.advanced(by: closeNotifyLinger)) { [unowned(unsafe) self] in
            self.endLinger()
        }
    }

    /// Closes once the peer has stopped sending, reading and discarding meanwhile (at most
    /// ``inputDrainLinger``), then as ``close()`` does: for a connection whose last GOAWAY is already
    /// out. Closing a socket with unread bytes makes the kernel send a reset, which discards on the peer's
    /// side what it hasn't read yet, such as that GOAWAY.
    ///
    /// When nothing is being sent, the sending side is shut down first (on TLS after close_notify): the
    /// peer sees the end of the stream, and a peer that closes in turn ends the drain at once instead of
    /// both sides waiting for the other until the linger.
    func closeAfterDrainingInput() {
        guard !closed, !discardingInput, fd >= 0, !failed else {
            close()
            return
        }
        discardingInput = true
        if !sending {
            if let tls, tls.handshakeComplete {
                tls.shutdown(into: &pendingOutput)
                sendLastBytes()
            }
            outputShut = true
            loop.shutdownSocketOutput(fd: fd)
        }
        // unowned(unsafe): the connection is finalized only after closing, which cancels this timer.
        inputDrainTimer = loop.scheduleTimer(at: .now.advanced(by: inputDrainLinger)) { [unowned(unsafe) self] in
            self.endInputDrain()
        }
        armReceive()
    }

    private func endInputDrain() {
        guard discardingInput else { return }
        stopInputDrain()
        close()
    }

    private func stopInputDrain() {
        discardingInput = false
        inputDrainTimer?.cancel()
        inputDrainTimer = nil
    }

    /// Closes at once, without close_notify: the peer is gone or broken, or the connection failed.
    func abort() {
        if discardingInput { stopInputDrain() }
        guard !closed else { return }
        closed = true
        shutDownAndFinalize()
    }

    private func shutDownAndFinalize() {
        if fd >= 0 { loop.shutdownSocket(fd: fd) }
        finalizeIfIdle()
    }

    /// The orderly close's last bytes (close_notify last), in one send that doesn't wait.
    private func sendLastBytes() {
        guard !pendingOutput.isEmpty else { return }
        // Best effort: if the socket can't take them now, the peer sees the connection end without
        // close_notify, as after any failure.
        _ = pendingOutput.withUnsafeBytes { loop.sendWithoutWaiting(fd: fd, buffer: $0.baseAddress!, count: $0.count) }
        pendingOutput.removeAll()
    }

    /// Lingering: the send in flight completed.
    private func continueLinger(_ result: Int32) {
        if result > 0 {
            inFlightOffset += Int(result)
            if inFlightOffset < inFlight.count {
                submitSend()
                return
            }
        } else if Self.madeNoProgress(result) {
            submitSend()
            return
        } else {
            pendingOutput.removeAll()  // the send failed: nothing more will go out
        }
        endLinger()
    }

    private func endLinger() {
        guard lingering else { return }
        lingering = false
        lingerTimer?.cancel()
        lingerTimer = nil
        if !sending { sendLastBytes() }
        shutDownAndFinalize()
    }

    /// Called by the owner when an operation it counted in `otherOperationsInFlight` completes.
    func finalizeIfIdle() {
        guard closed, !lingering, !receiving, !sending, otherOperationsInFlight == 0, !finalized else { return }
        finalized = true
        if fd >= 0 { loop.closeSocket(fd: fd) }
        onFinalized()
    }
}

/// An I/O completion that calls a closure.
final class IOHandler: IOCompletionHandler {
    private let body: (Int32) -> Void
    init(_ body: @escaping (Int32) -> Void) { self.body = body }
    override func complete(result: Int32, flags: UInt32) { body(result) }
}

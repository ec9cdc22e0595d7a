#if canImport(Glibc)
internal import Glibc
#endif

/// The socket half of an HTTP/2 connection, on its loop: one recv in flight into a connection-owned
/// buffer; everything the session produced in a loop turn gathered and sent with one send; and a close
/// that waits for the operations in flight (`close(2)` does not cancel them) before releasing the socket.
///
/// The owner supplies the session's side through closures, which run on the loop. Every socket call goes
/// through the loop's backend, so a test's fake backend can play the kernel.
final class ConnectionIO: @unchecked Sendable {
    // @unchecked Sendable: touched on `loop` only; Sendable so that it can queue work on its own loop.
    let loop: EventLoop
    private(set) var fd: Int32 = -1
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private var receiveHandler: IOHandler!
    private var sendHandler: IOHandler!
    private(set) var receiving = false
    private(set) var sending = false
    private(set) var closed = false
    private var finalized = false
    /// A failure was reported (``onFailure`` or ``onTLSFailure``): later ones are not.
    private var failed = false
    private var flushScheduled = false
    private var pendingOutput: [UInt8] = []
    private var inFlight: [UInt8] = []
    private var inFlightOffset = 0
    /// Operations other than recv/send in flight (a connect), which also delay the final close.
    var otherOperationsInFlight = 0
    /// TLS between the socket and the session, if the connection is secure.
    var tls: TLSSession?
    /// Plaintext the session produced, waiting for TLS (for the handshake to complete, or to be encrypted).
    private var plaintextOutput: [UInt8] = []

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
    /// The socket is closed and no operation is in flight: the owner may be released.
    var onFinalized: () -> Void = {}

    init(loop: EventLoop) {
        self.loop = loop
        self.receiveBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        self.receiveHandler = IOHandler { [unowned self] in self.received($0) }
        self.sendHandler = IOHandler { [unowned self] in self.sent($0) }
    }

    deinit {
        receiveBuffer.deallocate()
    }

    /// Adopts a connected (or connecting) socket.
    func attach(fd: Int32) {
        self.fd = fd
    }

    /// Whether nothing is waiting to be sent.
    var outputIdle: Bool { !sending && pendingOutput.isEmpty && plaintextOutput.isEmpty }

    func armReceive() {
        guard !receiving, !closed, fd >= 0 else { return }
        receiving = true
        loop.submitRecv(fd: fd, buffer: receiveBuffer.baseAddress!, count: receiveBuffer.count, handler: receiveHandler)
    }

    private func received(_ result: Int32) {
        receiving = false
        if closed {
            finalizeIfIdle()
            return
        }
        guard result > 0 else {
            if Self.madeNoProgress(result) {
                armReceive()
            } else {
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
                reportFailure(0, whileSending: false)
                return
            }
        } else if onReceive(bytes) {
            armReceive()
        }
        scheduleFlush()
    }

    /// Flushes once the loop's current round of jobs has run (see ``EventLoop/requestFlush(_:)``).
    func scheduleFlush() {
        guard !flushScheduled, !closed else { return }
        flushScheduled = true
        loop.requestFlush(self)
    }

    func flush() {
        flushScheduled = false
        guard !closed else { return }
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
            loop.submitSend(fd: fd, buffer: raw.baseAddress! + inFlightOffset, count: raw.count - inFlightOffset, handler: sendHandler)
        }
    }

    private func sent(_ result: Int32) {
        sending = false
        if closed {
            finalizeIfIdle()
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

    /// Shuts the socket down (waking operations in flight); it is closed once they have completed.
    func close() {
        guard !closed else { return }
        closed = true
        if fd >= 0 { loop.shutdownSocket(fd: fd) }
        finalizeIfIdle()
    }

    /// Called by the owner when an operation it counted in `otherOperationsInFlight` completes.
    func finalizeIfIdle() {
        guard closed, !receiving, !sending, otherOperationsInFlight == 0, !finalized else { return }
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

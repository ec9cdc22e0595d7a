internal import COpenSSL
internal import Courier

#if canImport(Glibc)
internal import Glibc
#endif

/// One connection's TLS, over memory BIOs: ciphertext comes from and goes to the connection's socket
/// I/O, plaintext to and from nghttp2. Confined to the connection's loop.
final class TLSSession {
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let isServer: Bool
    private(set) var handshakeComplete = false
    /// The peer ended TLS with close_notify.
    private(set) var receivedCloseNotify = false
    /// close_notify has been produced (``shutdown(into:)``).
    private(set) var sentCloseNotify = false
    private let scratch: UnsafeMutableRawBufferPointer

    /// A TLS failure, described for a log line or an RPC error.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// - Parameters:
    ///   - context: The transport's context.
    ///   - serverName: Client side: the host name to send as SNI and to verify the certificate against
    ///     (an IP literal is verified against the certificate's IP addresses and not sent as SNI).
    init(context: TLSContext, serverName: String?) throws(Failure) {
        guard let ssl = SSL_new(context.context),
            let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem())
        else {
            throw Failure(description: "could not create a TLS session: \(Self.drainErrors())")
        }
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.isServer = context.configuration.isServer
        self.scratch = .allocate(byteCount: 16 * 1024, alignment: 16)
        // An empty read BIO means "wait for more" (-1, retry), not end of file.
        _ = COpenSSL_BIO_set_mem_eof_return(readBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)
        if isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName, !serverName.isEmpty {
                if SocketAddress.isIPLiteral(serverName) {
                    if context.configuration.verifiesServer {
                        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
                    }
                } else {
                    _ = COpenSSL_SSL_set_tlsext_host_name(ssl, serverName)
                    if context.configuration.verifiesServer { SSL_set1_host(ssl, serverName) }
                }
            }
        }
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs
        scratch.deallocate()
    }

    /// Client side: produces the ClientHello (collect it with ``drainCiphertext(into:)``).
    func startHandshake() throws(Failure) {
        try handshake()
    }

    private func handshake() throws(Failure) {
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            handshakeComplete = true
            guard negotiatedH2 else {
                throw Failure(description: "the peer did not agree on HTTP/2 (ALPN \"h2\")")
            }
            return
        }
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
        throw failure(code, during: "handshake")
    }

    /// Whether the handshake agreed on `h2` by ALPN.
    private var negotiatedH2: Bool {
        var selected: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &selected, &length)
        guard let selected else { return false }
        return UnsafeBufferPointer(start: selected, count: Int(length)).elementsEqual(ALPN.h2)
    }

    /// Takes ciphertext from the socket and passes the plaintext it yields to `deliver`.
    ///
    /// - Returns: false when `deliver` asked to stop, or the peer ended TLS (close_notify).
    func receive(
        _ ciphertext: UnsafeRawBufferPointer,
        deliver: (UnsafeRawBufferPointer) -> Bool
    ) throws(Failure) -> Bool {
        var offset = 0
        while offset < ciphertext.count {
            let written = BIO_write(readBIO, ciphertext.baseAddress! + offset, Int32(ciphertext.count - offset))
            guard written > 0 else { throw Failure(description: "could not buffer received TLS data") }
            offset += Int(written)
        }
        if !handshakeComplete {
            try handshake()
            if !handshakeComplete { return true }
        }
        while true {
            let count = SSL_read(ssl, scratch.baseAddress, Int32(scratch.count))
            if count > 0 {
                if !deliver(UnsafeRawBufferPointer(start: scratch.baseAddress, count: Int(count))) { return false }
                continue
            }
            let code = SSL_get_error(ssl, count)
            if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return true }
            if code == SSL_ERROR_ZERO_RETURN {
                receivedCloseNotify = true
                return false
            }
            throw failure(code, during: "read")
        }
    }

    /// Encrypts `plaintext` (once the handshake is complete; until then it waits) and appends every
    /// pending TLS record, handshake messages included, to `ciphertext`.
    func send(_ plaintext: inout [UInt8], into ciphertext: inout [UInt8]) throws(Failure) {
        if handshakeComplete, !plaintext.isEmpty {
            var result: Int32 = 0
            plaintext.withUnsafeBytes { result = SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard result > 0 else { throw failure(SSL_get_error(ssl, result), during: "write") }
            plaintext.removeAll(keepingCapacity: true)
        }
        drainCiphertext(into: &ciphertext)
    }

    /// Ends TLS in the orderly way: appends close_notify (after any record still waiting) to
    /// `ciphertext`. The peer's close_notify is not waited for (RFC 8446 §6.1 lets the closing side stop
    /// reading). Nothing happens before the handshake has completed, or twice.
    func shutdown(into ciphertext: inout [UInt8]) {
        guard handshakeComplete, !sentCloseNotify else { return }
        sentCloseNotify = true
        if SSL_shutdown(ssl) < 0 {
            // The alert could not be written (OpenSSL saw an earlier fatal error): nothing to send.
            ERR_clear_error()
        }
        drainCiphertext(into: &ciphertext)
    }

    /// Appends the TLS records waiting to be sent to `ciphertext`.
    func drainCiphertext(into ciphertext: inout [UInt8]) {
        while true {
            let pending = Int(BIO_ctrl_pending(writeBIO))
            guard pending > 0 else { return }
            let start = ciphertext.count
            ciphertext.append(contentsOf: repeatElement(0, count: pending))
            let read = ciphertext.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress! + start, Int32(pending)) }
            ciphertext.removeLast(pending - Int(max(0, read)))
            if read <= 0 { return }
        }
    }

    /// The verified certificate of the peer, if it presented one that was verified.
    var peerIdentity: PeerIdentity? {
        guard handshakeComplete, let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        guard SSL_get_verify_result(ssl) == X509_V_OK else { return nil }
        return PeerIdentity(certificate: certificate)
    }

    private func failure(_ code: Int32, during step: String) -> Failure {
        if !isServer {
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                ERR_clear_error()
                let reason = String(cString: X509_verify_cert_error_string(verify))
                return Failure(description: "the server's certificate did not verify: \(reason)")
            }
        }
        if code == SSL_ERROR_SYSCALL || code == SSL_ERROR_SSL {
            return Failure(description: "TLS \(step) failed: \(Self.drainErrors())")
        }
        return Failure(description: "TLS \(step) failed (SSL error \(code))")
    }

    /// OpenSSL's queued error reasons, joined; the queue is left empty.
    static func drainErrors() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return reasons.isEmpty ? "no details" : reasons.joined(separator: "; ")
    }
}

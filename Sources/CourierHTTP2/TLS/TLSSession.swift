internal import COpenSSL
internal import Courier
#if canImport(Glibc)
internal import Glibc
#endif

/// An OpenSSL `SSL_CTX` built from a ``TLSConfiguration``: shared by every connection of a transport
/// (OpenSSL makes a configured context safe to share between threads).
final class TLSContext: @unchecked Sendable {
    // @unchecked Sendable: the SSL_CTX is not modified after init; OpenSSL locks its shared state.
    let context: OpaquePointer
    let configuration: TLSConfiguration

    /// Builds the context, reading every file now so that mistakes surface at start-up.
    ///
    /// - Throws: ``RuntimeError`` ``RuntimeError/Code/invalidConfiguration`` naming the file and what is
    ///   wrong with it.
    init(_ configuration: TLSConfiguration) throws(RuntimeError) {
        self.configuration = configuration
        guard let context = SSL_CTX_new(configuration.isServer ? TLS_server_method() : TLS_client_method()) else {
            throw Self.error("could not create an SSL context")
        }
        self.context = context
        guard COpenSSL_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1 else {
            throw Self.error("could not require TLS 1.2 or later")
        }
        // No compression (CRIME), no renegotiation.
        _ = SSL_CTX_set_options(context, COpenSSL_SSL_OP_NO_COMPRESSION | COpenSSL_SSL_OP_NO_RENEGOTIATION)
        // Idle connections give their record buffers back (an idle connection should cost little).
        _ = COpenSSL_SSL_CTX_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS))

        if let chain = configuration.certificateChainFile {
            try Self.checkReadable(chain, what: "certificate chain")
            guard SSL_CTX_use_certificate_chain_file(context, chain) == 1 else {
                throw Self.error("could not load the certificate chain '\(chain)' (is it PEM?)")
            }
            guard let key = configuration.privateKeyFile else {
                throw RuntimeError(code: .invalidConfiguration, message: "TLS: a certificate chain needs a private key file.")
            }
            try Self.checkReadable(key, what: "private key")
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                let reasons = TLSSession.drainErrors()
                let what = reasons.contains("mismatch")
                    ? "the private key '\(key)' does not match the certificate in '\(chain)'"
                    : "could not load the private key '\(key)' (is it PEM?)"
                throw RuntimeError(code: .invalidConfiguration, message: "TLS: \(what): \(reasons).")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw Self.error("the private key '\(key)' does not match the certificate in '\(chain)'")
            }
        } else if configuration.isServer {
            throw RuntimeError(code: .invalidConfiguration, message: "TLS: a server needs a certificate chain and a private key.")
        } else if configuration.privateKeyFile != nil {
            throw RuntimeError(code: .invalidConfiguration, message: "TLS: a private key needs a certificate chain file.")
        }

        let verifies = configuration.isServer ? configuration.clientCertificates != .none : configuration.verifiesServer
        if verifies {
            switch configuration.trustRoots {
            case .system:
                guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                    throw Self.error("could not load the system's trust roots")
                }
            case .pemFile(let path):
                try Self.checkReadable(path, what: "CA bundle")
                guard SSL_CTX_load_verify_locations(context, path, nil) == 1 else {
                    throw Self.error("could not load the CA bundle '\(path)' (is it PEM?)")
                }
            }
        }
        if configuration.isServer {
            switch configuration.clientCertificates {
            case .none: SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            case .optional: SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            case .required: SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            }
            SSL_CTX_set_alpn_select_cb(context, selectH2, nil)
        } else {
            SSL_CTX_set_verify(context, verifies ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
            // Zero is success here.
            let offered = ALPN.clientOffer.withUnsafeBufferPointer {
                SSL_CTX_set_alpn_protos(context, $0.baseAddress, UInt32($0.count))
            }
            guard offered == 0 else { throw Self.error("could not offer ALPN h2") }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    private static func checkReadable(_ path: String, what: String) throws(RuntimeError) {
        guard access(path, R_OK) == 0 else {
            let reason = String(cString: strerror(errno))
            throw RuntimeError(code: .invalidConfiguration, message: "TLS: cannot read the \(what) '\(path)': \(reason).")
        }
    }

    /// An error with OpenSSL's reasons appended (and its error queue cleared).
    static func error(_ what: String) -> RuntimeError {
        RuntimeError(code: .invalidConfiguration, message: "TLS: \(what): \(TLSSession.drainErrors()).")
    }
}

/// The server's ALPN callback (`SSL_CTX_set_alpn_select_cb`): points OpenSSL at `h2` in the client's list, or
/// refuses the handshake with a fatal no_application_protocol alert. OpenSSL calls it on the connection's loop
/// thread during the handshake; a nonisolated free function, since a C function pointer can't be formed from a
/// method and a closure could pick up an actor's isolation.
private func selectH2(
    ssl: OpaquePointer?,
    out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    outLength: UnsafeMutablePointer<UInt8>?,
    offered: UnsafePointer<UInt8>?,
    offeredLength: UInt32,
    argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out, let outLength, let offered,
          let h2 = ALPN.h2Range(in: UnsafeBufferPointer(start: offered, count: Int(offeredLength)))
    else {
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    // A pointer into the client's list: OpenSSL copies the name when this returns.
    out.pointee = offered + h2.lowerBound
    outLength.pointee = UInt8(h2.count)
    return SSL_TLSEXT_ERR_OK
}

/// One connection's TLS, over memory BIOs: ciphertext comes from and goes to the connection's socket
/// I/O, plaintext to and from nghttp2. Confined to the connection's loop.
final class TLSSession {
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let isServer: Bool
    private(set) var handshakeComplete = false
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
              let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
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
    func receive(_ ciphertext: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Bool) throws(Failure) -> Bool {
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
            if code == SSL_ERROR_ZERO_RETURN { return false }
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

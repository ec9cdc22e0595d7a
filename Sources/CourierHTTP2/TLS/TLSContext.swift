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
                throw RuntimeError(
                    code: .invalidConfiguration,
                    message: "TLS: a certificate chain needs a private key file."
                )
            }
            try Self.checkReadable(key, what: "private key")
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                let reasons = TLSSession.drainErrors()
                let what =
                    reasons.contains("mismatch")
                    ? "the private key '\(key)' does not match the certificate in '\(chain)'"
                    : "could not load the private key '\(key)' (is it PEM?)"
                throw RuntimeError(code: .invalidConfiguration, message: "TLS: \(what): \(reasons).")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw Self.error("the private key '\(key)' does not match the certificate in '\(chain)'")
            }
        } else if configuration.isServer {
            throw RuntimeError(
                code: .invalidConfiguration,
                message: "TLS: a server needs a certificate chain and a private key."
            )
        } else if configuration.privateKeyFile != nil {
            throw RuntimeError(
                code: .invalidConfiguration,
                message: "TLS: a private key needs a certificate chain file."
            )
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
            throw RuntimeError(
                code: .invalidConfiguration,
                message: "TLS: cannot read the \(what) '\(path)': \(reason)."
            )
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

/// TLS for ``HTTP2ServerTransport`` and ``HTTP2ClientTransport``: certificates from PEM files, ALPN `h2`,
/// TLS 1.2 or later.
///
/// ```swift
/// // A server with a certificate:
/// var server = HTTP2ServerTransport.Configuration()
/// server.tls = .server(certificateChainFile: "cert.pem", privateKeyFile: "key.pem")
///
/// // A client that trusts the system's roots (honouring SSL_CERT_FILE and SSL_CERT_DIR):
/// var client = HTTP2ClientTransport.Configuration()
/// client.tls = .client()
/// ```
///
/// Files are read, and mistakes reported, when the transport starts: a client transport's initializer
/// throws, a server transport's `listen()` does.
public struct TLSConfiguration: Sendable, Hashable {
    /// The certificates that anchor verification of the peer's certificate.
    public enum TrustRoots: Sendable, Hashable {
        /// The system's trust store (OpenSSL's default paths; `SSL_CERT_FILE` and `SSL_CERT_DIR` override them).
        case system
        /// The CA certificates in a PEM file.
        case pemFile(String)
    }

    /// Whether a server asks for and verifies client certificates (mutual TLS).
    public enum ClientCertificates: Sendable, Hashable {
        /// Don't ask for a client certificate.
        case none
        /// Ask; verify a certificate if one is presented; accept clients without one.
        case optional
        /// Require a certificate that verifies against the trust roots; others fail the handshake.
        case required
    }

    /// The PEM file with this side's certificate, followed by any intermediates. Required for a server.
    public var certificateChainFile: String?
    /// The PEM file with this side's private key. Required with ``certificateChainFile``.
    public var privateKeyFile: String?
    /// What the peer's certificate is verified against.
    public var trustRoots: TrustRoots
    /// Client side: whether the server's certificate and host name are verified. Turning it off is for
    /// local testing only; see ``insecureClientSkippingVerification()``.
    public var verifiesServer: Bool
    /// Server side: whether clients must present a certificate.
    public var clientCertificates: ClientCertificates
    /// Whether this configuration is for a server.
    public let isServer: Bool

    private init(isServer: Bool) {
        self.isServer = isServer
        self.certificateChainFile = nil
        self.privateKeyFile = nil
        self.trustRoots = .system
        self.verifiesServer = true
        self.clientCertificates = .none
    }

    /// A server's TLS.
    ///
    /// - Parameters:
    ///   - certificateChainFile: The server's certificate chain, PEM.
    ///   - privateKeyFile: Its private key, PEM.
    ///   - clientCertificates: Whether to require client certificates (mutual TLS).
    ///   - trustRoots: What client certificates are verified against.
    public static func server(
        certificateChainFile: String,
        privateKeyFile: String,
        clientCertificates: ClientCertificates = .none,
        trustRoots: TrustRoots = .system
    ) -> TLSConfiguration {
        var configuration = TLSConfiguration(isServer: true)
        configuration.certificateChainFile = certificateChainFile
        configuration.privateKeyFile = privateKeyFile
        configuration.clientCertificates = clientCertificates
        configuration.trustRoots = trustRoots
        return configuration
    }

    /// A client's TLS: the server's certificate is verified against `trustRoots` and must name the host
    /// the client dials (or the transport's `authority` override), which is also sent as SNI.
    ///
    /// - Parameters:
    ///   - trustRoots: What the server's certificate is verified against.
    ///   - certificateChainFile: A client certificate to present (mutual TLS), PEM.
    ///   - privateKeyFile: Its private key, PEM.
    public static func client(
        trustRoots: TrustRoots = .system,
        certificateChainFile: String? = nil,
        privateKeyFile: String? = nil
    ) -> TLSConfiguration {
        var configuration = TLSConfiguration(isServer: false)
        configuration.trustRoots = trustRoots
        configuration.certificateChainFile = certificateChainFile
        configuration.privateKeyFile = privateKeyFile
        return configuration
    }

    /// A client's TLS that accepts any server certificate: encrypted, but not authenticated, so anyone on
    /// the path can impersonate the server. For local testing only.
    public static func insecureClientSkippingVerification() -> TLSConfiguration {
        var configuration = TLSConfiguration(isServer: false)
        configuration.verifiesServer = false
        return configuration
    }
}

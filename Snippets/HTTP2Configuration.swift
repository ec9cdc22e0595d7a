// CourierHTTP2: addresses, configuration and limits, TLS.
import Courier
import CourierHTTP2

// A server on every IPv4 interface, with its limits set explicitly (these are the defaults).
var configuration = HTTP2ServerTransport.Configuration()
configuration.maxConcurrentStreams = 1024
configuration.maxHeaderListBytes = 16 * 1024
configuration.maxConnections = 10_000
configuration.handshakeTimeout = .seconds(10)
configuration.maxStreamResetsPerSecond = 500
configuration.maxBufferedBytesPerStream = 64 * 1024
let server = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: 50051), configuration: configuration)

// Message size limits sit above the transport, on the server and in each call's options.
let limits = CourierServer.Configuration(maxRequestMessageBytes: 8 * 1024 * 1024)
let options = CallOptions(timeout: .seconds(5), maxResponseMessageBytes: 8 * 1024 * 1024)

// TLS on the server: a certificate chain and its key (PEM); optionally require client certificates.
var tlsServer = HTTP2ServerTransport.Configuration()
tlsServer.tls = .server(certificateChainFile: "server.pem", privateKeyFile: "server.key")
var mutualTLS = HTTP2ServerTransport.Configuration()
mutualTLS.tls = .server(
    certificateChainFile: "server.pem",
    privateKeyFile: "server.key",
    clientCertificates: .required,
    trustRoots: .pemFile("clients-ca.pem")
)

// TLS on the client: the system's roots by default, or a CA of your own; a client certificate for mutual TLS;
// an authority override to dial an IP address (or a proxy) and still verify the name.
var tlsClient = HTTP2ClientTransport.Configuration()
tlsClient.tls = .client()
var privateCA = HTTP2ClientTransport.Configuration()
privateCA.tls = .client(
    trustRoots: .pemFile("ca.pem"),
    certificateChainFile: "client.pem",
    privateKeyFile: "client.key"
)
privateCA.authority = "api.example.com"

// Targets: host:port, ipv4:, ipv6:[...]:port, unix:PATH.
@MainActor func makeClients() throws -> [HTTP2ClientTransport] {
    [
        try HTTP2ClientTransport(target: "api.example.com:443", configuration: tlsClient),
        try HTTP2ClientTransport(target: "203.0.113.7:443", configuration: privateCA),
        try HTTP2ClientTransport(target: "unix:/run/api.sock"),
    ]
}
_ = (server, limits, options, tlsServer, mutualTLS)

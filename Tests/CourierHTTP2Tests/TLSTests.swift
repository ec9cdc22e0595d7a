import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import Synchronization
import Testing

/// Runs a TLS server with `services` and a TLS client to it.
func withTLS<R: Sendable>(
    services: [any RegistrableRPCService] = [RawEchoService()],
    server: TLSConfiguration,
    client: TLSConfiguration,
    authority: String? = nil,
    host: String = "127.0.0.1",
    _ body: (CourierClient) async throws -> R
) async throws -> R {
    var configuration = HTTP2ServerTransport.Configuration()
    configuration.loops = 1
    configuration.tls = server
    let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
    return try await withCourierServer(transport: transport, services: services) { _ in
        let port = try #require(try await transport.listeningAddress().port)
        var clientConfiguration = HTTP2ClientTransport.Configuration()
        clientConfiguration.tls = client
        clientConfiguration.authority = authority
        let clientTransport = try HTTP2ClientTransport(target: "\(host):\(port)", configuration: clientConfiguration)
        return try await withCourierClient(transport: clientTransport) { client in try await body(client) }
    }
}

func echo(_ client: CourierClient, _ text: String = "hello") async throws -> String {
    let reply = try await client.unary(
        request: ClientRequest(message: Array(text.utf8)),
        descriptor: method("Get"),
        serializer: codec,
        deserializer: codec
    )
    return String(decoding: reply, as: UTF8.self)
}

/// Answers `Whoami` with the peer identity the server verified.
struct WhoamiService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(forMethod: method("Whoami"), deserializer: codec, serializer: codec) { _, context in
            ServerResponse(message: Array((context.peerIdentity?.description ?? "anonymous").utf8))
        }
    }
}

@Suite("TLS")
struct TLSTests {
    @Test("Unary and streaming calls over TLS, verified against a custom CA, with an authority override")
    func basics() async throws {
        let pki = try await TestPKI.directory()
        try await withTLS(
            server: .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key"),
            client: .client(trustRoots: .pemFile("\(pki)/ca.pem")),
            authority: "courier.test:443"
        ) { client in
            let reply = try await echo(client)
            #expect(reply == "hello")
            let total = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    for i in 0..<20 { try await writer.write([UInt8](repeating: UInt8(i), count: 100_000)) }
                },
                descriptor: method("Update"),
                serializer: codec,
                deserializer: codec
            ) { response in
                var total = 0
                for try await message in response.messages { total += message.count }
                return total
            }
            #expect(total == 2_000_000)
        }
    }

    @Test("An IP-literal target is verified against the certificate's IP addresses (and sends no SNI)")
    func ipLiteral() async throws {
        let pki = try await TestPKI.directory()
        try await withTLS(
            server: .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key"),
            client: .client(trustRoots: .pemFile("\(pki)/ca.pem"))
        ) { client in
            let reply = try await echo(client)
            #expect(reply == "hello")
        }
    }

    @Test("A certificate for another name fails with UNAVAILABLE, saying why")
    func wrongName() async throws {
        let pki = try await TestPKI.directory()
        try await withTLS(
            server: .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key"),
            client: .client(trustRoots: .pemFile("\(pki)/ca.pem")),
            authority: "not-the-server.example"
        ) { client in
            let error = await #expect(throws: RPCError.self) { try await echo(client) }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains("did not verify") == true, "\(String(describing: error))")
        }
    }

    @Test("A certificate from an untrusted CA fails; the insecure mode accepts it")
    func untrusted() async throws {
        let pki = try await TestPKI.directory()
        let server = TLSConfiguration.server(
            certificateChainFile: "\(pki)/other.pem",
            privateKeyFile: "\(pki)/other.key"
        )
        try await withTLS(server: server, client: .client(trustRoots: .pemFile("\(pki)/ca.pem"))) { client in
            let error = await #expect(throws: RPCError.self) { try await echo(client) }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains("did not verify") == true, "\(String(describing: error))")
        }
        try await withTLS(server: server, client: .insecureClientSkippingVerification()) { client in
            let reply = try await echo(client)
            #expect(reply == "hello")
        }
    }

    @Test("The system trust store honours SSL_CERT_FILE")
    func systemRootsHonourSSLCertFile() async throws {
        let pki = try await TestPKI.directory()
        setenv("SSL_CERT_FILE", "\(pki)/ca.pem", 1)
        defer { unsetenv("SSL_CERT_FILE") }
        try await withTLS(
            server: .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key"),
            client: .client(),
            authority: "localhost"
        ) { client in
            let reply = try await echo(client)
            #expect(reply == "hello")
        }
    }

    @Test("Mutual TLS: the server requires a client certificate and the handler sees its identity")
    func mutualTLS() async throws {
        let pki = try await TestPKI.directory()
        let server = TLSConfiguration.server(
            certificateChainFile: "\(pki)/server.pem",
            privateKeyFile: "\(pki)/server.key",
            clientCertificates: .required,
            trustRoots: .pemFile("\(pki)/ca.pem")
        )
        let withCertificate = TLSConfiguration.client(
            trustRoots: .pemFile("\(pki)/ca.pem"),
            certificateChainFile: "\(pki)/client.pem",
            privateKeyFile: "\(pki)/client.key"
        )
        try await withTLS(services: [WhoamiService()], server: server, client: withCertificate) { client in
            let identity = try await client.unary(
                request: ClientRequest(message: []),
                descriptor: method("Whoami"),
                serializer: codec,
                deserializer: codec
            )
            #expect(
                String(decoding: identity, as: UTF8.self)
                    == "O=Courier Tests,CN=courier-test-client, DNS:client.courier.test, URI:spiffe://courier.test/client"
            )
        }
        try await withTLS(
            services: [WhoamiService()],
            server: server,
            client: .client(trustRoots: .pemFile("\(pki)/ca.pem"))
        ) { client in
            let error = await #expect(throws: RPCError.self) {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Whoami"),
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.code == .unavailable)
        }
    }

    @Test("Mutual TLS: the identity has each DNS, URI and IP SAN in order, no other kinds, an escaped RFC 2253 subject")
    func mutualTLSIdentityNames() async throws {
        let pki = try await TestPKI.directory()
        let (certificate, key) = try await makeClientCertificate(
            in: pki,
            subject: "/CN=worker, blue+serialNumber=7/O=Café Tests",
            subjectAltName: "IP:10.1.2.3,URI:spiffe://courier.test/ns/default/sa/worker,email:ops@courier.test,"
                + "DNS:worker.courier.test,IP:2001:db8::42,DNS:*.worker.courier.test,URI:urn:example:worker"
        )
        let server = TLSConfiguration.server(
            certificateChainFile: "\(pki)/server.pem",
            privateKeyFile: "\(pki)/server.key",
            clientCertificates: .required,
            trustRoots: .pemFile("\(pki)/ca.pem")
        )
        let client = TLSConfiguration.client(
            trustRoots: .pemFile("\(pki)/ca.pem"),
            certificateChainFile: certificate,
            privateKeyFile: key
        )
        try await withTLS(services: [WhoamiService()], server: server, client: client) { client in
            let identity = try await client.unary(
                request: ClientRequest(message: []),
                descriptor: method("Whoami"),
                serializer: codec,
                deserializer: codec
            )
            // The subject as `openssl x509 -nameopt RFC2253` prints it: reversed, `\,` and `+` kept, UTF-8 as
            // `\XX` escapes; the email SAN is not an identity Courier reports.
            #expect(
                String(decoding: identity, as: UTF8.self)
                    == [
                        #"O=Caf\C3\A9 Tests,CN=worker\, blue+serialNumber=7"#,
                        "DNS:worker.courier.test", "DNS:*.worker.courier.test",
                        "URI:spiffe://courier.test/ns/default/sa/worker", "URI:urn:example:worker",
                        "IP:10.1.2.3", "IP:2001:db8::42",
                    ].joined(separator: ", ")
            )
        }
    }

    @Test("Without mutual TLS the handler sees no identity")
    func noIdentity() async throws {
        let pki = try await TestPKI.directory()
        try await withTLS(
            services: [WhoamiService()],
            server: .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key"),
            client: .client(trustRoots: .pemFile("\(pki)/ca.pem"))
        ) { client in
            let identity = try await client.unary(
                request: ClientRequest(message: []),
                descriptor: method("Whoami"),
                serializer: codec,
                deserializer: codec
            )
            #expect(String(decoding: identity, as: UTF8.self) == "anonymous")
        }
    }

    @Test("Bad files are clear errors at start-up: a missing file, a non-PEM file, a key that doesn't match")
    func badFiles() async throws {
        let pki = try await TestPKI.directory()
        let notPEM = "\(pki)/not.pem"
        try Data("this is not a certificate".utf8).write(to: URL(fileURLWithPath: notPEM))
        let cases: [(TLSConfiguration, String)] = [
            (
                .server(certificateChainFile: "\(pki)/missing.pem", privateKeyFile: "\(pki)/server.key"),
                "cannot read the certificate chain"
            ),
            (
                .server(certificateChainFile: notPEM, privateKeyFile: "\(pki)/server.key"),
                "could not load the certificate chain"
            ),
            (
                .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: notPEM),
                "could not load the private key"
            ),
            (.server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/client.key"), "does not match"),
        ]
        for (configuration, expected) in cases {
            var server = HTTP2ServerTransport.Configuration()
            server.tls = configuration
            let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: server)
            let error = await #expect(throws: RuntimeError.self) {
                try await transport.listen(options: .init()) { _ in }
            }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        }
        var client = HTTP2ClientTransport.Configuration()
        client.tls = .client(trustRoots: .pemFile("\(pki)/missing-ca.pem"))
        // The client reads its files when it starts (connect(), which CourierClient.run() calls), not when it
        // is created: init does no I/O.
        let clientTransport = try HTTP2ClientTransport(target: "127.0.0.1:1", configuration: client)
        let error = await #expect(throws: RuntimeError.self) { try await clientTransport.connect() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("cannot read the CA bundle") == true, "\(String(describing: error))")
    }

    @Test("A server that doesn't agree on h2 (ALPN) is a clear error")
    func noALPN() async throws {
        let pki = try await TestPKI.directory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", peersDirectory.appendingPathComponent("tls_http11_server.py").path,
            "\(pki)/server.pem", "\(pki)/server.key",
        ]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        defer {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
        let line = await firstLine(of: output.fileHandleForReading)
        let port = try #require(line.hasPrefix("PORT ") ? Int(line.dropFirst(5)) : nil, "peer said: \(line)")
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.tls = .client(trustRoots: .pemFile("\(pki)/ca.pem"))
        let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
        try await withCourierClient(transport: transport) { client in
            let error = await #expect(throws: RPCError.self) {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.code == .unavailable)
            #expect(
                error?.message.contains("HTTP/2") == true || error?.message.contains("ALPN") == true,
                "\(String(describing: error))"
            )
        }
    }

    @Test("The server selects h2 wherever the client lists it among other protocols")
    func serverSelectsH2AmongOthers() async throws {
        let pki = try await TestPKI.directory()
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configuration.tls = .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key")
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: transport, services: [RawEchoService()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            for offer in ["http/1.1,spdy/3.1,h2", "h2,http/1.1", "http/1.1,h2,h2c"] {
                // s_client handshakes, prints what was agreed, and leaves at the end of its (empty) input.
                let result = try await runProcess(
                    "/bin/bash",
                    [
                        "-c",
                        "openssl s_client -connect 127.0.0.1:\(port) -servername localhost -CAfile \(pki)/ca.pem "
                            + "-alpn \(offer) < /dev/null 2>&1",
                    ]
                )
                #expect(result.output.contains("ALPN protocol: h2\n"), "\(offer): \(result.output)")
                #expect(result.output.contains("Verify return code: 0 (ok)"), "\(offer): \(result.output)")
            }
        }
    }

    @Test("The server refuses clients that don't offer h2 by ALPN, and TLS versions below 1.2")
    func serverPolicy() async throws {
        let pki = try await TestPKI.directory()
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configuration.tls = .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key")
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: transport, services: [RawEchoService()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let probe = peersDirectory.appendingPathComponent("tls_probe_client.py").path
            let h2 = try await runProcess(
                "/usr/bin/env",
                ["python3", probe, "\(port)", "\(pki)/ca.pem", "--alpn", "h2"]
            )
            #expect(h2.output.hasPrefix("OK h2 TLSv1.3"), "\(h2.output)")
            let http11 = try await runProcess(
                "/usr/bin/env",
                ["python3", probe, "\(port)", "\(pki)/ca.pem", "--alpn", "http/1.1"]
            )
            #expect(http11.output.hasPrefix("FAILED"), "\(http11.output)")
            #expect(
                http11.output.lowercased().contains("no application protocol")
                    || http11.output.contains("NO_APPLICATION_PROTOCOL"),
                "\(http11.output)"
            )
            let old = try await runProcess(
                "/usr/bin/env",
                ["python3", probe, "\(port)", "\(pki)/ca.pem", "--alpn", "h2", "--max-version", "TLSv1_1"]
            )
            #expect(old.output.hasPrefix("FAILED"), "\(old.output)")
            // The server still serves TLS clients afterwards.
            var client = HTTP2ClientTransport.Configuration()
            client.tls = .client(trustRoots: .pemFile("\(pki)/ca.pem"))
            try await withCourierClient(
                transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: client)
            ) { client in
                let reply = try await echo(client)
                #expect(reply == "hello")
            }
        }
    }
}

/// Signs a client certificate with the test PKI's CA (`dev/make-test-certs.sh` makes the common ones; this is
/// for names a test needs of its own). Returns the paths of the certificate and its key.
func makeClientCertificate(in pki: String, subject: String, subjectAltName: String) async throws -> (String, String) {
    let base = "\(pki)/client-\(UUID().uuidString.prefix(8))"
    try Data("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=\(subjectAltName)\n".utf8)
        .write(to: URL(fileURLWithPath: "\(base).ext"))
    let steps: [[String]] = [
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "\(base).key"],
        ["req", "-new", "-utf8", "-key", "\(base).key", "-subj", subject, "-out", "\(base).csr"],
        [
            "x509", "-req", "-in", "\(base).csr", "-CA", "\(pki)/ca.pem", "-CAkey", "\(pki)/ca.key",
            "-set_serial", "\(UInt32.random(in: 1...UInt32.max))", "-days", "2", "-extfile", "\(base).ext",
            "-out", "\(base).pem",
        ],
    ]
    for step in steps {
        let result = try await runProcess("/usr/bin/env", ["openssl"] + step)
        try #require(result.status == 0, "openssl \(step.joined(separator: " ")): \(result.output)")
    }
    return ("\(base).pem", "\(base).key")
}

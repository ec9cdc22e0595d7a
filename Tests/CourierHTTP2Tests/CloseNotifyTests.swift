import Courier
import CourierTestSupport
import Foundation
import Testing

@testable import CourierHTTP2

/// The rule Courier implements (see ``ConnectionIO``): both sides send close_notify on every orderly close
/// (a clean shutdown, a drained or idle connection); a connection found dead or broken is closed at once.
/// From the peer, close_notify and a bare EOF both fail the streams still open (HTTP/2 ends streams
/// itself, so a truncation can only cut them short, never complete them); the bare EOF is reported as a
/// truncated connection.
@Suite("TLS close_notify, both sides")
struct CloseNotifyTests {
    /// A TLS client configuration that trusts the test CA, with `change` applied.
    func tlsClient(
        _ pki: String,
        _ change: (inout HTTP2ClientTransport.Configuration) -> Void = { _ in }
    ) -> HTTP2ClientTransport.Configuration {
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.tls = .client(trustRoots: .pemFile("\(pki)/ca.pem"))
        change(&configuration)
        return configuration
    }

    @Test("The client sends close_notify when its transport shuts down")
    func clientShutdown() async throws {
        let pki = try await TestPKI.directory()
        try await withPeer("well-behaved", ["--tls", "\(pki)/server.pem", "\(pki)/server.key"]) { peer, port in
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: tlsClient(pki))
            try await withCourierClient(transport: transport) { client in
                let connection = try await echoCall(client).connection
                #expect(connection == "1")
            }
            #expect(await peer.line(startingWith: "CLOSED 1 ") == "CLOSED 1 close_notify", "\(peer.output)")
        }
    }

    @Test("The client sends close_notify when it closes an idle connection")
    func clientIdle() async throws {
        let pki = try await TestPKI.directory()
        try await withPeer("well-behaved", ["--tls", "\(pki)/server.pem", "\(pki)/server.key"]) { peer, port in
            let transport = try HTTP2ClientTransport(
                target: "127.0.0.1:\(port)",
                configuration: tlsClient(pki) { $0.idleTimeout = .milliseconds(200) }
            )
            try await withCourierClient(transport: transport) { client in
                let connection = try await echoCall(client).connection
                #expect(connection == "1")
                #expect(await peer.line(startingWith: "CLOSED 1 ") == "CLOSED 1 close_notify", "\(peer.output)")
            }
        }
    }

    @Test("A connection keepalive found dead is closed at once, without close_notify")
    func clientDeadConnection() async throws {
        let pki = try await TestPKI.directory()
        try await withPeer("blackhole-first", ["--tls", "\(pki)/server.pem", "\(pki)/server.key"]) { peer, port in
            var configuration = keepalive(time: .milliseconds(200), timeout: .milliseconds(300))
            configuration.tls = .client(trustRoots: .pemFile("\(pki)/ca.pem"))
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                let error = await #expect(throws: RPCError.self) { _ = try await echoCall(client) }
                #expect(error?.code == .unavailable)
                #expect(
                    await peer.line(startingWith: "CLOSED 1 ") == "CLOSED 1 eof_without_close_notify",
                    "\(peer.output)"
                )
            }
        }
    }

    @Test(
        "The server ends TLS mid-stream: UNAVAILABLE either way; a bare EOF is reported as truncated",
        arguments: [
            ("tls-truncate", "truncated (it ended without close_notify)"),
            ("tls-close-notify", "closed the connection (TLS close_notify)"),
        ]
    )
    func serverEndsMidStream(mode: String, reported: String) async throws {
        let pki = try await TestPKI.directory()
        try await withPeer(mode, ["--tls", "\(pki)/server.pem", "\(pki)/server.key"]) { _, port in
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: tlsClient(pki))
            try await withCourierClient(transport: transport) { client in
                let error = await #expect(throws: RPCError.self) { _ = try await echoCall(client) }
                #expect(error?.code == .unavailable, "\(String(describing: error))")
                #expect(error?.message.contains(reported) == true, "\(String(describing: error))")
            }
        }
    }

    @Test("The server sends close_notify when it closes a connection in a graceful shutdown")
    func serverGracefulShutdown() async throws {
        let pki = try await TestPKI.directory()
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configuration.tls = .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key")
        // Python h2 stops answering once it has seen a GOAWAY, so the first GOAWAY's PING is never
        // acknowledged: the final GOAWAY follows this timeout.
        configuration.goAwayPingTimeout = .milliseconds(100)
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        var probe: PeerProcess?
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            let started = try PeerProcess("tls_h2_close_probe_client.py", ["\(port)", "\(pki)/ca.pem"])
            probe = started
            #expect(await started.line(startingWith: "READY") != nil, "\(started.output)")
        }
        let started = try #require(probe)
        #expect(await started.line(startingWith: "END") == "END close_notify", "\(started.output)")
        await started.stop()
    }
}

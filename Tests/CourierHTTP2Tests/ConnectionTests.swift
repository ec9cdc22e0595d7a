import Courier
import Foundation
import Testing

@testable import CourierHTTP2

@Suite("Client connections: addresses, reconnects, wait-for-ready")
struct ConnectionTests {
    @Test("A name that resolves to several addresses: each is tried until one connects")
    func everyAddress() async throws {
        // The server listens on IPv4 only; 'localhost' also resolves to ::1, where nobody listens.
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            let addresses = try DNSResolver.lookUp(host: "localhost", port: port).get()
            #expect(addresses.contains(.ipv4(host: "127.0.0.1", port: port)))
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "localhost:\(port)")) { client in
                let reply = try await client.unary(
                    request: ClientRequest(message: [1]),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == [1])
            }
        }
    }

    /// A socket path nobody listens on: unlike a just-freed TCP port, no parallel test can take it.
    func freshSocketPath() -> String {
        "/tmp/courier-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).sock"
    }

    @Test("A server that restarts at the same address is reached again by the same client")
    func reconnect() async throws {
        let path = freshSocketPath()
        var clientConfiguration = HTTP2ClientTransport.Configuration()
        clientConfiguration.connectionBackoff = ConnectionBackoff(
            initial: .milliseconds(20),
            maximum: .milliseconds(100)
        )
        let transport = try HTTP2ClientTransport(target: "unix:\(path)", configuration: clientConfiguration)
        try await withCourierClient(transport: transport) { client in
            for round in 0..<3 {
                var configuration = HTTP2ServerTransport.Configuration()
                configuration.loops = 1
                let server = HTTP2ServerTransport(address: .unix(path: path), configuration: configuration)
                try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
                    _ = try await server.listeningAddress()
                    // After a failed attempt the client backs off (gRPC's TRANSIENT_FAILURE): a
                    // wait-for-ready call rides that out; a fail-fast one could see UNAVAILABLE.
                    let reply = try await client.unary(
                        request: ClientRequest(message: [UInt8(round)]),
                        descriptor: method("Get"),
                        serializer: codec,
                        deserializer: codec,
                        options: CallOptions(timeout: .seconds(20), waitForReady: true)
                    )
                    #expect(reply == [UInt8(round)])
                }
                // The server is gone: the connection is lost, and calls fail fast.
                await #expect(throws: RPCError.self) {
                    _ = try await client.unary(
                        request: ClientRequest(message: []),
                        descriptor: method("Get"),
                        serializer: codec,
                        deserializer: codec
                    )
                }
            }
        }
    }

    @Test("A wait-for-ready call waits for a server that isn't there yet")
    func waitForReady() async throws {
        let path = freshSocketPath()
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.connectionBackoff = ConnectionBackoff(initial: .milliseconds(20), maximum: .milliseconds(100))
        let transport = try HTTP2ClientTransport(target: "unix:\(path)", configuration: configuration)
        try await withCourierClient(transport: transport) { client in
            let call = Task {
                try await client.unary(
                    request: ClientRequest(message: [7]),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .seconds(20), waitForReady: true)
                )
            }
            // The signal: the first connection attempt has been made (and refused).
            var turns = 0
            while await transport.connectionAttempts == 0, turns < 5_000_000 {
                await Task.yield()
                turns += 1
            }
            #expect(await transport.connectionAttempts >= 1)
            var serverConfiguration = HTTP2ServerTransport.Configuration()
            serverConfiguration.loops = 1
            let server = HTTP2ServerTransport(address: .unix(path: path), configuration: serverConfiguration)
            try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
                let reply = try await call.value
                #expect(reply == [7])
            }
        }
    }

    @Test(
        "A wait-for-ready call whose deadline passes while it waits: DEADLINE_EXCEEDED naming the last connection error"
    )
    func waitForReadyDeadline() async throws {
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.connectionBackoff = ConnectionBackoff(initial: .seconds(30), maximum: .seconds(30))
        let transport = try HTTP2ClientTransport(target: "unix:\(freshSocketPath())", configuration: configuration)
        try await withCourierClient(transport: transport) { client in
            // A fail-fast call first: once it has failed, an attempt has failed and the 30 s backoff runs, so
            // the next call surely waits with a last error to report (however slow the machine).
            let first = await #expect(throws: RPCError.self) {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(first?.code == .unavailable, "\(String(describing: first))")
            let error = await #expect(throws: RPCError.self) {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .milliseconds(300), waitForReady: true)
                )
            }
            #expect(error?.code == .deadlineExceeded, "\(String(describing: error))")
            #expect(error?.message.contains("waiting for a connection") == true, "\(String(describing: error))")
            #expect(error?.message.contains("Could not connect") == true, "\(String(describing: error))")
        }
    }

    @Test("Without wait-for-ready the same call fails fast with UNAVAILABLE")
    func failFast() async throws {
        _ = try await withCourierClient(transport: try HTTP2ClientTransport(target: "unix:\(freshSocketPath())")) {
            client in
            await #expect(throws: RPCError(code: .unavailable, message: "")) {
                do {
                    _ = try await client.unary(
                        request: ClientRequest(message: []),
                        descriptor: method("Get"),
                        serializer: codec,
                        deserializer: codec
                    )
                } catch let error as RPCError {
                    throw RPCError(code: error.code, message: "")
                }
            }
        }
    }

    @Test("Connection backoff grows by 1.6 with 20 % jitter, up to the maximum")
    func backoff() {
        var iterator = ConnectionBackoff().makeIterator()
        let delays = (0..<20).map { _ in iterator.next() }
        #expect(delays[0] >= .milliseconds(800) && delays[0] <= .milliseconds(1200))
        #expect(delays[1] >= .milliseconds(1280) && delays[1] <= .milliseconds(1920))
        #expect(delays.allSatisfy { $0 <= .seconds(144) })
        #expect(delays.last! >= .seconds(96))
    }
}

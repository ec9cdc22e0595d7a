import Courier
import CourierTestSupport
import Foundation
import Testing

@testable import CourierHTTP2

/// A client configuration with keepalive at `time` / `timeout`, below the 10 s minimum (the
/// package-internal test override), and every other setting at its default.
func keepalive(
    time: Duration,
    timeout: Duration,
    permitWithoutCalls: Bool = false
) -> HTTP2ClientTransport.Configuration {
    var configuration = HTTP2ClientTransport.Configuration()
    var keepalive = HTTP2ClientTransport.Configuration.Keepalive(
        time: time,
        timeout: timeout,
        permitWithoutCalls: permitWithoutCalls
    )
    keepalive.allowsTimeBelowMinimum = true
    configuration.keepalive = keepalive
    return configuration
}

/// A unary echo call (20 s deadline unless given); returns the reply and the peer's `x-connection` trailer.
func echoCall(
    _ client: CourierClient,
    timeout: Duration = .seconds(20),
    waitForReady: Bool = false
) async throws -> (reply: [UInt8], connection: String?) {
    try await client.unary(
        request: ClientRequest(message: Array("hello".utf8)),
        descriptor: method("Get"),
        serializer: codec,
        deserializer: codec,
        options: CallOptions(timeout: timeout, waitForReady: waitForReady)
    ) { response in
        (try response.message, response.trailingMetadata.firstString(forKey: "x-connection"))
    }
}

/// The intervals (ms) between the PINGs a peer saw on connection `connection` (`PING <c> <k> <ms>`, k ≥ 2).
func pingIntervals(_ peer: PeerProcess, connection: Int) -> [Int] {
    peer.lines(startingWith: "PING \(connection) ").compactMap { line in
        let fields = line.split(separator: " ")
        guard fields.count == 4, let k = Int(fields[2]), k >= 2 else { return nil }
        return Int(fields[3])
    }
}

@Suite("Client keepalive (gRFC A8) against a raw HTTP/2 peer")
struct KeepaliveTests {
    @Test("The keepalive time is at least 10 s, as in grpc-go; the timeout defaults to 20 s")
    func minimum() {
        var settings = HTTP2ClientTransport.Configuration.Keepalive(time: .seconds(1))
        #expect(settings.effectiveTime == .seconds(10))
        #expect(settings.effectiveTimeout == .seconds(20))
        settings.time = .seconds(45)
        settings.timeout = .zero
        #expect(settings.effectiveTime == .seconds(45))
        #expect(settings.effectiveTimeout == .seconds(20))
        settings.time = .milliseconds(50)
        settings.allowsTimeBelowMinimum = true
        #expect(settings.effectiveTime == .milliseconds(50))
        let defaults = HTTP2ClientTransport.Configuration()
        #expect(defaults.keepalive == nil)
        #expect(defaults.idleTimeout == .seconds(1800))
        #expect(defaults.connectTimeout == .seconds(20))
    }

    @Test(
        "A peer that goes silent (no answer, no PING ACK): the RPC fails with UNAVAILABLE long before its deadline; the next RPC gets a new connection"
    )
    func deadPeer() async throws {
        try await withPeer("blackhole-first") { peer, port in
            let transport = try HTTP2ClientTransport(
                // A timeout long enough for a loaded machine's peer to answer the second connection's PINGs.
                target: "127.0.0.1:\(port)",
                configuration: keepalive(time: .milliseconds(200), timeout: .seconds(1))
            )
            try await withCourierClient(transport: transport) { client in
                let error = await #expect(throws: RPCError.self) {
                    _ = try await echoCall(client, timeout: .seconds(30))
                }
                #expect(error?.code == .unavailable, "\(String(describing: error))")
                #expect(error?.message.contains("keepalive") == true, "\(String(describing: error))")
                #expect(await peer.line(startingWith: "PING 1 1 ") != nil, "\(peer.output)")
                let counters = await transport.counters
                #expect(counters.keepaliveTimeouts == 1)
                #expect(counters.keepalivePingsSent >= 1)
                // Replaced: a wait-for-ready RPC goes on, on a new connection.
                let (reply, connection) = try await echoCall(client, waitForReady: true)
                #expect(reply == Array("hello".utf8))
                #expect(connection == "2")
                #expect(await transport.connectionAttempts == 2)
            }
        }
    }

    @Test(
        "A late PING ACK: within the timeout the connection lives (pinged once per time); after it, the connection is dead",
        arguments: [(0.2, Duration.seconds(5), true), (3.0, Duration.milliseconds(300), false)]
    )
    func lateAck(delay: Double, timeout: Duration, survives: Bool) async throws {
        // The peer answers only once it has seen 3 PINGs: without keepalive the call would wait for its deadline.
        try await withPeer("ack-late", ["--delay", "\(delay)", "--pings", "3"]) { peer, port in
            let transport = try HTTP2ClientTransport(
                target: "127.0.0.1:\(port)",
                configuration: keepalive(time: .milliseconds(100), timeout: timeout)
            )
            try await withCourierClient(transport: transport) { client in
                if survives {
                    let (reply, connection) = try await echoCall(client, timeout: .seconds(30))
                    #expect(reply == Array("hello".utf8))
                    #expect(connection == "1")
                    #expect(await peer.line(startingWith: "PING 1 3 ") != nil, "\(peer.output)")
                    // The ACK (not the end of the timeout) starts the next keepalive time: PINGs a time plus
                    // the late ACK apart, far less than the 5 s timeout.
                    #expect(pingIntervals(peer, connection: 1).allSatisfy { $0 < 4500 }, "\(peer.output)")
                    #expect(await transport.counters.keepaliveTimeouts == 0)
                } else {
                    let error = await #expect(throws: RPCError.self) {
                        _ = try await echoCall(client, timeout: .seconds(30))
                    }
                    #expect(error?.code == .unavailable, "\(String(describing: error))")
                    #expect(error?.message.contains("keepalive") == true, "\(String(describing: error))")
                    #expect(await transport.counters.keepaliveTimeouts == 1)
                }
            }
        }
    }

    @Test("GOAWAY ENHANCE_YOUR_CALM too_many_pings: later connections double the keepalive time, on the wire too")
    func tooManyPings() async throws {
        try await withPeer("too-many-pings", ["--pings", "3"]) { peer, port in
            let transport = try HTTP2ClientTransport(
                target: "127.0.0.1:\(port)",
                configuration: keepalive(time: .milliseconds(100), timeout: .seconds(5), permitWithoutCalls: true)
            )
            try await withCourierClient(transport: transport) { client in
                #expect(try await echoCall(client).connection == "1")
                // Pinged while idle (permitted), the peer answers its 3rd PING with GOAWAY too_many_pings.
                let first = try await transport.waitForCounters { $0.tooManyPings >= 1 }
                #expect(first?.keepaliveTime == .milliseconds(200), "\(String(describing: first))")
                #expect(await peer.line(startingWith: "GOAWAY 1") != nil, "\(peer.output)")
                #expect(try await echoCall(client).connection == "2")
                let second = try await transport.waitForCounters { $0.tooManyPings >= 2 }
                #expect(second?.keepaliveTime == .milliseconds(400), "\(String(describing: second))")
                // The peer prints its PING lines before its GOAWAY line.
                #expect(await peer.line(startingWith: "GOAWAY 2") != nil, "\(peer.output)")
                // The second connection's PINGs were at least the doubled time apart (a timer never fires early).
                let intervals = pingIntervals(peer, connection: 2)
                #expect(intervals.count >= 2 && intervals.allSatisfy { $0 >= 200 }, "\(peer.output)")
                #expect(pingIntervals(peer, connection: 1).allSatisfy { $0 >= 100 }, "\(peer.output)")
            }
        }
    }

    @Test(
        "Without streams and without permit-without-calls a quiet connection is not pinged; the next RPC's PING goes before its HEADERS"
    )
    func dormantWithoutCalls() async throws {
        try await withPeer("well-behaved", ["--events"]) { peer, port in
            var configuration = keepalive(time: .milliseconds(50), timeout: .seconds(5))
            configuration.idleTimeout = nil
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                #expect(try await echoCall(client).connection == "1")
                // The signal: a keepalive check found the connection quiet and without streams, and went
                // dormant instead of pinging. (PINGs while the first RPC was open are legitimate: a slow
                // answer leaves the connection quiet for longer than 50 ms.)
                let dormant = try #require(
                    try await transport.waitForCounters(within: .seconds(10)) { $0.keepaliveDormancies >= 1 },
                    "never dormant"
                )
                let before = dormant.keepalivePingsSent
                // The next RPC wakes keepalive: its PING reaches the peer before the request (gRFC A8).
                #expect(try await echoCall(client).connection == "1")
                // Printed after the PING.
                #expect(await peer.line(startingWith: "REQUEST 1 3") != nil, "\(peer.output)")
                let lines = peer.output.split(separator: "\n").map(String.init)
                let ping = lines.firstIndex { $0.hasPrefix("PING 1 \(before + 1) ") }
                let request = lines.firstIndex { $0 == "REQUEST 1 3" }
                #expect(ping != nil && request != nil && ping! < request!, "\(peer.output)")
            }
        }
    }
}

@Suite("Client idle and connect timeouts against a raw HTTP/2 peer")
struct ConnectionTimeoutTests {
    @Test("A connection unused for the idle timeout is closed; the next RPC reconnects")
    func idle() async throws {
        try await withPeer("well-behaved", ["--events"]) { peer, port in
            var configuration = HTTP2ClientTransport.Configuration()
            configuration.idleTimeout = .milliseconds(200)
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                #expect(try await echoCall(client).connection == "1")
                let counters = try await transport.waitForCounters(within: .seconds(10)) { $0.idleCloses >= 1 }
                #expect(counters?.idleCloses == 1, "idle close never happened")
                #expect(await peer.line(startingWith: "CLOSED 1 ") != nil, "\(peer.output)")
                #expect(try await echoCall(client).connection == "2")
                #expect(await transport.connectionAttempts == 2)
            }
        }
    }

    @Test(
        "A server that accepts and then says nothing: the connect timeout fails the RPC with UNAVAILABLE, naming it",
        arguments: [false, true]
    )
    func stalledHandshake(tls: Bool) async throws {
        let pki = try await TestPKI.directory()
        try await withPeer("stall-handshake") { peer, port in
            var configuration = HTTP2ClientTransport.Configuration()
            configuration.connectTimeout = .milliseconds(300)
            configuration.connectionBackoff = ConnectionBackoff(initial: .milliseconds(50), maximum: .milliseconds(100))
            if tls { configuration.tls = .client(trustRoots: .pemFile("\(pki)/ca.pem")) }
            configuration.authority = "localhost"
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                let error = await #expect(throws: RPCError.self) {
                    _ = try await echoCall(client, timeout: .seconds(20))
                }
                #expect(error?.code == .unavailable, "\(String(describing: error))")
                #expect(error?.message.contains("connect timeout (300 ms)") == true, "\(String(describing: error))")
                #expect(await transport.counters.connectTimeouts >= 1)
                #expect(await peer.line(startingWith: "CONNECTION 1") != nil)
            }
        }
    }

    @Test(
        "An attempt's connect timeout is at least the current backoff delay (grpc's max(backoff, MIN_CONNECT_TIMEOUT))"
    )
    func connectTimeoutAtLeastBackoff() async throws {
        var iterator = ConnectionBackoff(initial: .milliseconds(500), jitter: 0).makeIterator()
        #expect(iterator.upcoming == .milliseconds(500))
        _ = iterator.next()
        #expect(iterator.upcoming == .milliseconds(800))
        try await withPeer("stall-handshake") { _, port in
            var configuration = HTTP2ClientTransport.Configuration()
            configuration.connectTimeout = .milliseconds(100)
            configuration.connectionBackoff = ConnectionBackoff(initial: .milliseconds(500), maximum: .seconds(1))
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                let error = await #expect(throws: RPCError.self) {
                    _ = try await echoCall(client, timeout: .seconds(20))
                }
                #expect(error?.message.contains("connect timeout (500 ms)") == true, "\(String(describing: error))")
            }
        }
    }

    @Test("A connect that never completes (SYNs dropped): the next address is tried after the connect timeout")
    func stalledConnectNextAddress() async throws {
        try await withPeer("stall-connect") { peer, port in
            let stalled = try await peer.number(after: "STALLED")
            var configuration = HTTP2ClientTransport.Configuration()
            // Long enough for the second address's handshake on a loaded machine.
            configuration.connectTimeout = .seconds(1)
            configuration.connectionBackoff = ConnectionBackoff(initial: .milliseconds(50), maximum: .milliseconds(100))
            let transport = try HTTP2ClientTransport(
                target: .addresses([.ipv4(host: "127.0.0.1", port: stalled), .ipv4(host: "127.0.0.1", port: port)]),
                authority: "127.0.0.1:\(port)",
                configuration: configuration
            )
            try await withCourierClient(transport: transport) { client in
                let (reply, connection) = try await echoCall(client, timeout: .seconds(20))
                #expect(reply == Array("hello".utf8))
                #expect(connection == "1")
                let counters = await transport.counters
                #expect(counters.connectTimeouts == 1)
                #expect(counters.connectionAttempts == 1)
            }
        }
    }
}

@Suite("Client keepalive against grpcio's ping enforcement")
struct GRPCIOKeepaliveTests {
    /// Runs the grpcio echo server with its ping policy and a Courier client with `configuration`.
    func withEnforcingServer(
        minPingIntervalMilliseconds: Int,
        maxPingStrikes: Int,
        permitWithoutCalls: Bool,
        client configuration: HTTP2ClientTransport.Configuration,
        _ body: (CourierClient, HTTP2ClientTransport) async throws -> Void
    ) async throws {
        let peer = try PeerProcess(
            "grpcio_ping_enforcing_server.py",
            ["\(minPingIntervalMilliseconds)", "\(maxPingStrikes)", permitWithoutCalls ? "1" : "0"]
        )
        do {
            let port = try await peer.number(after: "PORT")
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in try await body(client, transport) }
        } catch {
            await peer.stop()
            throw error
        }
        await peer.stop()
    }

    @Test(
        "grpcio answers pings more frequent than it permits with GOAWAY too_many_pings; the client doubles its keepalive time each time"
    )
    func tooManyPings() async throws {
        try await withEnforcingServer(
            minPingIntervalMilliseconds: 60_000,
            maxPingStrikes: 1,
            permitWithoutCalls: false,
            client: keepalive(time: .milliseconds(100), timeout: .seconds(5), permitWithoutCalls: true)
        ) { client, transport in
            let (reply, _) = try await echoCall(client)
            #expect(reply == Array("hello".utf8))
            let first = try await transport.waitForCounters { $0.tooManyPings >= 1 }
            #expect(first?.keepaliveTime == .milliseconds(200), "\(String(describing: first))")
            // The next RPC makes a new connection, which pings half as often, and is told again.
            #expect(try await echoCall(client).reply == Array("hello".utf8))
            let second = try await transport.waitForCounters { $0.tooManyPings >= 2 }
            #expect(second?.keepaliveTime == .milliseconds(400), "\(String(describing: second))")
            #expect(second?.connectionAttempts == 2)
            #expect(second?.keepaliveTimeouts == 0)
        }
    }

    @Test("Pings within grpcio's policy are acknowledged: no GOAWAY, the connection stays")
    func permittedPings() async throws {
        try await withEnforcingServer(
            minPingIntervalMilliseconds: 10,
            maxPingStrikes: 2,
            permitWithoutCalls: true,
            client: keepalive(time: .milliseconds(100), timeout: .seconds(5), permitWithoutCalls: true)
        ) { client, transport in
            #expect(try await echoCall(client).reply == Array("hello".utf8))
            let pinged = try await transport.waitForCounters { $0.keepalivePingsSent >= 5 }
            #expect(pinged?.tooManyPings == 0, "\(String(describing: pinged))")
            #expect(pinged?.keepaliveTimeouts == 0, "\(String(describing: pinged))")
            #expect(try await echoCall(client).reply == Array("hello".utf8))
            #expect(await transport.connectionAttempts == 1)
        }
    }
}

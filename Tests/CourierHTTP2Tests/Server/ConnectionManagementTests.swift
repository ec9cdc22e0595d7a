import Courier
import CourierTestSupport
import Foundation
import Testing

@testable import CourierHTTP2

/// Holds each call until it is cancelled, and opens `cancelled` when that happens.
struct HoldService: RegistrableRPCService {
    let cancelled: Gate
    /// Opened when a handler starts: the server has the RPC.
    var started: Gate? = nil

    func registerMethods(with router: inout RPCRouter) {
        let (cancelled, started) = (self.cancelled, self.started)
        let hold = MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Hold")
        router.registerUnary(forMethod: hold, deserializer: codec, serializer: codec) { _, _ in
            started?.open()
            let gate = Gate()
            await withTaskCancellationHandler {
                await gate.wait()
            } onCancel: {
                gate.open()
                cancelled.open()
            }
            throw CancellationError()
        }
    }
}

/// The server's connection management against a raw HTTP/2 peer (`Peers/h2_keepalive_client.py`) and grpcio:
/// keepalive, the ping policy, idle and age limits, and the two-phase GOAWAY. Settings are short instead of
/// a clock being faked: every wait is on a line the peer prints, bounded by the peer's own time limit.
@Suite("Server connection management")
struct ServerConnectionManagementTests {
    static let keepalivePing = String(ServerConnectionStateMachine.keepalivePing, radix: 16)
    static let goAwayPing = String(ServerConnectionStateMachine.goAwayPing, radix: 16)

    /// Runs a server configured by `configure` and the raw peer in `mode` for at most `seconds`; `during`
    /// runs while the peer does. Returns the peer's lines.
    func run(
        _ mode: String,
        seconds: Double = 10,
        stopAfterPings: Int? = nil,
        services: [any RegistrableRPCService] = [RawEchoService()],
        configure: (inout HTTP2ServerTransport.Configuration) -> Void = { _ in },
        during: (ChildProcess, CourierServer) async throws -> Void = { _, _ in }
    ) async throws -> [String] {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configure(&configuration)
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        return try await withCourierServer(transport: transport, services: services) { server in
            let port = try #require(try await transport.listeningAddress().port)
            let peer = try ChildProcess(
                "/usr/bin/env",
                [
                    "python3", peersDirectory.appendingPathComponent("h2_keepalive_client.py").path, "\(port)", mode,
                    "\(seconds)",
                ]
                    + (stopAfterPings.map { ["\($0)"] } ?? [])
            )
            try await during(peer, server)
            _ = await peer.waitForExit()
            await peer.waitForEndOfOutput()
            return peer.output.split(separator: "\n").map(String.init)
        }
    }

    @Test("Keepalive: a silent peer is pinged after the keepalive time, and closed when the ACK doesn't come")
    func keepaliveClosesSilentPeer() async throws {
        let lines = try await run("silent") { configuration in
            configuration.keepaliveTime = .milliseconds(100)
            configuration.keepaliveTimeout = .milliseconds(100)
        }
        #expect(lines.contains("PING payload=\(Self.keepalivePing) ack=0"), "\(lines)")
        #expect(lines.last == "CLOSED", "\(lines)")
    }

    @Test("Keepalive: a peer that ACKs stays connected, pinged again after each quiet keepalive time")
    func keepaliveAcked() async throws {
        // The peer stops after the third PING: still connected, the server having pinged again and again.
        let lines = try await run("idle", stopAfterPings: 3) { configuration in
            configuration.keepaliveTime = .milliseconds(100)
            configuration.keepaliveTimeout = .milliseconds(100)
        }
        #expect(lines.filter { $0 == "PING payload=\(Self.keepalivePing) ack=0" }.count == 3, "\(lines)")
        #expect(lines.last == "DONE", "\(lines)")
    }

    @Test("Ping policy: PINGs without streams more often than allowed get GOAWAY(ENHANCE_YOUR_CALM, too_many_pings)")
    func tooManyPings() async throws {
        let lines = try await run("ping-flood")
        #expect(lines.contains("GOAWAY last=0 code=ENHANCE_YOUR_CALM debug=too_many_pings"), "\(lines)")
        #expect(lines.last == "CLOSED", "\(lines)")
    }

    @Test("Ping policy: the same PINGs are fine when the policy allows them")
    func pingsAllowed() async throws {
        let lines = try await run("ping-flood", seconds: 0.5) { configuration in
            // Zero, not a millisecond: PINGs that arrive in one read are processed at the same instant.
            configuration.minPingInterval = .zero
            configuration.permitPingsWithoutStreams = true
        }
        #expect(!lines.contains { $0.hasPrefix("GOAWAY") }, "\(lines)")
        #expect(lines.last == "TIMEOUT", "\(lines)")
    }

    @Test("Max connection idle: GOAWAY(2^31-1) and a PING, then on its ACK the final GOAWAY, then close")
    func idleDrain() async throws {
        let lines = try await run("idle") { configuration in
            configuration.maxConnectionIdle = .milliseconds(100)
        }
        let expected = [
            "GOAWAY last=2147483647 code=NO_ERROR debug=", "PING payload=\(Self.goAwayPing) ack=0",
            "GOAWAY last=0 code=NO_ERROR debug=", "CLOSED",
        ]
        #expect(lines.filter { !$0.hasPrefix("PING payload=\(Self.keepalivePing)") } == expected, "\(lines)")
    }

    @Test("Graceful shutdown: a stream sent after the first GOAWAY (before the PING's ACK) is served, not refused")
    func streamRacingTheFirstGoAway() async throws {
        let lines = try await run(
            "race-goaway",
            during: { peer, server in
                _ = await peer.line(containing: "READY")
                server.beginGracefulShutdown()
            }
        )
        #expect(lines.contains("GOAWAY last=2147483647 code=NO_ERROR debug="), "\(lines)")
        #expect(lines.contains("SENT stream=1"), "\(lines)")
        #expect(lines.contains("STATUS stream=1 grpc-status=0"), "\(lines)")
        #expect(lines.contains("GOAWAY last=1 code=NO_ERROR debug="), "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("RST_STREAM") }, "\(lines)")
        #expect(lines.last == "CLOSED", "\(lines)")
    }

    @Test("Max connection age: the connection drains; after the grace its RPC is cancelled and it is closed")
    func ageWithGrace() async throws {
        let cancelled = Gate()
        let lines = try await run("hold-stream", services: [HoldService(cancelled: cancelled)]) { configuration in
            configuration.maxConnectionAge = .milliseconds(200)
            configuration.maxConnectionAgeGrace = .milliseconds(200)
        }
        await cancelled.wait()
        #expect(lines.contains("GOAWAY last=2147483647 code=NO_ERROR debug="), "\(lines)")
        #expect(lines.contains("GOAWAY last=1 code=NO_ERROR debug="), "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("STATUS") }, "\(lines)")
        #expect(lines.last == "CLOSED", "\(lines)")
    }

    @Test("beginGracefulShutdown(grace:) over HTTP/2: after the grace the held RPC is cancelled and run() returns")
    func gracePeriodOverHTTP2() async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        let cancelled = Gate()
        let started = Gate()
        let server = CourierServer(
            transport: transport,
            services: [HoldService(cancelled: cancelled, started: started), RawEchoService()]
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                // The connection is up before the shutdown: the held call is on it.
                let first = try await client.unary(
                    request: ClientRequest(message: [1]),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(first == [1])
                let held = Task {
                    try await client.unary(
                        request: ClientRequest(message: []),
                        descriptor: method("Hold"),
                        serializer: codec,
                        deserializer: codec
                    )
                }
                // The server runs the held call's handler before the shutdown begins. (Not "a second call
                // is answered after it": the unstructured task may send the held call after that one, and
                // then after the GOAWAY, when no handler ever starts; seen as a hang under load.)
                await started.wait()
                let second = try await client.unary(
                    request: ClientRequest(message: [2]),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(second == [2])
                server.beginGracefulShutdown(grace: .milliseconds(100))
                await cancelled.wait()
                await #expect(throws: RPCError.self) { try await held.value }
            }
            try await group.waitForAll()
        }
    }

    @Test(
        "grpcio's keepalive against the server's ping policy: too frequent is too_many_pings; allowed works",
        arguments: [false, true]
    )
    func grpcioKeepalive(allowed: Bool) async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        if allowed {
            configuration.minPingInterval = .zero
            configuration.permitPingsWithoutStreams = true
        }
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        let cancelled = Gate()
        try await withCourierServer(
            transport: transport,
            services: [HoldService(cancelled: cancelled), RawEchoService()]
        ) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let result = try await runProcess(
                "/usr/bin/env",
                [
                    "python3", peersDirectory.appendingPathComponent("grpcio_keepalive_client.py").path, "\(port)",
                    allowed ? "2.5" : "15",
                ]
            )
            if allowed {
                #expect(result.status == 0, "\(result.output)")
                #expect(result.output.contains("OK"), "\(result.output)")
            } else {
                #expect(result.status == 0, "\(result.output)")
                #expect(result.output.contains("UNAVAILABLE"), "\(result.output)")
                #expect(
                    result.output.contains("too_many_pings") || result.output.contains("ENHANCE_YOUR_CALM"),
                    "\(result.output)"
                )
                await cancelled.wait()  // the held RPC was cancelled with its connection
            }
        }
    }
}

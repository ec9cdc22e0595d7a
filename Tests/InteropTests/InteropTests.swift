import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import GRPCTestingProtos
import InteropTestService
import SwiftProtobuf
import Testing

let peers = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Examples/Interop/Peers")

/// Starts a Python peer, waits for its 'PORT n' line (an explicit readiness signal), runs `body`, then
/// closes the peer's stdin, which stops it.
func withPythonPeer(_ script: String, _ arguments: [String] = [], _ body: (Int) async throws -> Void) async throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", peers.appendingPathComponent(script).path] + arguments
    process.currentDirectoryURL = peers
    let output = Pipe()
    let input = Pipe()
    process.standardOutput = output
    process.standardInput = input
    let exited = AsyncStream<Void>.makeStream()
    process.terminationHandler = { _ in exited.continuation.finish() }
    try process.run()
    let text = await firstLine(of: output.fileHandleForReading)
    do {
        let port = try #require(text.hasPrefix("PORT ") ? Int(text.dropFirst(5)) : nil, "peer said: \(text)")
        try await body(port)
    } catch {
        try? input.fileHandleForWriting.close()
        for await _ in exited.stream {}
        throw error
    }
    try? input.fileHandleForWriting.close()
    for await _ in exited.stream {}  // the peer exits once its stdin closes
}

/// Runs a program from the peers' directory.
func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await runProcess("/usr/bin/env", arguments, currentDirectory: peers)
}

@Suite("Interop with grpcio (the gRPC C-core), both directions")
struct InteropTests {
    @Test("grpcio's client passes every case against Courier's TestService")
    func grpcioClientAgainstCourier() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [TestService.Registration()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let result = try await run([
                "python3", "grpcio_interop_client.py", "--server_port", "\(port)", "--test_case", "all",
            ])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\(InteropTestCase.all.count) passed, 0 failed"), "\(result.output)")
        }
    }

    @Test("Courier's client passes every case against grpcio's TestService", arguments: InteropTestCase.all)
    func courierClientAgainstGRPCIO(_ testCase: InteropTestCase) async throws {
        try await withPythonPeer("grpcio_test_server.py") { port in
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                // grpcio's Python servicer can't see request compression, so it can't answer the probe.
                let notes = try await testCase.run(using: client)
                let probes: Set<InteropTestCase> = [.clientCompressedUnary, .clientCompressedStreaming]
                #expect(notes.isEmpty != probes.contains(testCase), "\(notes)")
            }
        }
    }

    @Test("pick_first_unary over an ipv4: list of two grpcio servers: one server; round_robin reaches both")
    func pickFirstUnaryAgainstGRPCIO() async throws {
        try await withPythonPeer("grpcio_test_server.py") { first in
            try await withPythonPeer("grpcio_test_server.py") { second in
                let target = "ipv4:127.0.0.1:\(first),127.0.0.1:\(second)"
                try await withCourierClient(transport: try HTTP2ClientTransport(target: target)) { client in
                    let notes = try await InteropTestCase.pickFirstUnary.run(using: client)
                    #expect(notes.isEmpty, "\(notes)")
                }
                // The same target with round_robin: both servers answer, under different ids, so the
                // case above could have seen two.
                let configuration = CourierClient.Configuration(
                    serviceConfig: try ServiceConfig(json: #"{"loadBalancingConfig": [{"round_robin": {}}]}"#)
                )
                let transport = try HTTP2ClientTransport(target: target)
                try await withCourierClient(transport: transport, configuration: configuration) { client in
                    let testService = Grpc_Testing_TestService.Client(wrapping: client)
                    var servers = Set<String>()
                    // The second connection may still be starting when the first RPCs go out.
                    for _ in 0..<200 where servers.count < 2 {
                        let response = try await testService.unaryCall(.with { $0.fillServerID = true })
                        servers.insert(response.serverID)
                    }
                    #expect(servers.count == 2, "\(servers.sorted())")
                    #expect(servers.allSatisfy { $0.hasPrefix("grpcio-") }, "\(servers.sorted())")
                }
            }
        }
    }

    @Test("Courier's client passes every case against Courier's server", arguments: InteropTestCase.allCases)
    func courierAgainstCourier(_ testCase: InteropTestCase) async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [TestService.Registration()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                // Courier's server checks expect_compressed, so every probe must be answered.
                let notes = try await testCase.run(using: client)
                #expect(notes.isEmpty, "\(notes)")
            }
        }
    }

    @Test(
        "expect_compressed is checked per message: on a compressed call, a message sent uncompressed is INVALID_ARGUMENT"
    )
    func expectCompressedPerMessage() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [TestService.Registration()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                let testService = Grpc_Testing_TestService.Client(wrapping: client)
                var options = CallOptions(timeout: .seconds(10))
                options.compression = .gzip  // the call declares grpc-encoding: gzip
                let error = await #expect(throws: RPCError.self) {
                    _ = try await testService.streamingInputCall(options: options) { writer in
                        try await writer.write(
                            .with {
                                $0.expectCompressed = .with { $0.value = true }
                                $0.payload = .with { $0.body = Data(count: 100) }
                            },
                            options: .uncompressed
                        )
                    }
                }
                #expect(error?.code == .invalidArgument, "\(String(describing: error))")
                // The same message sent compressed is fine.
                let response = try await testService.streamingInputCall(options: options) { writer in
                    try await writer.write(
                        .with {
                            $0.expectCompressed = .with { $0.value = true }
                            $0.payload = .with { $0.body = Data(count: 100) }
                        }
                    )
                }
                #expect(response.aggregatedPayloadSize == 100)
            }
        }
    }

    /// Starts `interop-server` with `arguments`; returns it and its port, once it listens.
    func startInteropServer(_ arguments: [String]) async throws -> (ChildProcess, Int) {
        let server = try ChildProcess(
            productsDirectory.appendingPathComponent("interop-server").path,
            ["--port", "0"] + arguments
        )
        let line = await server.line(containing: "listening on") ?? ""
        let port = try #require(
            line.split(separator: ":").last.flatMap { Int($0.split(separator: " ")[0]) },
            "server said: \(line)"
        )
        return (server, port)
    }

    /// Runs `Tests/CourierHTTP2Tests/Peers/h2_keepalive_client.py` in `mode` against `port`.
    func keepalivePeer(port: Int, mode: String) throws -> ChildProcess {
        let script = peers.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/CourierHTTP2Tests/Peers/h2_keepalive_client.py")
        return try ChildProcess("/usr/bin/env", ["python3", script.path, "\(port)", mode, "10"])
    }

    @Test("interop-server on SIGTERM: the two-phase GOAWAY (a stream racing the first is served), then exit 0")
    func interopServerSIGTERM() async throws {
        let (server, port) = try await startInteropServer([])
        let peer = try keepalivePeer(port: port, mode: "race-goaway")
        _ = await peer.line(containing: "READY")
        server.signal(SIGTERM)
        _ = await peer.waitForExit()
        await peer.waitForEndOfOutput()
        let lines = peer.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("GOAWAY last=2147483647 code=NO_ERROR debug="), "\(lines)")
        #expect(lines.contains("STATUS stream=1 grpc-status=12"), "\(lines)")  // served (an unknown method)
        #expect(lines.contains("GOAWAY last=1 code=NO_ERROR debug="), "\(lines)")
        #expect(lines.last == "CLOSED", "\(lines)")
        #expect(await server.waitForExit() == 0, "\(server.output)")
        #expect(server.output.contains("stopped"), "\(server.output)")
    }

    @Test("interop-server serves reflection and health: grpcio-reflection lists and resolves them, as grpcurl does")
    func interopServerReflection() async throws {
        let (server, port) = try await startInteropServer([])
        let result = try await runProcess(
            "/usr/bin/env",
            [
                "python3", peers.appendingPathComponent("grpcio_reflection_list.py").path, "\(port)",
                "grpc.testing.TestService", "grpc.health.v1.Health",
            ]
        )
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("SERVICE grpc.reflection.v1.ServerReflection"), "\(result.output)")
        #expect(
            result.output.contains("METHOD grpc.testing.TestService/UnaryCall grpc.testing.SimpleRequest"),
            "\(result.output)"
        )
        #expect(result.output.contains("METHOD grpc.health.v1.Health/Check"), "\(result.output)")
        server.signal(SIGTERM)
        #expect(await server.waitForExit() == 0, "\(server.output)")
    }

    @Test("interop-server's keepalive flags: --keepalive_time_ms and --keepalive_timeout_ms close a silent client")
    func interopServerKeepaliveFlags() async throws {
        let (server, port) = try await startInteropServer([
            "--keepalive_time_ms", "100", "--keepalive_timeout_ms", "100",
        ])
        let peer = try keepalivePeer(port: port, mode: "silent")
        _ = await peer.waitForExit()
        await peer.waitForEndOfOutput()
        #expect(peer.output.hasSuffix("CLOSED"), "\(peer.output)")
        server.signal(SIGTERM)
        #expect(await server.waitForExit() == 0, "\(server.output)")
    }

    @Test("interop-server rejects a bad connection-management flag")
    func interopServerBadFlag() async throws {
        let result = try await run([
            productsDirectory.appendingPathComponent("interop-server").path, "--max_connection_age_ms", "soon",
        ])
        #expect(result.status == 2, "\(result.output)")
    }

    @Test("Over TLS: grpcio's client against interop-server --use_tls, with the test CA and a host override")
    func grpcioClientAgainstCourierTLS() async throws {
        let pki = try await TestPKI.directory()
        let server = Process()
        server.executableURL = productsDirectory.appendingPathComponent("interop-server")
        server.arguments = [
            "--port", "0", "--use_tls", "--tls_cert_file", "\(pki)/server.pem", "--tls_key_file", "\(pki)/server.key",
        ]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        // "interop-server listening on ipv4:0.0.0.0:PORT (TLS)"
        let line = await firstLine(of: output.fileHandleForReading)
        let port = try #require(
            line.split(separator: ":").last.flatMap { Int($0.split(separator: " ")[0]) },
            "server said: \(line)"
        )
        let result = try await run([
            "python3", "grpcio_interop_client.py", "--server_port", "\(port)", "--test_case", "all",
            "--use_tls", "true", "--ca_file", "\(pki)/ca.pem", "--server_host_override", "foo.test.example.com",
        ])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(InteropTestCase.all.count) passed, 0 failed"), "\(result.output)")
    }

    @Test("Over TLS: interop-client --use_tls against grpcio's TestService, with the test CA and a host override")
    func courierClientAgainstGRPCIOTLS() async throws {
        let pki = try await TestPKI.directory()
        try await withPythonPeer(
            "grpcio_test_server.py",
            ["--use_tls", "--tls_cert_file", "\(pki)/server.pem", "--tls_key_file", "\(pki)/server.key"]
        ) { port in
            let result = try await run([
                productsDirectory.appendingPathComponent("interop-client").path,
                "--server_host", "127.0.0.1", "--server_port", "\(port)", "--test_case", "all",
                "--use_tls", "true", "--ca_file", "\(pki)/ca.pem", "--server_host_override", "foo.test.example.com",
            ])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\(InteropTestCase.all.count) passed, 0 failed"), "\(result.output)")
        }
    }
}

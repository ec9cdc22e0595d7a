import Courier
import CourierTestSupport
import CourierHTTP2
import Foundation
import InteropTestService
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
        try await withCourierServer(transport: transport, services: [TestService()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let result = try await run(["python3", "grpcio_interop_client.py", "--server_port", "\(port)", "--test_case", "all"])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\(InteropTestCase.allCases.count) passed, 0 failed"), "\(result.output)")
        }
    }

    @Test("Courier's client passes every case against grpcio's TestService", arguments: InteropTestCase.allCases)
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

    @Test("Courier's client passes every case against Courier's server", arguments: InteropTestCase.allCases)
    func courierAgainstCourier(_ testCase: InteropTestCase) async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [TestService()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                // Courier's server checks expect_compressed, so every probe must be answered.
                let notes = try await testCase.run(using: client)
                #expect(notes.isEmpty, "\(notes)")
            }
        }
    }

    @Test("Over TLS: grpcio's client against interop-server --use_tls, with the test CA and a host override")
    func grpcioClientAgainstCourierTLS() async throws {
        let pki = try await TestPKI.directory()
        let server = Process()
        server.executableURL = productsDirectory.appendingPathComponent("interop-server")
        server.arguments = ["--port", "0", "--use_tls", "--tls_cert_file", "\(pki)/server.pem", "--tls_key_file", "\(pki)/server.key"]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        // "interop-server listening on ipv4:0.0.0.0:PORT (TLS)"
        let line = await firstLine(of: output.fileHandleForReading)
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.split(separator: " ")[0]) }, "server said: \(line)")
        let result = try await run([
            "python3", "grpcio_interop_client.py", "--server_port", "\(port)", "--test_case", "all",
            "--use_tls", "true", "--ca_file", "\(pki)/ca.pem", "--server_host_override", "foo.test.example.com",
        ])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(InteropTestCase.allCases.count) passed, 0 failed"), "\(result.output)")
    }

    @Test("Over TLS: interop-client --use_tls against grpcio's TestService, with the test CA and a host override")
    func courierClientAgainstGRPCIOTLS() async throws {
        let pki = try await TestPKI.directory()
        try await withPythonPeer(
            "grpcio_test_server.py", ["--use_tls", "--tls_cert_file", "\(pki)/server.pem", "--tls_key_file", "\(pki)/server.key"]
        ) { port in
            let result = try await run([
                productsDirectory.appendingPathComponent("interop-client").path,
                "--server_host", "127.0.0.1", "--server_port", "\(port)", "--test_case", "all",
                "--use_tls", "true", "--ca_file", "\(pki)/ca.pem", "--server_host_override", "foo.test.example.com",
            ])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\(InteropTestCase.allCases.count) passed, 0 failed"), "\(result.output)")
        }
    }
}

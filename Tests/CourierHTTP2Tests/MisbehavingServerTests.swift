import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import Testing

/// Runs h2_misbehaving_server.py in `mode` and a Courier client against it.
func withMisbehavingServer<R: Sendable>(_ mode: String, _ body: (CourierClient) async throws -> R) async throws -> R {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", peersDirectory.appendingPathComponent("h2_misbehaving_server.py").path, mode]
    let output = Pipe()
    let input = Pipe()
    process.standardOutput = output
    process.standardInput = input
    let exited = AsyncStream<Void>.makeStream()
    process.terminationHandler = { _ in exited.continuation.finish() }
    try process.run()
    defer {
        try? input.fileHandleForWriting.close()
    }
    let line = await firstLine(of: output.fileHandleForReading)
    let port = try #require(line.hasPrefix("PORT ") ? Int(line.dropFirst(5)) : nil, "server said: \(line)")
    let result = try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) {
        client in
        try await body(client)
    }
    try? input.fileHandleForWriting.close()
    for await _ in exited.stream {}
    return result
}

/// A unary call with a 10 s deadline; returns the reply and the `x-connection` trailer.
func call(_ client: CourierClient) async throws -> (reply: [UInt8], connection: String?) {
    try await client.unary(
        request: ClientRequest(message: Array("hello".utf8)),
        descriptor: method("Get"),
        serializer: codec,
        deserializer: codec,
        options: CallOptions(timeout: .seconds(10))
    ) { response in
        (try response.message, response.trailingMetadata.firstString(forKey: "x-connection"))
    }
}

@Suite("The client against misbehaving servers (Python h2)")
struct MisbehavingServerTests {
    @Test("GOAWAY before processing: the RPC is retried transparently on a new connection")
    func goAwayRetried() async throws {
        try await withMisbehavingServer("goaway-first") { client in
            let (reply, connection) = try await call(client)
            #expect(reply == Array("hello".utf8))
            #expect(connection == "2")
            // Later calls use the new connection.
            let later = try await call(client).connection
            #expect(later == "2")
        }
    }

    @Test("REFUSED_STREAM: retried once; refused again, UNAVAILABLE")
    func refusedStream() async throws {
        try await withMisbehavingServer("refuse-first") { client in
            let (reply, _) = try await call(client)
            #expect(reply == Array("hello".utf8))
        }
        try await withMisbehavingServer("refuse-always") { client in
            let error = await #expect(throws: RPCError.self) { _ = try await call(client) }
            #expect(error?.code == .unavailable)
        }
    }

    @Test(
        "Bad answers map to the right status, never a silent success",
        arguments: [
            ("http-503", RPCError.Code.unavailable),
            ("http-404", .unimplemented),
            ("huge-prefix", .resourceExhausted),
            ("truncated", .internal),
            ("unknown-encoding", .internal),
            ("compressed-no-encoding", .internal),
            ("rst-internal", .internal),
            ("header-flood", .resourceExhausted),
            ("garbage", .unavailable),
            // Not HTTP/2, and the socket left open: the RPC fails at once (not at its 10 s deadline).
            ("garbage-open", .unavailable),
        ]
    )
    func badAnswers(mode: String, expected: RPCError.Code) async throws {
        try await withMisbehavingServer(mode) { client in
            let error = await #expect(throws: RPCError.self) { _ = try await call(client) }
            #expect(error?.code == expected, "\(mode): \(String(describing: error))")
        }
    }

    @Test(
        "A wrong content-type, an invalid grpc-status, a second header block: errors, not successes",
        arguments: ["wrong-content-type", "invalid-grpc-status", "duplicate-headers"]
    )
    func malformed(mode: String) async throws {
        try await withMisbehavingServer(mode) { client in
            let error = await #expect(throws: RPCError.self) { _ = try await call(client) }
            #expect(
                error.map { [.internal, .unknown].contains($0.code) } == true,
                "\(mode): \(String(describing: error))"
            )
        }
    }

    @Test("A PING flood before the answer is survived")
    func pingFlood() async throws {
        try await withMisbehavingServer("ping-flood") { client in
            let reply = try await call(client).reply
            #expect(reply == Array("hello".utf8))
        }
    }
}

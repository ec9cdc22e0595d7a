import Courier
import CourierTestSupport
import Foundation
import Testing

@testable import CourierHTTP2

/// The server's resident memory, in KiB (this process: the server runs in it).
func residentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

@Suite("Bad input from a raw HTTP/2 client: the prescribed answer, and the server keeps serving", .serialized)
struct BadInputTests {
    /// Each case with what the server must answer (any of the listed outcomes).
    static let cases: [(mode: String, expected: [String])] = [
        ("garbage-preface", ["closed", "GOAWAY PROTOCOL_ERROR"]),
        ("unknown-frame", ["grpc-status 0"]),  // unknown frame types are ignored (RFC 9113 §4.1)
        ("request-trailers", ["grpc-status 0"]),  // a request ended by a trailers block is served
        ("data-on-stream-0", ["GOAWAY PROTOCOL_ERROR"]),
        ("settings-on-stream", ["GOAWAY PROTOCOL_ERROR"]),
        ("bad-frame-size", ["GOAWAY FRAME_SIZE_ERROR"]),
        // A connection error (RFC 9113 §5.1.1): the connection is closed (nghttp2 drops the GOAWAY here).
        ("stream-id-reuse", ["GOAWAY PROTOCOL_ERROR", "closed"]),
        ("window-update-overflow", ["GOAWAY FLOW_CONTROL_ERROR"]),
        ("data-after-end-stream", ["GOAWAY STREAM_CLOSED", "RST_STREAM STREAM_CLOSED"]),
        ("second-message-unary", ["grpc-status 13", "grpc-status 12"]),
        ("hpack-bomb", ["RST_STREAM", "GOAWAY", "closed", ":status 431"]),
        ("header-flood", ["RST_STREAM", "GOAWAY", "closed", ":status 431"]),
        ("continuation-flood", ["RST_STREAM", "GOAWAY", "closed"]),
        ("settings-flood", ["GOAWAY", "closed"]),
        ("ping-flood", ["GOAWAY", "closed"]),
        ("rapid-reset", ["GOAWAY ENHANCE_YOUR_CALM"]),
        ("slowloris", ["closed"]),
    ]

    @Test("Every case", arguments: cases.map(\.mode))
    func attack(mode: String) async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configuration.handshakeTimeout = .seconds(1)
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            let before = residentKiB()
            let result = try await runProcess(
                "/usr/bin/env",
                [
                    "python3", peersDirectory.appendingPathComponent("h2_attack_client.py").path, "\(port)", mode,
                ]
            )
            let expected = try #require(Self.cases.first { $0.mode == mode }?.expected)
            let outcome = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(expected.contains { outcome.hasPrefix($0) }, "\(mode): \(outcome)")
            // After each case a normal call on a new connection succeeds.
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                let reply = try await client.unary(
                    request: ClientRequest(message: Array("after".utf8)),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == Array("after".utf8))
            }
            // (Other suites run in this process at the same time, so RSS is reported, not asserted; the
            // closing note of the hardening work has the server's memory measured in a process of its own.)
            print("BAD-INPUT \(mode) | \(outcome) | RSS \(before) KiB -> \(residentKiB()) KiB")
        }
    }

    @Test("Connections over maxConnections are closed at once; the others keep working")
    func maxConnections() async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        configuration.maxConnections = 1
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { first in
                let reply = try await first.unary(
                    request: ClientRequest(message: Array("one".utf8)),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == Array("one".utf8))
                try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) {
                    second in
                    let error = await #expect(throws: RPCError.self) {
                        _ = try await second.unary(
                            request: ClientRequest(message: Array("two".utf8)),
                            descriptor: method("Get"),
                            serializer: codec,
                            deserializer: codec
                        )
                    }
                    #expect(error?.code == .unavailable)
                }
                let again = try await first.unary(
                    request: ClientRequest(message: Array("again".utf8)),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(again == Array("again".utf8))
            }
        }
    }
}

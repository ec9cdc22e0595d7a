import Courier
import CourierTestSupport
import Foundation
import Testing

@testable import CourierHTTP2

@Suite("Message compression")
struct CompressionTests {
    @Test("gzip and deflate round-trip", arguments: [CompressionAlgorithm.gzip, .deflate])
    func roundTrip(algorithm: CompressionAlgorithm) throws {
        for size in [0, 1, 1000, 300_000] {
            let message = MessageBuffer((0..<size).map { UInt8(truncatingIfNeeded: $0 % 7) })
            let compressed = Zlib.compress(message, algorithm: algorithm)
            #expect(compressed.headroom == MessageBuffer.defaultHeadroom)
            if size > 1000 { #expect(compressed.count < size / 10) }
            #expect(try Zlib.decompress(compressed, algorithm: algorithm, limit: nil) == message)
        }
        // gzip and deflate are different formats.
        let other: CompressionAlgorithm = algorithm == .gzip ? .deflate : .gzip
        #expect(throws: Zlib.Failure.corrupt) {
            _ = try Zlib.decompress(
                Zlib.compress(MessageBuffer([1, 2, 3]), algorithm: algorithm),
                algorithm: other,
                limit: nil
            )
        }
    }

    @Test("A zip bomb stops at the limit")
    func zipBomb() throws {
        let bomb = Zlib.compress(MessageBuffer([UInt8](repeating: 0, count: 64 << 20)), algorithm: .gzip)
        #expect(bomb.count < 200_000)
        #expect(throws: Zlib.Failure.tooLarge(limit: 4 << 20)) {
            _ = try Zlib.decompress(bomb, algorithm: .gzip, limit: 4 << 20)
        }
        #expect(Zlib.rpcError(.tooLarge(limit: 1), algorithm: .gzip).code == .resourceExhausted)
    }

    @Test("Garbage doesn't decompress", arguments: [[UInt8](), [0x1F, 0x8B], [0xFF, 0x00, 0x12, 0x34]])
    func garbage(bytes: [UInt8]) {
        #expect(throws: Zlib.Failure.self) {
            _ = try Zlib.decompress(MessageBuffer(bytes), algorithm: .gzip, limit: nil)
        }
    }

    @Test(
        "Compressed calls between Courier client and server, all four kinds",
        arguments: [CompressionAlgorithm.gzip, .deflate, .identity]
    )
    func endToEnd(algorithm: CompressionAlgorithm) async throws {
        try await withHTTP2 { client in
            let options = CallOptions(compression: algorithm)
            let payload = [UInt8](repeating: 0x61, count: 100_000)
            #expect(
                try await client.unary(
                    request: ClientRequest(message: payload),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec,
                    options: options
                ) == payload
            )
            let echoed = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    for i in 0..<50 { try await writer.write([UInt8](repeating: UInt8(i), count: 1000)) }
                },
                descriptor: method("Update"),
                serializer: codec,
                deserializer: codec,
                options: options
            ) { response in
                var total = 0
                for try await message in response.messages { total += message.count }
                return total
            }
            #expect(echoed == 50_000)
        }
    }
}

/// Reports each received message as `[1 if it arrived compressed else 0] + bytes`.
struct ArrivalFlagCodec: MessageCodec {
    func serialize(_ message: [UInt8]) throws -> MessageBuffer { MessageBuffer(message) }
    func deserialize(_ buffer: MessageBuffer) throws -> [UInt8] {
        [buffer.arrivedCompressed ? 1 : 0] + buffer.withUnsafeBytes { Array($0) }
    }
}

/// `Flags` answers each request byte with a compressible 4 KiB message, compressed (gzip) for 1 and
/// not for 0. `Report` answers with the request's `grpc-encoding` and the arrival flag of each message.
struct PerMessageCompressionService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        let codec = ArrivalFlagCodec()
        router.registerServerStreaming(forMethod: method("Flags"), deserializer: codec, serializer: codec) {
            request,
            _ in
            let flags = request.message.dropFirst()
            return StreamingServerResponse(compression: flags.contains(1) ? .gzip : nil) { writer in
                for flag in flags {
                    try await writer.write(
                        [UInt8](repeating: 0x61, count: 4096),
                        options: RPCWriteOptions(compress: flag == 1)
                    )
                }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: method("Report"), deserializer: codec, serializer: codec) {
            request,
            context in
            var report = Array((context.requestCompression?.name ?? "none").utf8) + [UInt8(ascii: ":")]
            for try await message in request.messages { report.append(message[0]) }
            return ServerResponse(message: report)
        }
    }
}

@Suite("Per-message compression")
struct PerMessageCompressionTests {
    @Test("A compressed call can send single messages uncompressed; the server sees which were compressed")
    func clientPerMessage() async throws {
        try await withHTTP2(services: [PerMessageCompressionService()]) { client in
            let report = try await client.clientStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    try await writer.write([UInt8](repeating: 1, count: 2000))
                    try await writer.write([UInt8](repeating: 2, count: 2000), options: .uncompressed)
                    try await writer.write([UInt8](repeating: 3, count: 2000), options: .default)
                },
                descriptor: method("Report"),
                serializer: ArrivalFlagCodec(),
                deserializer: ArrivalFlagCodec(),
                options: CallOptions(compression: .gzip)
            ) { try $0.message }
            #expect(String(decoding: report.dropFirst(), as: UTF8.self) == "gzip:\u{1}\u{0}\u{1}")

            let uncompressed = try await client.clientStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in try await writer.write([1, 2, 3]) },
                descriptor: method("Report"),
                serializer: ArrivalFlagCodec(),
                deserializer: ArrivalFlagCodec()
            ) { try $0.message }
            #expect(String(decoding: uncompressed.dropFirst(), as: UTF8.self) == "none:\u{0}")
        }
    }

    @Test("A handler compresses the responses of an uncompressed call, message by message")
    func serverPerMessage() async throws {
        try await withHTTP2(services: [PerMessageCompressionService()]) { client in
            for flags: [UInt8] in [[1, 0, 1], [0, 0], [1]] {
                let arrivals = try await client.serverStreaming(
                    request: ClientRequest(message: flags),
                    descriptor: method("Flags"),
                    serializer: ArrivalFlagCodec(),
                    deserializer: ArrivalFlagCodec()
                ) { response in
                    var arrivals: [UInt8] = []
                    for try await message in response.messages {
                        #expect(message.count == 4097)
                        arrivals.append(message[0])
                    }
                    return arrivals
                }
                #expect(arrivals == flags)
            }
        }
    }
}

@Suite("The server's answers to malformed requests (nghttp as a raw HTTP/2 client)")
struct RawRequestTests {
    static let nghttp = ["/usr/bin/nghttp", "/usr/local/bin/nghttp"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    func request(
        headers: [String],
        body: [UInt8] = [0, 0, 0, 0, 0],
        path: String = "/echo.Echo/Get"
    ) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("courier-body-\(UUID().uuidString)")
        try Data(body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        return try await run(headers: headers, file: file, path: path)
    }

    func run(headers: [String], file: URL, path: String) async throws -> String {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        return try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            var arguments = ["-v", "-d", file.path]
            for header in headers { arguments += ["-H", header] }
            arguments.append("http://127.0.0.1:\(port)\(path)")
            return try await runProcess(Self.nghttp!, arguments).output
        }
    }

    @Test("Unsupported grpc-encoding: UNIMPLEMENTED, listing what is supported", .enabled(if: nghttp != nil))
    func unsupportedEncoding() async throws {
        let output = try await request(headers: [
            "content-type: application/grpc", "te: trailers", "grpc-encoding: snappy",
        ])
        #expect(output.contains("grpc-status: 12"), "\(output)")
        #expect(output.contains("grpc-accept-encoding: gzip,deflate,identity"), "\(output)")
    }

    @Test(
        "A wrong or missing content-type: HTTP 415",
        .enabled(if: nghttp != nil),
        arguments: [["content-type: application/json"], []]
    )
    func contentType(headers: [String]) async throws {
        let output = try await request(headers: headers)
        #expect(output.contains(":status: 415"), "\(output)")
    }

    @Test("A compressed flag without grpc-encoding: INTERNAL", .enabled(if: nghttp != nil))
    func compressedWithoutEncoding() async throws {
        let output = try await request(headers: ["content-type: application/grpc"], body: [1, 0, 0, 0, 1, 0x61])
        #expect(output.contains("grpc-status: 13"), "\(output)")
    }

    @Test("A length prefix longer than the data: INTERNAL", .enabled(if: nghttp != nil))
    func truncated() async throws {
        let output = try await request(headers: ["content-type: application/grpc"], body: [0, 0, 0, 0, 10, 1, 2])
        #expect(output.contains("grpc-status: 13"), "\(output)")
    }

    @Test("A 2 GiB length prefix: RESOURCE_EXHAUSTED without allocating it", .enabled(if: nghttp != nil))
    func hugePrefix() async throws {
        let output = try await request(
            headers: ["content-type: application/grpc"],
            body: [0, 0x7F, 0xFF, 0xFF, 0xFF, 1]
        )
        #expect(output.contains("grpc-status: 8"), "\(output)")
    }

    @Test("A server deadline over HTTP/2 is a timer on the loop serving the stream", .enabled(if: nghttp != nil))
    func deadlineOnLoopTimer() async throws {
        // nghttp sends grpc-timeout but enforces no deadline itself, so only the server's timer can end the
        // RPC; the handler records whether its cancellation arrived on its own (the loop's) thread.
        let output = try await request(
            headers: ["content-type: application/grpc", "te: trailers", "grpc-timeout: 50m"],
            path: "/echo.Echo/AwaitDeadline"
        )
        #expect(output.contains("grpc-status: 4"), "\(output)")
        #expect(DeadlineProbe.observations == [true])
    }

    @Test("A malformed grpc-timeout: INTERNAL", .enabled(if: nghttp != nil))
    func badTimeout() async throws {
        let output = try await request(headers: ["content-type: application/grpc", "grpc-timeout: 1x"])
        #expect(output.contains("grpc-status: 13"), "\(output)")
    }

    @Test("A header list over the limit resets the stream; the server keeps serving", .enabled(if: nghttp != nil))
    func headerListLimit() async throws {
        let big = String(repeating: "a", count: 20_000)
        let output = try await request(headers: ["content-type: application/grpc", "x-big: \(big)"])
        #expect(output.contains("RST_STREAM"), "\(output.suffix(2000))")
        #expect(!output.contains("grpc-status: 0"), "\(output.suffix(2000))")
    }

    @Test("An unknown path: :status 200 with grpc-status 12 (Trailers-Only)", .enabled(if: nghttp != nil))
    func unknownPath() async throws {
        let output = try await request(headers: ["content-type: application/grpc"], path: "/no.Such/Method")
        #expect(output.contains(":status: 200"), "\(output)")
        #expect(output.contains("grpc-status: 12"), "\(output)")
    }
}

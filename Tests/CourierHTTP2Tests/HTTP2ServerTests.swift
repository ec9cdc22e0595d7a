@_spi(CourierInternals) import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import Synchronization
import Testing

/// Bytes in, bytes out.
struct BytesCodec: MessageCodec {
    func serialize(_ message: [UInt8]) throws -> MessageBuffer { MessageBuffer(message) }
    func deserialize(_ buffer: MessageBuffer) throws -> [UInt8] { buffer.withUnsafeBytes { Array($0) } }
}

/// The echo service the grpcio peer checks.
struct RawEchoService: RegistrableRPCService {
    static let specialMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"

    func registerMethods(with router: inout RPCRouter) {
        let codec = BytesCodec()
        func method(_ name: String) -> MethodDescriptor {
            MethodDescriptor(fullyQualifiedService: "echo.Echo", method: name)
        }
        @Sendable func echoMetadata(_ metadata: Metadata, key: String) -> Metadata {
            var echoed = Metadata()
            for value in metadata[key] { echoed.add(value, forKey: key) }
            return echoed
        }
        router.registerUnary(forMethod: method("Get"), deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(
                message: request.message,
                metadata: echoMetadata(request.metadata, key: "x-echo-initial"),
                trailingMetadata: echoMetadata(request.metadata, key: "x-echo-trailing-bin")
            )
        }
        router.registerServerStreaming(forMethod: method("Expand"), deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for word in request.message.split(separator: UInt8(ascii: " ")) { try await writer.write(Array(word)) }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: method("Collect"), deserializer: codec, serializer: codec) {
            request,
            _ in
            var parts: [[UInt8]] = []
            for try await message in request.messages { parts.append(message) }
            return ServerResponse(message: Array(parts.joined(separator: [UInt8(ascii: " ")])))
        }
        router.registerBidirectionalStreaming(forMethod: method("Update"), deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for try await message in request.messages { try await writer.write(message) }
                return [:]
            }
        }
        router.registerUnary(forMethod: method("Fail"), deserializer: codec, serializer: codec) { _, _ in
            throw RPCError(code: .invalidArgument, message: Self.specialMessage)
        }
        router.registerUnary(forMethod: method("Slow"), deserializer: codec, serializer: codec) { request, _ in
            try await Task.sleep(for: .seconds(60))  // stands for slow work; the deadline cancels it
            return ServerResponse(message: request.message)
        }
        // Waits to be cancelled and records whether the cancellation came on the thread the handler runs on
        // (the loop serving the stream): only the loop's timer delivers a deadline there.
        router.registerUnary(forMethod: method("AwaitDeadline"), deserializer: codec, serializer: codec) { _, _ in
            let handlerThread = pthread_self()
            await withTaskCancellationHandler {
                await DeadlineProbe.gate.wait()
            } onCancel: {
                DeadlineProbe.record(onHandlerThread: pthread_equal(pthread_self(), handlerThread) != 0)
                DeadlineProbe.gate.open()
            }
            throw CancellationError()
        }
    }
}

/// What the `AwaitDeadline` method observed.
enum DeadlineProbe {
    static let gate = Gate()
    private static let observed = CourierMutex<[Bool]>([])
    static func record(onHandlerThread: Bool) { observed.withLock { $0.append(onHandlerThread) } }
    static var observations: [Bool] { observed.withLock { $0 } }
}

let peersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

@Suite("HTTP/2 server transport against a grpcio client")
struct HTTP2ServerTests {
    @Test("grpcio calls every kind of RPC on a Courier server over h2c", arguments: [1, 2])
    func grpcioClient(loops: Int) async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = loops
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: transport, services: [RawEchoService()]) { _ in
            let address = try await transport.listeningAddress()
            let port = try #require(address.port)
            let result = try await runProcess(
                "/usr/bin/env",
                ["python3", peersDirectory.appendingPathComponent("grpcio_echo_client.py").path, "\(port)"]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("13 passed, 0 failed"), "\(result.output)")
        }
    }
}

@Suite("HTTP/2 client transport against a grpcio server")
struct HTTP2ClientInteropTests {
    /// Starts the grpcio echo server, runs `body` with its port, then stops it.
    func withGRPCIOServer(_ body: (Int) async throws -> Void) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", peersDirectory.appendingPathComponent("grpcio_echo_server.py").path]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        let exited = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exited.continuation.finish() }
        try process.run()
        // The first line says the port: an explicit signal that the server is ready.
        let text = await firstLine(of: output.fileHandleForReading)
        do {
            let port = try #require(
                text.hasPrefix("PORT ") ? Int(text.dropFirst(5)) : nil,
                "grpcio server said: \(text)"
            )
            try await body(port)
        } catch {
            try? input.fileHandleForWriting.close()
            for await _ in exited.stream {}
            throw error
        }
        try? input.fileHandleForWriting.close()
        for await _ in exited.stream {}
    }

    @Test("The Courier client calls every kind of RPC on a grpcio server")
    func grpcioServer() async throws {
        try await withGRPCIOServer { port in
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                let codec = BytesCodec()
                func method(_ name: String) -> MethodDescriptor {
                    MethodDescriptor(fullyQualifiedService: "echo.Echo", method: name)
                }

                var metadata: Metadata = ["x-echo-initial": "hello"]
                metadata.addBinary([0xAB, 0xAB, 0xAB], forKey: "x-echo-trailing-bin")
                let response = try await client.unary(
                    request: ClientRequest(message: Array("ping".utf8), metadata: metadata),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                ) { $0 }
                #expect(try response.message == Array("ping".utf8))
                #expect(response.metadata.firstString(forKey: "x-echo-initial") == "hello")
                #expect(response.trailingMetadata[binaryValues: "x-echo-trailing-bin"] == [[0xAB, 0xAB, 0xAB]])

                for algorithm in [CompressionAlgorithm.gzip, .deflate] {
                    let payload = [UInt8](repeating: 7, count: 100_000)
                    #expect(
                        try await client.unary(
                            request: ClientRequest(message: payload),
                            descriptor: method("Get"),
                            serializer: codec,
                            deserializer: codec,
                            options: CallOptions(compression: algorithm)
                        ) == payload
                    )
                }

                let big = [UInt8](repeating: 9, count: 1 << 20)
                #expect(
                    try await client.unary(
                        request: ClientRequest(message: big),
                        descriptor: method("Get"),
                        serializer: codec,
                        deserializer: codec
                    ) == big
                )

                let words = try await client.serverStreaming(
                    request: ClientRequest(message: Array("a b c".utf8)),
                    descriptor: method("Expand"),
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    var words: [[UInt8]] = []
                    for try await word in response.messages { words.append(word) }
                    return words
                }
                #expect(words == [[97], [98], [99]])

                let joined = try await client.clientStreaming(
                    request: StreamingClientRequest<[UInt8]> { writer in
                        try await writer.write(contentsOf: [[120], [121]])
                    },
                    descriptor: method("Collect"),
                    serializer: codec,
                    deserializer: codec
                ) { try $0.message }
                #expect(joined == Array("x y".utf8))

                let count = try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<[UInt8]> { writer in
                        for i in 0..<200 { try await writer.write([UInt8(truncatingIfNeeded: i)]) }
                    },
                    descriptor: method("Update"),
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    var count = 0
                    for try await _ in response.messages { count += 1 }
                    return count
                }
                #expect(count == 200)

                do {
                    _ = try await client.unary(
                        request: ClientRequest(message: []),
                        descriptor: method("Fail"),
                        serializer: codec,
                        deserializer: codec
                    )
                    Issue.record("expected INVALID_ARGUMENT")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument)
                    #expect(error.message == RawEchoService.specialMessage)
                }

                do {
                    _ = try await client.unary(
                        request: ClientRequest(message: []),
                        descriptor: method("Missing"),
                        serializer: codec,
                        deserializer: codec
                    )
                    Issue.record("expected UNIMPLEMENTED")
                } catch let error as RPCError {
                    #expect(error.code == .unimplemented)
                }

                do {
                    _ = try await client.unary(
                        request: ClientRequest(message: []),
                        descriptor: method("Slow"),
                        serializer: codec,
                        deserializer: codec,
                        options: CallOptions(timeout: .milliseconds(100))
                    )
                    Issue.record("expected DEADLINE_EXCEEDED")
                } catch let error as RPCError {
                    #expect(error.code == .deadlineExceeded)
                }
            }
        }
    }
}

import Courier
import CourierHTTP2
import Foundation
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
        func method(_ name: String) -> MethodDescriptor { MethodDescriptor(fullyQualifiedService: "echo.Echo", method: name) }
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
        router.registerServerStreaming(forMethod: method("Expand"), deserializer: codec, serializer: codec) { request, _ in
            StreamingServerResponse { writer in
                for word in request.message.split(separator: UInt8(ascii: " ")) { try await writer.write(Array(word)) }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: method("Collect"), deserializer: codec, serializer: codec) { request, _ in
            var parts: [[UInt8]] = []
            for try await message in request.messages { parts.append(message) }
            return ServerResponse(message: Array(parts.joined(separator: [UInt8(ascii: " ")])))
        }
        router.registerBidirectionalStreaming(forMethod: method("Update"), deserializer: codec, serializer: codec) { request, _ in
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
    }
}

/// Runs a program to completion without blocking a thread; returns its exit status and output.
func runProcess(_ path: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (status, output)
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
            #expect(result.output.contains("12 passed, 0 failed"), "\(result.output)")
        }
    }
}

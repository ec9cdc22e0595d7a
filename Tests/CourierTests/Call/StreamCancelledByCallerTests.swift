@_spi(CourierInternals) import Courier
import Testing

/// `CallOptions.streamCancelledByCaller`: set on the stream's options only where every read happens in the
/// calling task, under the call's own cancellation handler (the plain unary path), so that a transport may
/// park those reads without a handler of its own; never where a response sequence may be read elsewhere.
@Suite("Which calls tell the transport that the caller cancels the stream")
struct StreamCancelledByCallerTests {
    /// Records the options of each stream it is asked for, then fails the call.
    final class RecordingTransport: ClientTransport {
        private let recorded = CourierMutex<[CallOptions]>([])
        var options: [CallOptions] { recorded.withLock { $0 } }
        var clock: any RPCClock { SystemRPCClock() }
        func connect() async throws {}
        func beginGracefulShutdown() {}
        func withStream<Result: Sendable>(
            descriptor: MethodDescriptor,
            options: CallOptions,
            _ body: (any ClientTransportStream) async throws -> Result
        ) async throws -> Result {
            recorded.withLock { $0.append(options) }
            throw RPCError(code: .unavailable, message: "recording only")
        }
    }

    let codec = UTF8Codec()

    @Test("A plain unary call: set")
    func plainUnary() async throws {
        let transport = RecordingTransport()
        let client = CourierClient(transport: transport)
        await #expect(throws: RPCError.self) {
            _ = try await client.unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
        }
        #expect(transport.options.map(\.streamCancelledByCaller) == [true])
    }

    @Test("A unary call through an interceptor, and the streaming kinds: not set")
    func otherShapes() async throws {
        let transport = RecordingTransport()
        let intercepted = CourierClient(transport: transport, interceptors: [PassThroughClientInterceptor()])
        await #expect(throws: RPCError.self) {
            _ = try await intercepted.unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
        }
        let client = CourierClient(transport: transport)
        await #expect(throws: RPCError.self) {
            try await client.serverStreaming(
                request: ClientRequest(message: "m"),
                descriptor: Echo.expand,
                serializer: codec,
                deserializer: codec
            ) { response in
                for try await _ in response.messages {}
            }
        }
        await #expect(throws: RPCError.self) {
            try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { writer in try await writer.write("m") },
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response in
                for try await _ in response.messages {}
            }
        }
        #expect(transport.options.map(\.streamCancelledByCaller) == [false, false, false])
    }
}

import Courier
import CourierInMemory
import Testing

/// Interceptors that change nothing: with them, unary calls take the streaming path on both sides;
/// without, the shorter unary paths. Both must answer the same.
struct PassThroughServerInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        try await next(request, context)
    }
}

struct PassThroughClientInterceptor: ClientInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        try await next(request, context)
    }
}

@Suite("Unary calls that don't carry exactly one message each way")
struct UnaryShapeTests {
    let codec = UTF8Codec()

    /// `Echo.expand` answers with one message per word (zero for an empty request); `Echo.get` is unary.
    func withShapes(interceptors: Bool, _ body: (CourierClient) async throws -> Void) async throws {
        try await withTestRPC(
            services: [EchoService()],
            clientInterceptors: interceptors ? [PassThroughClientInterceptor()] : [],
            serverInterceptors: interceptors ? [PassThroughServerInterceptor()] : [],
            body
        )
    }

    @Test("A unary call answered with two messages fails INTERNAL", arguments: [false, true])
    func twoResponses(interceptors: Bool) async throws {
        try await withShapes(interceptors: interceptors) { client in
            let error = await expectRPCError(.internal) {
                _ = try await client.unary(
                    request: ClientRequest(message: "two words"),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message == "Expected one response message, received more.")
        }
    }

    @Test("A unary call answered with no message and OK fails INTERNAL", arguments: [false, true])
    func noResponse(interceptors: Bool) async throws {
        try await withShapes(interceptors: interceptors) { client in
            let error = await expectRPCError(.internal) {
                _ = try await client.unary(
                    request: ClientRequest(message: ""),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message == "Expected one response message, received none.")
        }
    }

    @Test("A unary method sent two request messages answers INTERNAL", arguments: [false, true])
    func twoRequests(interceptors: Bool) async throws {
        try await withShapes(interceptors: interceptors) { client in
            let response = try await client.clientStreaming(
                request: StreamingClientRequest { writer in
                    try await writer.write("one")
                    try await writer.write("two")
                },
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            ) { $0 }
            #expect(throws: RPCError.self) { try response.message }
            if case .failure(let error) = response.accepted {
                #expect(error.code == .internal)
                #expect(error.message == "Expected one request message, received more.")
            }
        }
    }

    @Test("A unary method sent no request message answers INTERNAL", arguments: [false, true])
    func noRequest(interceptors: Bool) async throws {
        try await withShapes(interceptors: interceptors) { client in
            let response = try await client.clientStreaming(
                request: StreamingClientRequest { _ in },
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            ) { $0 }
            if case .failure(let error) = response.accepted {
                #expect(error.code == .internal)
                #expect(error.message == "Expected one request message, received none.")
            } else {
                Issue.record("Expected a failure, got \(response)")
            }
        }
    }

    @Test("A unary response's metadata and trailers arrive on both paths", arguments: [false, true])
    func metadataBothPaths(interceptors: Bool) async throws {
        try await withShapes(interceptors: interceptors) { client in
            let response = try await client.unary(
                request: ClientRequest(
                    message: "hi",
                    metadata: ["x-echo-initial": "a", "x-echo-trailing-bin": [1, 2]]
                ),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            ) { $0 }
            #expect(try response.message == "hi")
            #expect(response.metadata.firstString(forKey: "x-echo-initial") == "a")
            #expect(response.trailingMetadata[binaryValues: "x-echo-trailing-bin"] == [[1, 2]])
        }
    }

    @Test("A unary response over the message limit fails RESOURCE_EXHAUSTED", arguments: [false, true])
    func responseLimit(interceptors: Bool) async throws {
        try await withShapes(interceptors: interceptors) { client in
            var options = CallOptions.defaults
            options.maxResponseMessageBytes = 4
            let error = await expectRPCError(.resourceExhausted) {
                _ = try await client.unary(
                    request: ClientRequest(message: "longer than four"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec,
                    options: options
                )
            }
            #expect(error?.message.contains("limit of 4 bytes") == true, "\(String(describing: error))")
        }
    }
}

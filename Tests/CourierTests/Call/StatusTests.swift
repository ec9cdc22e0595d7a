import Courier
import CourierInMemory
import Testing

@Suite("Status paths")
struct StatusTests {
    let codec = UTF8Codec()

    struct SecretError: Error, CustomStringConvertible {
        var description: String { "database password is hunter2" }
    }

    struct NotFoundError: RPCErrorConvertible {
        var rpcError: RPCError { RPCError(code: .notFound, message: "no such thing") }
    }

    static let nonOKCodes = Status.Code.allCases.compactMap { RPCError.Code($0) }

    @Test("A handler's RPCError reaches the client with code, message and metadata", arguments: nonOKCodes)
    func rpcErrorRoundTrip(code: RPCError.Code) async throws {
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) { _, _ in
                throw RPCError(code: code, message: "message for \(code)", metadata: ["x-detail": "d"])
            }
        }
        try await withTestRPC(services: [service]) { client in
            let error = await expectRPCError(code) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message == "message for \(code)")
            #expect(error?.metadata.firstString(forKey: "x-detail") == "d")
        }
    }

    @Test("Any other error becomes UNKNOWN without its text")
    func otherErrorIsUnknown() async throws {
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) { _, _ in
                throw SecretError()
            }
        }
        try await withTestRPC(services: [service]) { client in
            let error = await expectRPCError(.unknown) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message.contains("hunter2") == false)
            #expect(error.map { String(describing: $0) }?.contains("hunter2") == false)
        }
    }

    @Test("An RPCErrorConvertible error converts itself")
    func convertible() async throws {
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) { _, _ in
                throw NotFoundError()
            }
        }
        try await withTestRPC(services: [service]) { client in
            let error = await expectRPCError(.notFound) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message == "no such thing")
        }
    }

    @Test("An error after streamed messages: the client gets the messages, then the status")
    func errorMidStream() async throws {
        let service = ClosureService { router in
            router.registerServerStreaming(forMethod: Echo.expand, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                _,
                _ in
                StreamingServerResponse { writer in
                    try await writer.write("one")
                    try await writer.write("two")
                    throw RPCError(code: .aborted, message: "stopped", metadata: ["x-where": "3"])
                }
            }
        }
        try await withTestRPC(services: [service]) { client in
            let received = Counter()
            let error = await expectRPCError(.aborted) {
                try await client.serverStreaming(
                    request: ClientRequest(message: ""),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages { received.increment() }
                }
            }
            #expect(received.current == 2)
            #expect(error?.metadata.firstString(forKey: "x-where") == "3")
        }
    }

    @Test("Rejecting with StreamingServerResponse(error:) is the same as throwing")
    func rejectedResponse() async throws {
        let service = ClosureService { router in
            router.registerBidirectionalStreaming(
                forMethod: Echo.update,
                deserializer: UTF8Codec(),
                serializer: UTF8Codec()
            ) {
                _,
                _ in
                StreamingServerResponse(error: RPCError(code: .failedPrecondition, message: "not now"))
            }
        }
        try await withTestRPC(services: [service]) { client in
            let response = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { writer in try await writer.write("x") },
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { $0.accepted.map { _ in () } }
            #expect(throws: RPCError(code: .failedPrecondition, message: "not now")) { try response.get() }
        }
    }

    @Test(
        "Unknown method and unknown service get UNIMPLEMENTED",
        arguments: [
            MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Missing"),
            MethodDescriptor(fullyQualifiedService: "nothing.Here", method: "Get"),
        ]
    )
    func unimplemented(method: MethodDescriptor) async throws {
        try await withTestRPC { client in
            let error = await expectRPCError(.unimplemented) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: method,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message.contains(method.path) == true)
        }
    }

    @Test("A message that fails to deserialize on the server is INTERNAL")
    func serverDeserializationFailure() async throws {
        try await withTestRPC { client in
            await expectRPCError(.internal) {
                _ = try await client.unary(
                    request: ClientRequest(message: MessageBuffer([0xFF])),
                    descriptor: Echo.get,
                    serializer: RawBytesCodec(),
                    deserializer: codec
                )
            }
        }
    }

    @Test("A response that fails to deserialize on the client is INTERNAL")
    func clientDeserializationFailure() async throws {
        try await withTestRPC { client in
            await expectRPCError(.internal) {
                _ = try await client.unary(
                    request: ClientRequest(message: "\u{FF}"),  // UTF-8 C3 BF: fine on the server
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: FailingDeserializer()
                )
            }
        }
    }

    struct FailingDeserializer: MessageDeserializer {
        struct Failed: Error {}
        func deserialize(_ buffer: MessageBuffer) throws -> String { throw Failed() }
    }

    @Test("A unary response with two messages is INTERNAL")
    func unaryWithTwoResponses() async throws {
        let service = ClosureService { router in
            router.registerServerStreaming(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                _,
                _ in
                StreamingServerResponse { writer in
                    try await writer.write("one")
                    try await writer.write("two")
                    return [:]
                }
            }
        }
        try await withTestRPC(services: [service]) { client in
            await expectRPCError(.internal) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
        }
    }

    @Test("A unary handler receiving two request messages answers INTERNAL")
    func unaryWithTwoRequests() async throws {
        try await withTestRPC { client in
            await expectRPCError(.internal) {
                _ = try await client.clientStreaming(
                    request: StreamingClientRequest<String> { writer in try await writer.write(contentsOf: ["a", "b"])
                    },
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                ) { try $0.message }
            }
        }
    }

    @Test("Messages over the limits are RESOURCE_EXHAUSTED on either side")
    func messageLimits() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(
            transport: transport.server,
            services: [EchoService()],
            configuration: .init(maxRequestMessageBytes: 100)
        ) { _ in
            try await withCourierClient(transport: transport.client) { client in
                // Over the server's request limit.
                await expectRPCError(.resourceExhausted) {
                    _ = try await client.unary(
                        request: ClientRequest(message: String(repeating: "a", count: 101)),
                        descriptor: Echo.get,
                        serializer: codec,
                        deserializer: codec
                    )
                }
                // Over the client's response limit.
                await expectRPCError(.resourceExhausted) {
                    _ = try await client.unary(
                        request: ClientRequest(message: String(repeating: "a", count: 60)),
                        descriptor: Echo.get,
                        serializer: codec,
                        deserializer: codec,
                        options: CallOptions(maxResponseMessageBytes: 50)
                    )
                }
                // Over the client's own request limit: never sent.
                await expectRPCError(.resourceExhausted) {
                    _ = try await client.unary(
                        request: ClientRequest(message: String(repeating: "a", count: 60)),
                        descriptor: Echo.get,
                        serializer: codec,
                        deserializer: codec,
                        options: CallOptions(maxRequestMessageBytes: 50)
                    )
                }
                // At the limit: fine.
                let reply = try await client.unary(
                    request: ClientRequest(message: String(repeating: "a", count: 100)),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply.count == 100)
            }
        }
    }

    @Test("A request producer's own error fails the call and cancels the RPC")
    func producerError() async throws {
        struct ProducerFailed: Error {}
        try await withTestRPC { client in
            let error = await expectRPCError(.unknown) {
                _ = try await client.clientStreaming(
                    request: StreamingClientRequest<String> { writer in
                        try await writer.write("a")
                        throw ProducerFailed()
                    },
                    descriptor: Echo.collect,
                    serializer: codec,
                    deserializer: codec
                ) { try $0.message }
            }
            #expect(error?.cause is ProducerFailed)
        }
    }
}

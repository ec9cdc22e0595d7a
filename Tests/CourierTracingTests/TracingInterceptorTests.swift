import Courier
import CourierInMemory
import CourierTracing
import InMemoryTracing
import Testing
import Tracing

/// Strings as UTF-8.
struct UTF8Codec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(message.utf8) }
    func deserialize(_ buffer: MessageBuffer) throws -> String { String(decoding: buffer, as: UTF8.self) }
}

enum Methods {
    static let get = MethodDescriptor(fullyQualifiedService: "echo.v1.Echo", method: "Get")
    static let fail = MethodDescriptor(fullyQualifiedService: "echo.v1.Echo", method: "Fail")
    static let outer = MethodDescriptor(fullyQualifiedService: "echo.v1.Echo", method: "Outer")
    static let outerStream = MethodDescriptor(fullyQualifiedService: "echo.v1.Echo", method: "OuterStream")
}

/// `Get` echoes; `Fail` throws INTERNAL; `Outer` and `OuterStream` call `Get` through `client` (no tracing
/// code in the handlers).
struct TracedService: RegistrableRPCService {
    let client: CourierClient?

    func registerMethods(with router: inout RPCRouter) {
        let codec = UTF8Codec()
        let client = self.client
        router.registerUnary(forMethod: Methods.get, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(message: request.message)
        }
        router.registerUnary(forMethod: Methods.fail, deserializer: codec, serializer: codec) { _, _ in
            throw RPCError(code: .internal, message: "Broken.")
        }
        router.registerUnary(forMethod: Methods.outer, deserializer: codec, serializer: codec) { request, _ in
            let inner = try await client!.unary(
                request: ClientRequest(message: request.message),
                descriptor: Methods.get,
                serializer: codec,
                deserializer: codec
            )
            return ServerResponse(message: "outer:" + inner)
        }
        router.registerServerStreaming(forMethod: Methods.outerStream, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                let inner = try await client!.unary(
                    request: ClientRequest(message: request.message),
                    descriptor: Methods.get,
                    serializer: codec,
                    deserializer: codec
                )
                try await writer.write(inner)
                return [:]
            }
        }
    }
}

@Suite("OpenTelemetry RPC spans")
struct TracingInterceptorTests {
    let codec = UTF8Codec()

    /// Runs a traced server whose handlers call it back through the traced client `body` gets.
    func withTracedRPC(
        tracer: InMemoryTracer,
        _ body: (CourierClient) async throws -> Void
    ) async throws {
        let transport = InMemoryTransport()
        // One client, used by the test and by the handlers (which call the same server back).
        let client = CourierClient(
            transport: transport.client,
            interceptors: [ClientTracingInterceptor(target: "dns:///example.com:443", tracer: tracer)]
        )
        try await withCourierServer(
            transport: transport.server,
            services: [TracedService(client: client)],
            interceptors: [ServerTracingInterceptor(tracer: tracer)]
        ) { _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                try await body(client)
                client.beginGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("A unary call makes a client span and a server span, the server's parented by the client's")
    func unary() async throws {
        let tracer = InMemoryTracer()
        try await withTracedRPC(tracer: tracer) { client in
            let reply = try await client.unary(
                request: ClientRequest(message: "hi"),
                descriptor: Methods.get,
                serializer: codec,
                deserializer: codec
            )
            #expect(reply == "hi")
        }
        let spans = tracer.finishedSpans
        for span in spans {
            print("span: \(span.operationName) kind=\(span.kind) attributes=\(span.attributes)")
        }
        #expect(spans.count == 2)
        let clientSpan = try #require(spans.first { $0.kind == .client })
        let serverSpan = try #require(spans.first { $0.kind == .server })
        #expect(clientSpan.operationName == "echo.v1.Echo/Get")
        #expect(serverSpan.operationName == "echo.v1.Echo/Get")
        #expect(serverSpan.traceID == clientSpan.traceID)
        #expect(serverSpan.parentSpanID == clientSpan.spanID)
        for span in [clientSpan, serverSpan] {
            #expect(span.attributes.get("rpc.system") == .string("grpc"))
            #expect(span.attributes.get("rpc.service") == .string("echo.v1.Echo"))
            #expect(span.attributes.get("rpc.method") == .string("Get"))
            #expect(span.attributes.get("rpc.grpc.status_code") == .int64(0))
            #expect(span.status == nil)
        }
        #expect(clientSpan.attributes.get("server.address") == .string("example.com"))
        #expect(clientSpan.attributes.get("server.port") == .int64(443))
        #expect(serverSpan.attributes.get("network.peer.address") == .string("in-memory"))
    }

    @Test("A failed call records the error and the status code on both spans")
    func failure() async throws {
        let tracer = InMemoryTracer()
        try await withTracedRPC(tracer: tracer) { client in
            await #expect(throws: RPCError.self) {
                _ = try await client.unary(
                    request: ClientRequest(message: "x"),
                    descriptor: Methods.fail,
                    serializer: codec,
                    deserializer: codec
                )
            }
        }
        let spans = tracer.finishedSpans
        #expect(spans.count == 2)
        for span in spans {
            #expect(span.attributes.get("rpc.grpc.status_code") == .int64(13))
            #expect(span.status?.code == .error)
            #expect(span.errors.count == 1)
        }
    }

    @Test(
        "A call made inside a handler is a child of the handler's span, with no code in the handler",
        arguments: [Methods.outer, Methods.outerStream]
    )
    func nested(method: MethodDescriptor) async throws {
        let tracer = InMemoryTracer()
        try await withTracedRPC(tracer: tracer) { client in
            let reply = try await client.serverStreaming(
                request: ClientRequest(message: "n"),
                descriptor: method,
                serializer: codec,
                deserializer: codec
            ) { response in
                var replies: [String] = []
                for try await message in response.messages { replies.append(message) }
                return replies
            }
            #expect(reply == [method == Methods.outer ? "outer:n" : "n"])
        }
        let spans = tracer.finishedSpans
        #expect(spans.count == 4)
        let outerClient = try #require(
            spans.first { $0.kind == .client && $0.operationName == method.path.dropFirst() }
        )
        let outerServer = try #require(
            spans.first { $0.kind == .server && $0.operationName == method.path.dropFirst() }
        )
        let innerClient = try #require(spans.first { $0.kind == .client && $0.operationName == "echo.v1.Echo/Get" })
        let innerServer = try #require(spans.first { $0.kind == .server && $0.operationName == "echo.v1.Echo/Get" })
        #expect(outerServer.parentSpanID == outerClient.spanID)
        #expect(innerClient.parentSpanID == outerServer.spanID)
        #expect(innerServer.parentSpanID == innerClient.spanID)
        #expect(Set(spans.map(\.traceID)).count == 1)
        #expect(innerClient.attributes.get("server.address") == .string("example.com"))
    }

    @Test("With NoOpTracer the interceptors drop out of the chain; with a real tracer they stay")
    func noOpTracer() {
        #expect(ServerTracingInterceptor(tracer: NoOpTracer()).passesEveryRPCThrough)
        #expect(ClientTracingInterceptor(tracer: NoOpTracer()).passesEveryRPCThrough)
        #expect(!ServerTracingInterceptor(tracer: InMemoryTracer()).passesEveryRPCThrough)
        #expect(!ClientTracingInterceptor(tracer: InMemoryTracer()).passesEveryRPCThrough)
    }
}

import CoreMetrics
import Courier
import CourierHTTP2
import CourierInMemory
import CourierMetrics
import MetricsTestKit
import Testing

/// Strings as UTF-8.
struct UTF8Codec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(message.utf8) }
    func deserialize(_ buffer: MessageBuffer) throws -> String { String(decoding: buffer, as: UTF8.self) }
}

enum Echo {
    static let get = MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Get")
    static let fail = MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Fail")
    static let expand = MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Expand")
}

/// `Get` echoes, `Fail` throws NOT_FOUND, `Expand` sends each word.
struct EchoService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        let codec = UTF8Codec()
        router.registerUnary(forMethod: Echo.get, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(message: request.message)
        }
        router.registerUnary(forMethod: Echo.fail, deserializer: codec, serializer: codec) { _, _ in
            throw RPCError(code: .notFound, message: "No such thing.")
        }
        router.registerServerStreaming(forMethod: Echo.expand, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for word in request.message.split(separator: " ") { try await writer.write(String(word)) }
                return [:]
            }
        }
    }
}

/// `echo.Echo/Get` failing its first `failures` attempts with UNAVAILABLE (by `grpc-previous-rpc-attempts`).
struct FlakyEcho: RegistrableRPCService {
    let failures: Int

    func registerMethods(with router: inout RPCRouter) {
        let codec = UTF8Codec()
        let failures = self.failures
        router.registerUnary(forMethod: Echo.get, deserializer: codec, serializer: codec) { request, _ in
            let previous = Int(request.metadata.firstString(forKey: "grpc-previous-rpc-attempts") ?? "0") ?? 0
            if previous < failures { throw RPCError(code: .unavailable, message: "Try again.") }
            return ServerResponse(message: request.message)
        }
    }
}

@Suite("gRFC A66 metrics")
struct MetricsInterceptorTests {
    let codec = UTF8Codec()

    @Test("A unary call records every client and server instrument with method, target and status")
    func unaryOK() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        try await withCourierServer(
            transport: transport.server,
            services: [EchoService()],
            interceptors: [ServerMetricsInterceptor(factory: metrics)]
        ) { _ in
            try await withCourierClient(
                transport: transport.client,
                interceptors: [ClientMetricsInterceptor(target: "in-memory", factory: metrics)]
            ) { client in
                let reply = try await client.unary(
                    request: ClientRequest(message: "hello"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == "hello")
            }
        }
        let method = ("grpc.method", "echo.Echo/Get")
        let target = ("grpc.target", "in-memory")
        let ok = ("grpc.status", "OK")
        #expect(try metrics.expectCounter("grpc.client.attempt.started", [method, target]).totalValue == 1)
        #expect(try metrics.expectTimer("grpc.client.attempt.duration", [method, target, ok]).values.count == 1)
        #expect(try metrics.expectTimer("grpc.client.call.duration", [method, target, ok]).values.count == 1)
        #expect(
            try metrics.expectRecorder("grpc.client.attempt.sent_total_compressed_message_size", [method, target, ok])
                .values == [5]
        )
        #expect(
            try metrics.expectRecorder("grpc.client.attempt.rcvd_total_compressed_message_size", [method, target, ok])
                .values == [5]
        )
        #expect(try metrics.expectCounter("grpc.server.call.started", [method]).totalValue == 1)
        #expect(try metrics.expectTimer("grpc.server.call.duration", [method, ok]).values.count == 1)
        #expect(
            try metrics.expectRecorder("grpc.server.call.sent_total_compressed_message_size", [method, ok]).values
                == [5]
        )
        #expect(
            try metrics.expectRecorder("grpc.server.call.rcvd_total_compressed_message_size", [method, ok]).values
                == [5]
        )
        // The emitted names, for the record.
        let names = Set(
            metrics.counters.map(\.label) + metrics.timers.map(\.label) + metrics.recorders.map(\.label)
        )
        print("emitted instruments: \(names.sorted())")
    }

    @Test("A failed call and a server stream are labelled with their status; calls accumulate per status")
    func statusesAndStreams() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        try await withCourierServer(
            transport: transport.server,
            services: [EchoService()],
            interceptors: [ServerMetricsInterceptor(factory: metrics)]
        ) { _ in
            try await withCourierClient(
                transport: transport.client,
                interceptors: [ClientMetricsInterceptor(target: "t", factory: metrics)]
            ) { client in
                for _ in 0..<2 {
                    await #expect(throws: RPCError.self) {
                        _ = try await client.unary(
                            request: ClientRequest(message: "x"),
                            descriptor: Echo.fail,
                            serializer: codec,
                            deserializer: codec
                        )
                    }
                }
                let words = try await client.serverStreaming(
                    request: ClientRequest(message: "a bb ccc"),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    var words: [String] = []
                    for try await word in response.messages { words.append(word) }
                    return words
                }
                #expect(words == ["a", "bb", "ccc"])
            }
        }
        let fail = ("grpc.method", "echo.Echo/Fail")
        let notFound = ("grpc.status", "NOT_FOUND")
        #expect(try metrics.expectCounter("grpc.server.call.started", [fail]).totalValue == 2)
        #expect(try metrics.expectTimer("grpc.server.call.duration", [fail, notFound]).values.count == 2)
        #expect(
            try metrics.expectTimer("grpc.client.call.duration", [fail, ("grpc.target", "t"), notFound]).values.count
                == 2
        )
        let expand = ("grpc.method", "echo.Echo/Expand")
        let ok = ("grpc.status", "OK")
        #expect(
            try metrics.expectRecorder("grpc.server.call.sent_total_compressed_message_size", [expand, ok]).values
                == [6]
        )
        #expect(
            try metrics.expectRecorder(
                "grpc.client.attempt.rcvd_total_compressed_message_size",
                [expand, ("grpc.target", "t"), ok]
            ).values == [6]
        )
    }

    @Test("Methods of services outside the named set are labelled `other`")
    func otherMethods() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [EchoService()]) { _ in
            try await withCourierClient(
                transport: transport.client,
                interceptors: [ClientMetricsInterceptor(target: "t", services: ["ping.PingService"], factory: metrics)]
            ) { client in
                for method in ["A", "B", "C"] {
                    await #expect(throws: RPCError.self) {
                        _ = try await client.unary(
                            request: ClientRequest(message: "x"),
                            descriptor: MethodDescriptor(fullyQualifiedService: "scan.Scanner", method: method),
                            serializer: codec,
                            deserializer: codec
                        )
                    }
                }
            }
        }
        let other = ("grpc.method", "other")
        #expect(
            try metrics.expectCounter("grpc.client.attempt.started", [other, ("grpc.target", "t")]).totalValue == 3
        )
        #expect(metrics.counters(label: "grpc.client.attempt.started").count == 1)
        #expect(
            try metrics.expectTimer(
                "grpc.client.attempt.duration",
                [other, ("grpc.target", "t"), ("grpc.status", "UNIMPLEMENTED")]
            ).values.count == 3
        )
    }

    @Test("A server counts calls to methods it doesn't serve under `other`, with UNIMPLEMENTED (gRFC A66)")
    func serverUnregisteredMethods() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        try await withCourierServer(
            transport: transport.server,
            services: [EchoService()],
            interceptors: [ServerMetricsInterceptor(factory: metrics)]
        ) { _ in
            try await withCourierClient(transport: transport.client) { client in
                for method in ["A", "B", "C"] {
                    let error = await #expect(throws: RPCError.self) {
                        _ = try await client.unary(
                            request: ClientRequest(message: "x"),
                            descriptor: MethodDescriptor(fullyQualifiedService: "scan.Scanner", method: method),
                            serializer: codec,
                            deserializer: codec
                        )
                    }
                    #expect(error?.code == .unimplemented)
                }
            }
        }
        let other = ("grpc.method", "other")
        #expect(try metrics.expectCounter("grpc.server.call.started", [other]).totalValue == 3)
        #expect(metrics.counters(label: "grpc.server.call.started").count == 1)
        let unimplemented = ("grpc.status", "UNIMPLEMENTED")
        #expect(try metrics.expectTimer("grpc.server.call.duration", [other, unimplemented]).values.count == 3)
        #expect(
            try metrics.expectRecorder("grpc.server.call.rcvd_total_compressed_message_size", [other, unimplemented])
                .values == [0, 0, 0]
        )
    }

    @Test("A server interceptor applied to some methods only doesn't see unknown methods")
    func serverUnregisteredMethodsConditional() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        let server = CourierServer(
            transport: transport.server,
            services: [EchoService()],
            interceptors: [.apply(ServerMetricsInterceptor(factory: metrics), to: .services(["echo.Echo"]))]
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await withCourierClient(transport: transport.client) { client in
                await #expect(throws: RPCError.self) {
                    _ = try await client.unary(
                        request: ClientRequest(message: "x"),
                        descriptor: MethodDescriptor(fullyQualifiedService: "scan.Scanner", method: "A"),
                        serializer: codec,
                        deserializer: codec
                    )
                }
                // The interceptor still applies to its own service.
                _ = try await client.unary(
                    request: ClientRequest(message: "x"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            server.beginGracefulShutdown()
            try await group.waitForAll()
        }
        #expect(
            try metrics.expectCounter("grpc.server.call.started", [("grpc.method", "echo.Echo/Get")]).totalValue == 1
        )
        #expect(metrics.counters(label: "grpc.server.call.started").count == 1)
    }

    @Test("A client stream abandoned before its end records the call as CANCELLED")
    func clientAbandonedBody() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [EchoService()]) { _ in
            try await withCourierClient(
                transport: transport.client,
                interceptors: [ClientMetricsInterceptor(target: "t", factory: metrics)]
            ) { client in
                // Read the first word only, then leave.
                let first = try await client.serverStreaming(
                    request: ClientRequest(message: "a bb ccc"),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    var iterator = response.messages.makeAsyncIterator()
                    return try await iterator.next()
                }
                #expect(first == "a")
                // Never read at all.
                try await client.serverStreaming(
                    request: ClientRequest(message: "a bb ccc"),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec
                ) { _ in }
            }
        }
        let expand = ("grpc.method", "echo.Echo/Expand")
        let target = ("grpc.target", "t")
        #expect(try metrics.expectCounter("grpc.client.attempt.started", [expand, target]).totalValue == 2)
        #expect(
            try metrics.expectTimer("grpc.client.call.duration", [expand, target, ("grpc.status", "CANCELLED")])
                .values.count == 2
        )
    }

    @Test("With a retry policy each attempt is recorded with its own status; the call once, with the last")
    func retryAttempts() async throws {
        let metrics = TestMetrics()
        let transport = InMemoryTransport()
        // Fails the first two attempts with UNAVAILABLE, then echoes.
        let flaky = FlakyEcho(failures: 2)
        let policy = RetryPolicy(
            maxAttempts: 4,
            initialBackoff: .milliseconds(1),
            maxBackoff: .milliseconds(1),
            backoffMultiplier: 1,
            retryableStatusCodes: [.unavailable]
        )
        let configuration = CourierClient.Configuration(
            serviceConfig: ServiceConfig(
                methodConfig: [MethodConfig(names: [.init(service: "echo.Echo")], executionPolicy: .retry(policy))]
            )
        )
        try await withCourierServer(transport: transport.server, services: [flaky]) { _ in
            try await withCourierClient(
                transport: transport.client,
                interceptors: [.apply(ClientMetricsInterceptor(target: "t", factory: metrics), to: .all)],
                configuration: configuration
            ) { client in
                let reply = try await client.unary(
                    request: ClientRequest(message: "hello"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == "hello")
            }
        }
        let method = ("grpc.method", "echo.Echo/Get")
        let target = ("grpc.target", "t")
        let ok = ("grpc.status", "OK")
        let unavailable = ("grpc.status", "UNAVAILABLE")
        #expect(try metrics.expectCounter("grpc.client.attempt.started", [method, target]).totalValue == 3)
        #expect(
            try metrics.expectTimer("grpc.client.attempt.duration", [method, target, unavailable]).values.count == 2
        )
        #expect(try metrics.expectTimer("grpc.client.attempt.duration", [method, target, ok]).values.count == 1)
        #expect(try metrics.expectTimer("grpc.client.call.duration", [method, target, ok]).values.count == 1)
        #expect(
            (try? metrics.expectTimer("grpc.client.call.duration", [method, target, unavailable]).values.isEmpty)
                ?? true
        )
        #expect(
            try metrics.expectRecorder("grpc.client.attempt.rcvd_total_compressed_message_size", [method, target, ok])
                .values == [5]
        )
    }

    @Test("Over HTTP/2 with gzip, sizes are the compressed bytes; connection and stream gauges move")
    func http2CompressedSizesAndGauges() async throws {
        let metrics = TestMetrics()
        var serverConfiguration = HTTP2ServerTransport.Configuration()
        serverConfiguration.loops = 1
        serverConfiguration.connectionObserver = ConnectionMetrics(side: .server, factory: metrics)
        let serverTransport = HTTP2ServerTransport(
            address: .ipv4(host: "127.0.0.1", port: 0),
            configuration: serverConfiguration
        )
        let message = String(repeating: "compressible ", count: 200)  // 2,600 bytes
        try await withCourierServer(
            transport: serverTransport,
            services: [EchoService()],
            interceptors: [ServerMetricsInterceptor(factory: metrics)]
        ) { _ in
            let port = try await serverTransport.listeningAddress().port ?? 0
            var clientConfiguration = HTTP2ClientTransport.Configuration()
            clientConfiguration.connectionObserver = ConnectionMetrics(side: .client, factory: metrics)
            let target = "127.0.0.1:\(port)"
            try await withCourierClient(
                transport: try HTTP2ClientTransport(target: target, configuration: clientConfiguration),
                interceptors: [ClientMetricsInterceptor(target: target, factory: metrics)]
            ) { client in
                var options = CallOptions.defaults
                options.compression = .gzip
                let reply = try await client.unary(
                    request: ClientRequest(message: message),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec,
                    options: options
                )
                #expect(reply == message)
                #expect(try metrics.expectMeter("courier.client.connections").values.last == 1)
                #expect(try metrics.expectMeter("courier.server.connections").values.last == 1)
                #expect(try metrics.expectMeter("courier.client.streams").values.contains(1))
            }
            let method = ("grpc.method", "echo.Echo/Get")
            let ok = ("grpc.status", "OK")
            let received = try metrics.expectRecorder(
                "grpc.server.call.rcvd_total_compressed_message_size",
                [method, ok]
            ).values
            #expect(received.count == 1)
            #expect((received.first ?? 0) > 0 && (received.first ?? .infinity) < 200, "\(received)")
            let sent = try metrics.expectRecorder(
                "grpc.client.attempt.sent_total_compressed_message_size",
                [method, ("grpc.target", target), ok]
            ).values
            #expect(sent == received)
        }
        #expect(try metrics.expectMeter("courier.client.connections").values.last == 0)
        #expect(try metrics.expectMeter("courier.client.streams").values.last == 0)
        #expect(try metrics.expectMeter("courier.server.streams").values.last == 0)
    }

    @Test("On swift-metrics' no-op factory the interceptors drop out of the chain; on a real one they stay")
    func noOpBackend() {
        #expect(ServerMetricsInterceptor(factory: NOOPMetricsHandler.instance).passesEveryRPCThrough)
        #expect(ClientMetricsInterceptor(target: "t", factory: NOOPMetricsHandler.instance).passesEveryRPCThrough)
        #expect(!ServerMetricsInterceptor(factory: TestMetrics()).passesEveryRPCThrough)
        #expect(!ClientMetricsInterceptor(target: "t", factory: TestMetrics()).passesEveryRPCThrough)
    }
}

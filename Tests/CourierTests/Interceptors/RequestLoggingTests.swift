import Courier
import CourierHTTP2
import CourierInMemory
import InMemoryLogging
import Logging
import Testing

@Suite("Request logging and transport connection logs")
struct RequestLoggingTests {
    let codec = UTF8Codec()

    @Test("One line per RPC: method, peer, status, duration; never tokens or -bin values")
    func oneLinePerRPC() async throws {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "test", factory: { _ in handler })
        let logging = RequestLoggingInterceptor(
            logger: logger,
            metadataKeys: ["x-request-id", "authorization", "x-trace-bin"]
        )
        try await withTestRPC(serverInterceptors: [logging], transport: InMemoryTransport()) { client in
            var metadata: Metadata = ["x-request-id": "42", "authorization": "Bearer secret-token"]
            metadata.addBinary([1, 2, 3], forKey: "x-trace-bin")
            _ = try await client.unary(
                request: ClientRequest(message: "hi", metadata: metadata),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
            await expectRPCError(.unimplemented) {
                _ = try await client.unary(
                    request: ClientRequest(message: "hi"),
                    descriptor: MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Missing"),
                    serializer: codec,
                    deserializer: codec
                )
            }
            let words = try await client.serverStreaming(
                request: ClientRequest(message: "a b"),
                descriptor: Echo.expand,
                serializer: codec,
                deserializer: codec
            ) { response in
                var words: [String] = []
                for try await word in response.messages { words.append(word) }
                return words
            }
            #expect(words == ["a", "b"])
        }
        let entries = handler.entries
        // The unknown method gets its line too, though no interceptor runs for it.
        #expect(entries.count == 3)
        let first = try #require(entries.first)
        #expect(first.message == "rpc")
        #expect(first.level == .info)
        #expect(first.metadata["rpc.method"] == "/echo.Echo/Get")
        #expect(first.metadata["rpc.grpc.status_code"] == "OK")
        #expect(first.metadata["network.peer.address"] == "in-memory")
        #expect(first.metadata["courier.duration_ms"] != nil)
        #expect(first.metadata["rpc.request.metadata.x-request-id"] == "42")
        #expect(first.metadata["rpc.request.metadata.authorization"] == nil)
        #expect(first.metadata["rpc.request.metadata.x-trace-bin"] == nil)
        let unknown = entries[1]
        #expect(unknown.metadata["rpc.method"] == "/echo.Echo/Missing")
        #expect(unknown.metadata["rpc.grpc.status_code"] == "UNIMPLEMENTED")
        #expect(unknown.metadata["network.peer.address"] == "in-memory")
        #expect(unknown.level == .info)
        #expect(entries.last?.metadata["rpc.method"] == "/echo.Echo/Expand")
        let text = entries.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(!text.contains("secret-token"))
    }

    @Test("A server-side failure logs at warning")
    func serverFailureIsWarning() async throws {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "test", factory: { _ in handler })
        let failing = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) { _, _ in
                throw RPCError(code: .internal, message: "Broken.")
            }
        }
        try await withTestRPC(
            services: [failing],
            serverInterceptors: [RequestLoggingInterceptor(logger: logger)],
            transport: InMemoryTransport()
        ) { client in
            await expectRPCError(.internal) {
                _ = try await client.unary(
                    request: ClientRequest(message: "x"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
        }
        #expect(handler.entries.map(\.level) == [.warning])
        #expect(handler.entries.first?.metadata["rpc.grpc.status_code"] == "INTERNAL")
    }

    @Test("The HTTP/2 transports log connection events to the logger in their configuration")
    func transportConnectionEvents() async throws {
        let serverLogs = InMemoryLogHandler()
        let clientLogs = InMemoryLogHandler()
        var serverHandler = serverLogs
        serverHandler.logLevel = .debug
        var clientHandler = clientLogs
        clientHandler.logLevel = .debug
        var serverConfiguration = HTTP2ServerTransport.Configuration()
        serverConfiguration.loops = 1
        serverConfiguration.logger = Logger(label: "server", factory: { [serverHandler] _ in serverHandler })
        let transport = HTTP2ServerTransport(
            address: .ipv4(host: "127.0.0.1", port: 0),
            configuration: serverConfiguration
        )
        try await withCourierServer(transport: transport, services: [EchoService()]) { server in
            let port = try await transport.listeningAddress().port ?? 0
            var clientConfiguration = HTTP2ClientTransport.Configuration()
            clientConfiguration.logger = Logger(label: "client", factory: { [clientHandler] _ in clientHandler })
            let clientTransport = try HTTP2ClientTransport(
                target: "127.0.0.1:\(port)",
                configuration: clientConfiguration
            )
            try await withCourierClient(transport: clientTransport) { client in
                _ = try await client.unary(
                    request: ClientRequest(message: "hi"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
                server.beginGracefulShutdown()
                // Leave only once the server's drain has reached the connection (its GOAWAY, which it logs
                // first): closing the client earlier could end the connection before the server drains it.
                _ = await clientTransport.waitForStateChange(from: .ready)
            }
        }
        let serverMessages = serverLogs.entries.map(\.message.description)
        let clientMessages = clientLogs.entries.map(\.message.description)
        print("server transport logged: \(serverMessages)")
        print("client transport logged: \(clientMessages)")
        #expect(serverMessages.first == "Connection accepted")
        #expect(serverMessages.contains("Sending GOAWAY (drain begins)"))
        #expect(serverMessages.contains("Connection closed"))
        #expect(
            serverLogs.entries.first?.metadata["network.peer.address"]?.description.hasPrefix("ipv4:127.0.0.1:") == true
        )
        #expect(clientMessages.first == "Connected")
        // The client may close before the server's GOAWAY reaches it: only its own close is certain.
        #expect(clientMessages.last == "Connection closed")
    }
}

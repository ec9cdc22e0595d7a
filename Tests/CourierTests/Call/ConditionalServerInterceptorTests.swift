import Courier
import CourierInMemory
import Testing

/// Logs `<tag> <method path>` for each RPC it sees.
struct TaggingServerInterceptor: ServerInterceptor {
    let tag: String
    let log: EventLog

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        log.append("\(tag) \(context.descriptor.path)")
        return try await next(request, context)
    }
}

enum Other {
    static let service = ServiceDescriptor(package: "other", service: "Other")
    static let get = MethodDescriptor(service: service, method: "Get")
}

/// `other.Other/Get`: echoes its request.
let otherService = ClosureService { router in
    router.registerUnary(forMethod: Other.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) { request, _ in
        ServerResponse(message: request.message)
    }
}

@Suite("Conditional interceptors on the server")
struct ConditionalServerInterceptorTests {
    /// Serves `echo.Echo` and `other.Other` with `interceptors`, calls each method in `calls` once, and
    /// returns the log.
    func served(
        _ interceptors: (EventLog) -> [ConditionalInterceptor<any ServerInterceptor>],
        calling calls: [MethodDescriptor]
    ) async throws -> [String] {
        let log = EventLog()
        let transport = InMemoryTransport()
        let server = CourierServer(
            transport: transport.server,
            services: [EchoService(), otherService],
            interceptors: interceptors(log)
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await withCourierClient(transport: transport.client) { client in
                for descriptor in calls {
                    let codec = UTF8Codec()
                    if descriptor == Echo.expand {
                        try await client.serverStreaming(
                            request: ClientRequest(message: "a"),
                            descriptor: descriptor,
                            serializer: codec,
                            deserializer: codec
                        ) { response in for try await _ in response.messages {} }
                    } else {
                        let reply = try await client.unary(
                            request: ClientRequest(message: "m"),
                            descriptor: descriptor,
                            serializer: codec,
                            deserializer: codec
                        )
                        #expect(reply == "m")
                    }
                }
            }
            server.beginGracefulShutdown()
            try await group.waitForAll()
        }
        return log.all
    }

    @Test("By service: only that service's methods")
    func byService() async throws {
        let log = try await served(
            { [.apply(TaggingServerInterceptor(tag: "echo", log: $0), to: .services([Echo.service]))] },
            calling: [Echo.get, Other.get, Echo.expand]
        )
        #expect(log == ["echo /echo.Echo/Get", "echo /echo.Echo/Expand"])
    }

    @Test("By method, by service name, by predicate, and everything but some methods, in order")
    func byMethodAndPredicate() async throws {
        let log = try await served(
            { log in
                [
                    .apply(TaggingServerInterceptor(tag: "method", log: log), to: .methods([Other.get])),
                    .apply(TaggingServerInterceptor(tag: "name", log: log), to: .services(["echo.Echo"])),
                    .apply(
                        TaggingServerInterceptor(tag: "predicate", log: log),
                        to: .matching { $0.method == "Get" }
                    ),
                    .apply(TaggingServerInterceptor(tag: "but", log: log), to: .all.excluding(methods: [Echo.get])),
                ]
            },
            calling: [Echo.get, Other.get, Echo.expand]
        )
        #expect(
            log == [
                "name /echo.Echo/Get", "predicate /echo.Echo/Get",
                "method /other.Other/Get", "predicate /other.Other/Get", "but /other.Other/Get",
                "name /echo.Echo/Expand", "but /echo.Echo/Expand",
            ]
        )
    }

    @Test("Unconditional and conditional together: .all applies everywhere, first")
    func allAndSome() async throws {
        let log = try await served(
            { log in
                [
                    .apply(TaggingServerInterceptor(tag: "all", log: log), to: .all),
                    .apply(TaggingServerInterceptor(tag: "other", log: log), to: .services([Other.service])),
                ]
            },
            calling: [Echo.get, Other.get]
        )
        #expect(log == ["all /echo.Echo/Get", "all /other.Other/Get", "other /other.Other/Get"])
    }
}

import Courier
import CourierInMemory
import Testing

/// Records its name on the way in and out, and each message it sees.
struct RecordingServerInterceptor: ServerInterceptor {
    let name: String
    let log: EventLog

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        log.append("\(name) request")
        var request = request
        request.metadata.addString(name, forKey: "x-seen-by")
        let name = self.name
        let log = self.log
        request.messages = RPCAsyncSequence(
            wrapping: request.messages.map { message in
                log.append("\(name) in \(message)")
                return message
            }
        )
        var response = try await next(request, context)
        log.append("\(name) response")
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in
                try await producer(
                    RPCWriter(
                        wrapping: MappingRPCWriter(base: writer) { message in
                            log.append("\(name) out \(message)")
                            return message
                        }
                    )
                )
            }
            response.accepted = .success(contents)
        }
        return response
    }
}

struct RecordingClientInterceptor: ClientInterceptor {
    let name: String
    let log: EventLog

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        log.append("\(name) request")
        var request = request
        request.metadata.addString(name, forKey: "x-seen-by")
        let producer = request.producer
        let name = self.name
        let log = self.log
        request.producer = { writer in
            try await producer(
                RPCWriter(
                    wrapping: MappingRPCWriter(base: writer) { message in
                        log.append("\(name) out \(message)")
                        return message
                    }
                )
            )
        }
        let response = try await next(request, context)
        log.append("\(name) response")
        return response
    }
}

struct RejectingServerInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        throw RPCError(code: .permissionDenied, message: "rejected by interceptor")
    }
}

struct RejectingClientInterceptor: ClientInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        throw RPCError(code: .failedPrecondition, message: "rejected on the client")
    }
}

@Suite("Interceptors")
struct InterceptorTests {
    let codec = UTF8Codec()

    /// Echoes each message, and the `x-seen-by` metadata as the first response.
    var seenByService: ClosureService {
        ClosureService { router in
            router.registerBidirectionalStreaming(
                forMethod: Echo.update,
                deserializer: UTF8Codec(),
                serializer: UTF8Codec()
            ) {
                request,
                _ in
                StreamingServerResponse { writer in
                    try await writer.write(request.metadata[stringValues: "x-seen-by"].joined(separator: ","))
                    for try await message in request.messages { try await writer.write(message) }
                    return [:]
                }
            }
        }
    }

    @Test("Client and server chains run in order, see metadata and every message")
    func order() async throws {
        let clientLog = EventLog()
        let serverLog = EventLog()
        let received = try await withTestRPC(
            services: [seenByService],
            clientInterceptors: [
                RecordingClientInterceptor(name: "c1", log: clientLog),
                RecordingClientInterceptor(name: "c2", log: clientLog),
            ],
            serverInterceptors: [
                RecordingServerInterceptor(name: "s1", log: serverLog),
                RecordingServerInterceptor(name: "s2", log: serverLog),
            ]
        ) { client in
            try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { writer in try await writer.write("m") },
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response in
                var received: [String] = []
                for try await message in response.messages { received.append(message) }
                return received
            }
        }
        #expect(received == ["c1,c2,s1,s2", "m"])
        // The request producer runs concurrently with the response in a bidirectional call, so only
        // the order within each direction is fixed.
        #expect(
            clientLog.all.filter { !$0.contains("out") } == ["c1 request", "c2 request", "c2 response", "c1 response"]
        )
        // The first interceptor sees an outgoing request message first.
        #expect(clientLog.all.filter { $0.contains("out") } == ["c1 out m", "c2 out m"])
        #expect(
            serverLog.all == [
                "s1 request", "s2 request", "s2 response", "s1 response",
                "s2 out c1,c2,s1,s2", "s1 out c1,c2,s1,s2", "s1 in m", "s2 in m", "s2 out m", "s1 out m",
            ]
        )
    }

    @Test("A server interceptor that rejects stops the chain: the handler never runs")
    func serverShortCircuit() async throws {
        let handled = Counter()
        let log = EventLog()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                handled.increment()
                return ServerResponse(message: request.message)
            }
        }
        try await withTestRPC(
            services: [service],
            serverInterceptors: [
                RecordingServerInterceptor(name: "s1", log: log), RejectingServerInterceptor(),
                RecordingServerInterceptor(name: "never", log: log),
            ]
        ) { client in
            let error = await expectRPCError(.permissionDenied) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            #expect(error?.message == "rejected by interceptor")
        }
        #expect(handled.current == 0)
        #expect(log.all == ["s1 request"])
    }

    @Test("A client interceptor that rejects: nothing reaches the server")
    func clientShortCircuit() async throws {
        let log = EventLog()
        try await withTestRPC(
            clientInterceptors: [RejectingClientInterceptor()],
            serverInterceptors: [RecordingServerInterceptor(name: "s", log: log)]
        ) { client in
            await expectRPCError(.failedPrecondition) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
        }
        #expect(log.all.isEmpty)
    }

    @Test("The interceptor's context names the method and deadline")
    func context() async throws {
        struct ContextCheck: ServerInterceptor {
            let log: EventLog
            func intercept<Input: Sendable, Output: Sendable>(
                request: StreamingServerRequest<Input>,
                context: ServerContext,
                next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
            ) async throws -> StreamingServerResponse<Output> {
                log.append(
                    "\(context.descriptor.path) \(context.peer) \(context.timeRemaining.map { "\($0)" } ?? "none")"
                )
                return try await next(request, context)
            }
        }
        let log = EventLog()
        let clock = ManualRPCClock()
        try await withTestRPC(serverInterceptors: [ContextCheck(log: log)], transport: InMemoryTransport(clock: clock))
        {
            client in
            _ = try await client.unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec,
                options: CallOptions(timeout: .seconds(2))
            )
        }
        #expect(log.all == ["/echo.Echo/Get in-memory 2.0 seconds"])
    }
}

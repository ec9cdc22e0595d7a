import CourierInMemory
import Synchronization
import Testing

@testable import Courier

@Suite("Retries and hedging end to end, over the in-memory transport")
struct RetryTests {
    /// Echo.Get fails with UNAVAILABLE (and `pushback`, if given) while `grpc-previous-rpc-attempts` is below `succeedAt`.
    static func flaky(succeedAt: Int, seen: EventLog, pushback: String? = nil) -> ClosureService {
        ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                let previous = request.metadata.firstString(forKey: "grpc-previous-rpc-attempts") ?? "none"
                seen.append(previous)
                if (Int(previous) ?? 0) < succeedAt {
                    var trailers: Metadata = [:]
                    if let pushback { trailers.addString(pushback, forKey: "grpc-retry-pushback-ms") }
                    throw RPCError(code: .unavailable, message: "try again", metadata: trailers)
                }
                return ServerResponse(message: request.message + "@\(previous)")
            }
        }
    }

    static func config(
        _ policy: MethodConfig.ExecutionPolicy,
        throttling: RetryThrottling? = nil
    ) -> CourierClient.Configuration {
        .init(
            serviceConfig: ServiceConfig(
                methodConfig: [MethodConfig(names: [.init(service: "echo.Echo")], executionPolicy: policy)],
                retryThrottling: throttling
            )
        )
    }

    static let retry = MethodConfig.ExecutionPolicy.retry(
        RetryPolicy(
            maxAttempts: 4,
            initialBackoff: .milliseconds(1),
            maxBackoff: .milliseconds(1),
            backoffMultiplier: 1,
            retryableStatusCodes: [.unavailable]
        )
    )

    @discardableResult
    func run<R: Sendable>(
        _ service: ClosureService,
        _ configuration: CourierClient.Configuration,
        interceptors: [ConditionalInterceptor<any ClientInterceptor>] = [],
        clock: any RPCClock = .system,
        _ body: (CourierClient) async throws -> R
    ) async throws -> R {
        let transport = InMemoryTransport(clock: clock)
        return try await withCourierServer(transport: transport.server, services: [service]) { _ in
            let client = CourierClient(
                transport: transport.client,
                interceptors: interceptors,
                validated: configuration,
                random: { 0 }
            )
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { client.beginGracefulShutdown() }
                return try await body(client)
            }
        }
    }

    @Test("A call failing twice with UNAVAILABLE succeeds on the third attempt; interceptors see it once")
    func retriesUntilSuccess() async throws {
        let seen = EventLog()
        let intercepted = EventLog()
        let reply = try await run(
            Self.flaky(succeedAt: 2, seen: seen),
            Self.config(Self.retry),
            interceptors: [.apply(RecordingInterceptor(log: intercepted), to: .all)]
        ) { client in
            try await client.unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: UTF8Codec(),
                deserializer: UTF8Codec()
            )
        }
        #expect(reply == "m@2")
        #expect(seen.all == ["none", "1", "2"])
        #expect(intercepted.all == ["/echo.Echo/Get"])
    }

    @Test("Attempts used up: the last status is the call's")
    func attemptsUsedUp() async throws {
        let seen = EventLog()
        try await run(Self.flaky(succeedAt: 10, seen: seen), Self.config(Self.retry)) { client in
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: UTF8Codec(),
                    deserializer: UTF8Codec()
                )
            }
        }
        #expect(seen.all == ["none", "1", "2", "3"])
    }

    @Test("Server pushback of -1 stops retrying")
    func pushbackStops() async throws {
        let seen = EventLog()
        try await run(Self.flaky(succeedAt: 10, seen: seen, pushback: "-1"), Self.config(Self.retry)) { client in
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: UTF8Codec(),
                    deserializer: UTF8Codec()
                )
            }
        }
        #expect(seen.all == ["none"])
    }

    @Test("A request over the per-RPC buffer limit is committed: one attempt")
    func bufferLimitCommits() async throws {
        let seen = EventLog()
        var configuration = Self.config(Self.retry)
        configuration.retryBufferBytesPerRPC = 4
        try await run(Self.flaky(succeedAt: 1, seen: seen), configuration) { client in
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "larger than four"),
                    descriptor: Echo.get,
                    serializer: UTF8Codec(),
                    deserializer: UTF8Codec()
                )
            }
        }
        #expect(seen.all == ["none"])
    }

    @Test("Throttling stops retries once tokens fall to half")
    func throttled() async throws {
        let seen = EventLog()
        // 2 tokens: the first failure leaves 1, not above 1 — no retry.
        try await run(
            Self.flaky(succeedAt: 1, seen: seen),
            Self.config(Self.retry, throttling: .init(maxTokens: 2, tokenRatio: 0.1))
        ) { client in
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: UTF8Codec(),
                    deserializer: UTF8Codec()
                )
            }
        }
        #expect(seen.all == ["none"])
    }

    @Test("Hedging: a failing first attempt is followed at once; the call succeeds on the hedge")
    func hedging() async throws {
        let seen = EventLog()
        let policy = MethodConfig.ExecutionPolicy.hedging(
            HedgingPolicy(maxAttempts: 3, hedgingDelay: .seconds(3600), nonFatalStatusCodes: [.unavailable])
        )
        let reply = try await run(Self.flaky(succeedAt: 1, seen: seen), Self.config(policy)) { client in
            try await client.unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: UTF8Codec(),
                deserializer: UTF8Codec()
            )
        }
        #expect(reply == "m@1")
        #expect(seen.all == ["none", "1"])
    }

    @Test("Bidirectional: a request that overflows while the retry waits out its backoff reaches that retry whole")
    func bidirectionalOverflowDuringBackoff() async throws {
        let clock = ManualRPCClock()
        let seen = EventLog()
        let service = ClosureService { router in
            let codec = UTF8Codec()
            router.registerBidirectionalStreaming(forMethod: Echo.update, deserializer: codec, serializer: codec) {
                request,
                _ in
                let previous = request.metadata.firstString(forKey: "grpc-previous-rpc-attempts") ?? "none"
                seen.append(previous)
                if previous == "none" {
                    // Attempt 1 fails once its first message arrives, before any response header.
                    for try await _ in request.messages { break }
                    throw RPCError(code: .unavailable, message: "try again")
                }
                return StreamingServerResponse { writer in
                    var received: [String] = []
                    for try await message in request.messages { received.append(message) }
                    try await writer.write(received.joined(separator: ","))
                    return [:]
                }
            }
        }
        var configuration = Self.config(Self.retry)
        configuration.retryBufferBytesPerRPC = 8
        let reply = try await run(service, configuration, clock: clock) { client in
            // The retry starts once the clock moves past its backoff. Whether the coordinator sees the
            // overflow before or after that retry started, the retry must get the whole request (the
            // order in which the overflow comes first is pinned in RetryStateMachineTests).
            async let advance: Void = {
                await clock.waitForPendingTimers()
                clock.advance(by: .seconds(1))
            }()
            let replies = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { writer in
                    try await writer.write("a")
                    // Attempt 1 failed and its retry waits for the clock: the rest overflows the log
                    // (1 + 4 + 4 > 8 bytes) while no attempt reads it.
                    await clock.waitForPendingTimers()
                    try await writer.write(contentsOf: ["bbbb", "cccc", "dddd"])
                },
                descriptor: Echo.update,
                serializer: UTF8Codec(),
                deserializer: UTF8Codec()
            ) { response in
                var replies: [String] = []
                for try await reply in response.messages { replies.append(reply) }
                return replies
            }
            await advance
            return replies
        }
        #expect(reply == ["a,bbbb,cccc,dddd"])
        #expect(seen.all == ["none", "1"])
    }

    @Test("Conditional interceptors: only the methods of their subject")
    func conditional() async throws {
        let log = EventLog()
        let transport = InMemoryTransport()
        try await withCourierServer(
            transport: transport.server,
            services: [EchoService()]
        ) { _ in
            let client = CourierClient(
                transport: transport.client,
                interceptors: [
                    .apply(RecordingInterceptor(log: log), to: .methods([Echo.expand])),
                    .apply(RecordingInterceptor(log: log), to: .all.excluding(methods: [Echo.get])),
                ]
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { client.beginGracefulShutdown() }
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: UTF8Codec(),
                    deserializer: UTF8Codec()
                )
                #expect(log.all.isEmpty)
                try await client.serverStreaming(
                    request: ClientRequest(message: "a b"),
                    descriptor: Echo.expand,
                    serializer: UTF8Codec(),
                    deserializer: UTF8Codec()
                ) { response in for try await _ in response.messages {} }
                #expect(log.all == ["/echo.Echo/Expand", "/echo.Echo/Expand"])
            }
        }
    }
}

struct RecordingInterceptor: ClientInterceptor {
    let log: EventLog
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output> {
        log.append(context.descriptor.path)
        return try await next(request, context)
    }
}

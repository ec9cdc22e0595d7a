import Courier
import CourierInMemory
import Testing

@Suite("Graceful shutdown")
struct ShutdownTests {
    let codec = UTF8Codec()

    @Test("The server drains in-flight RPCs and refuses new ones")
    func serverDrains() async throws {
        let started = Counter()
        let allStarted = Signal()
        let release = Signal()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                if started.increment() == 5 { allStarted.fire() }
                await release.wait()
                return ServerResponse(message: request.message)
            }
        }
        let transport = InMemoryTransport()
        let server = CourierServer(transport: transport.server, services: [service])
        let client = CourierClient(transport: transport.client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let calls = Task {
                try await withThrowingTaskGroup(of: String.self, returning: [String].self) { calls in
                    for i in 0..<5 {
                        calls.addTask {
                            try await client.unary(
                                request: ClientRequest(message: "m\(i)"),
                                descriptor: Echo.get,
                                serializer: codec,
                                deserializer: codec
                            )
                        }
                    }
                    return try await calls.reduce(into: []) { $0.append($1) }
                }
            }
            await allStarted.wait()
            server.beginGracefulShutdown()

            // New RPCs are refused while the old ones are still running.
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "late"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            release.fire()
            let replies = try await calls.value
            #expect(Set(replies) == Set((0..<5).map { "m\($0)" }))
            try await group.waitForAll()  // run() returned after draining
        }
    }

    @Test(
        "A graceful shutdown's grace period: when it has passed, the RPCs still running are cancelled and run() returns"
    )
    func gracePeriod() async throws {
        let started = Signal()
        let cancelled = Signal()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) { _, _ in
                started.fire()
                let never = Signal()
                await withTaskCancellationHandler {
                    await never.wait()
                } onCancel: {
                    never.fire()
                    cancelled.fire()
                }
                throw CancellationError()
            }
        }
        let transport = InMemoryTransport()
        let server = CourierServer(transport: transport.server, services: [service])
        let client = CourierClient(transport: transport.client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let call = Task {
                try await client.unary(
                    request: ClientRequest(message: "held"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            await started.wait()
            server.beginGracefulShutdown(grace: .milliseconds(50))
            await cancelled.wait()  // the handler's task was cancelled when the grace had passed
            try await group.waitForAll()  // and run() returned
            await #expect(throws: RPCError.self) { try await call.value }
        }
    }

    @Test(
        "Without a grace period the drain waits for running RPCs however long they take; with one they finish in, run() returns normally",
        arguments: [nil, Duration.seconds(60)]
    )
    func noGracePeriod(grace: Duration?) async throws {
        let started = Signal()
        let release = Signal()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                started.fire()
                await release.wait()
                #expect(!Task.isCancelled)
                return ServerResponse(message: request.message)
            }
        }
        let transport = InMemoryTransport()
        let server = CourierServer(transport: transport.server, services: [service])
        let client = CourierClient(transport: transport.client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let call = Task {
                try await client.unary(
                    request: ClientRequest(message: "slow"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            await started.wait()
            server.beginGracefulShutdown(grace: grace)
            server.beginGracefulShutdown(grace: nil)  // a second call changes nothing
            release.fire()
            #expect(try await call.value == "slow")
            try await group.waitForAll()
        }
    }

    @Test("A client that has begun shutting down refuses new RPCs")
    func clientRefusesAfterShutdown() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [EchoService()]) { _ in
            let client = CourierClient(transport: transport.client)
            async let running: Void = client.run()
            let reply = try await client.unary(
                request: ClientRequest(message: "before"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
            #expect(reply == "before")
            client.beginGracefulShutdown()
            try await running
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "after"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
        }
    }

    @Test("run() can't be called twice")
    func runTwice() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [EchoService()]) { server in
            // An answered RPC proves the server is running.
            let reply = try await CourierClient(transport: transport.client).unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
            #expect(reply == "m")
            let error = await #expect(throws: RuntimeError.self) { try await server.run() }
            #expect(error?.code == .serverIsAlreadyRunning)
        }
    }
}

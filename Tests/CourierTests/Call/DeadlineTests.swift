import Courier
import CourierInMemory
import Testing

@Suite("Deadlines, on an injected clock")
struct DeadlineTests {
    let codec = UTF8Codec()

    @Test("On expiry the client fails with DEADLINE_EXCEEDED and the server's handler is cancelled")
    func expiryOnBothSides() async throws {
        let clock = ManualRPCClock()
        let started = Signal()
        let handlerCancelled = Signal()
        let deadlineSeen = EventLog()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                context in
                deadlineSeen.append("\(context.timeRemaining.map { "\($0)" } ?? "none")")
                started.fire()
                do {
                    try await waitUntilCancelled()
                } catch {
                    handlerCancelled.fire()
                    throw error
                }
                return ServerResponse(message: request.message)
            }
        }
        try await withTestRPC(services: [service], transport: InMemoryTransport(clock: clock)) { client in
            let call = echoCall(client, timeout: .seconds(5))
            await started.wait()
            #expect(deadlineSeen.all == ["5.0 seconds"])
            clock.advance(by: .seconds(4))
            #expect(!handlerCancelled.isFired)
            clock.advance(by: .seconds(1))
            await expectRPCError(.deadlineExceeded) { _ = try await call.value }
            await handlerCancelled.wait()
        }
    }

    @Test("The server enforces the deadline it received even when the client doesn't")
    func serverSideExpiry() async throws {
        let clock = ManualRPCClock()
        let started = Signal()
        let handlerCancelled = Signal()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                started.fire()
                do {
                    try await waitUntilCancelled()
                } catch {
                    handlerCancelled.fire()
                    throw error
                }
                return ServerResponse(message: request.message)
            }
        }
        let transport = InMemoryTransport(clock: clock)
        try await withCourierServer(transport: transport.server, services: [service]) { _ in
            // Drive the transport directly, as a client that sends a timeout but keeps no timer.
            try await transport.client.withStream(
                descriptor: Echo.get,
                options: CallOptions(timeout: .milliseconds(100))
            ) { stream in
                try await stream.write(.metadata([:]))
                try await stream.write(.message(MessageBuffer("m".utf8)))
                try await stream.finish()
                await started.wait()
                clock.advance(by: .milliseconds(100))
                guard case .status(let status, _) = try await stream.next() else {
                    Issue.record("Expected a Trailers-Only status")
                    return
                }
                #expect(status.code == .deadlineExceeded)
            }
            await handlerCancelled.wait()
        }
    }

    @Test("A deadline that has already passed fails the call before it is sent")
    func expiredBeforeStart() async throws {
        let clock = ManualRPCClock()
        let handled = Counter()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                handled.increment()
                return ServerResponse(message: request.message)
            }
        }
        try await withTestRPC(services: [service], transport: InMemoryTransport(clock: clock)) { client in
            await expectRPCError(.deadlineExceeded) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .zero)
                )
            }
        }
        #expect(handled.current == 0)
    }

    @Test("A call made inside a handler inherits the remaining deadline")
    func inheritance() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        let innerDeadline = EventLog()
        let outerDeadline = EventLog()
        let innerStarted = Signal()
        let innerCancelled = Signal()

        let inner = ServiceDescriptor(package: "echo", service: "Inner")
        let innerMethod = MethodDescriptor(service: inner, method: "Get")
        let service = ClosureService { router in
            let codec = UTF8Codec()
            router.registerUnary(forMethod: Echo.get, deserializer: codec, serializer: codec) { request, context in
                outerDeadline.append("\(context.deadline.map { "\($0)" } ?? "none")")
                // A nested call with no timeout of its own, through a second client on the same server.
                let reply = try await CourierClient(transport: transport.client).unary(
                    request: ClientRequest(message: request.message),
                    descriptor: innerMethod,
                    serializer: codec,
                    deserializer: codec
                )
                return ServerResponse(message: reply)
            }
            router.registerUnary(forMethod: innerMethod, deserializer: codec, serializer: codec) { request, context in
                innerDeadline.append("\(context.deadline.map { "\($0)" } ?? "none")")
                innerStarted.fire()
                do {
                    try await waitUntilCancelled()
                } catch {
                    innerCancelled.fire()
                    throw error
                }
                return ServerResponse(message: request.message)
            }
        }
        try await withCourierServer(transport: transport.server, services: [service]) { _ in
            let client = CourierClient(transport: transport.client)
            let call = echoCall(client, timeout: .seconds(3))
            await innerStarted.wait()
            #expect(innerDeadline.all == outerDeadline.all)
            #expect(innerDeadline.all.first != "none")
            clock.advance(by: .seconds(3))
            await expectRPCError(.deadlineExceeded) { _ = try await call.value }
            await innerCancelled.wait()
        }
    }

    @Test("A call's own timeout shorter than the inherited deadline wins")
    func ownTimeoutWins() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        let remaining = EventLog()
        let inner = MethodDescriptor(fullyQualifiedService: "echo.Inner", method: "Get")
        let service = ClosureService { router in
            let codec = UTF8Codec()
            router.registerUnary(forMethod: Echo.get, deserializer: codec, serializer: codec) { request, _ in
                let reply = try await CourierClient(transport: transport.client).unary(
                    request: ClientRequest(message: request.message),
                    descriptor: inner,
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .seconds(1))
                )
                return ServerResponse(message: reply)
            }
            router.registerUnary(forMethod: inner, deserializer: codec, serializer: codec) { request, context in
                remaining.append("\(context.timeRemaining.map { "\($0)" } ?? "none")")
                return ServerResponse(message: request.message)
            }
        }
        try await withCourierServer(transport: transport.server, services: [service]) { _ in
            let reply = try await CourierClient(transport: transport.client).unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec,
                options: CallOptions(timeout: .seconds(10))
            )
            #expect(reply == "m")
        }
        #expect(remaining.all == ["1.0 seconds"])
    }

    @Test("A timer cancelled after the call completes never fires late")
    func timersAreCancelled() async throws {
        let clock = ManualRPCClock()
        try await withTestRPC(transport: InMemoryTransport(clock: clock)) { client in
            for _ in 0..<10 {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .seconds(1))
                )
            }
        }
        #expect(clock.pendingTimers == 0)
    }

    // MARK: - With injected faults (the network misbehaving, on the manual clock)

    /// `Echo.get` of "m" with `timeout`, in a task of its own (the test moves the clock meanwhile).
    func echoCall(_ client: CourierClient, timeout: Duration) -> Task<String, any Error> {
        Task {
            try await client.unary(
                request: ClientRequest(message: "m"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec,
                options: CallOptions(timeout: timeout)
            )
        }
    }

    @Test("A response held back past the deadline: DEADLINE_EXCEEDED exactly when the deadline passes")
    func responseDelayedPastDeadline() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.delay(.seconds(10)), at: .responseMessage(1), method: Echo.get)
        try await withTestRPC(transport: transport) { client in
            let call = echoCall(client, timeout: .seconds(2))
            await transport.faults.waitUntilInjected(count: 1)  // the handler answered; the answer is held back
            clock.advance(by: .milliseconds(1_999))
            #expect(transport.faults.injected.count == 1)
            clock.advance(by: .milliseconds(1))
            await expectRPCError(.deadlineExceeded) { _ = try await call.value }
        }
        #expect(clock.pendingTimers == 0)  // the abandoned delay's timer is gone too
    }

    @Test("A delay shorter than the deadline: the call succeeds")
    func delayWithinDeadline() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.delay(.seconds(1)), at: .requestMessage(1), method: Echo.get)
        try await withTestRPC(transport: transport) { client in
            let call = echoCall(client, timeout: .seconds(2))
            await transport.faults.waitUntilInjected(count: 1)
            clock.advance(by: .seconds(1))
            let reply = try await call.value
            #expect(reply == "m")
        }
    }

    @Test("A status lost on the way: the deadline still ends the call, and the server's handler ran once")
    func lostStatus() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.drop, at: .status, method: Echo.get)
        try await withTestRPC(transport: transport) { client in
            let call = echoCall(client, timeout: .seconds(3))
            await transport.faults.waitUntilInjected(count: 1)
            clock.advance(by: .seconds(3))
            await expectRPCError(.deadlineExceeded) { _ = try await call.value }
        }
    }

    @Test("A server stream whose every message is delayed: the deadline cuts it off after the messages that made it")
    func slowStreamCutOff() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.delay(.seconds(1)), at: .everyResponseMessage, method: Echo.expand)
        try await withTestRPC(transport: transport) { client in
            let received = EventLog()
            let (arrivals, arrived) = AsyncStream<Void>.makeStream()
            let call = Task {
                try await client.serverStreaming(
                    request: ClientRequest(message: "a b c d"),
                    descriptor: Echo.expand,
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .milliseconds(2_500))
                ) { response in
                    for try await word in response.messages {
                        received.append(word)
                        arrived.yield()
                    }
                }
            }
            for second in 1...2 {
                await transport.faults.waitUntilInjected(count: second)
                clock.advance(by: .seconds(1))
            }
            // "b" was released at 2 s; the handler must have it before the deadline fires (under
            // ThreadSanitizer it once hadn't, and the deadline cut "b" off).
            var iterator = arrivals.makeAsyncIterator()
            for _ in 1...2 { await iterator.next() }
            await transport.faults.waitUntilInjected(count: 3)
            clock.advance(by: .milliseconds(500))
            await expectRPCError(.deadlineExceeded) { try await call.value }
            #expect(received.all == ["a", "b"])
        }
    }
}

import Courier
import CourierInMemory
import Testing

@Suite("Cancellation from either side")
struct CancellationTests {
    let codec = UTF8Codec()

    /// A bidirectional handler that echoes one message, signals, then waits for cancellation.
    func blockingService(started: Signal, observedCancellation: Signal) -> ClosureService {
        ClosureService { router in
            router.registerBidirectionalStreaming(
                forMethod: Echo.update,
                deserializer: UTF8Codec(),
                serializer: UTF8Codec()
            ) {
                request,
                _ in
                StreamingServerResponse { writer in
                    var iterator = request.messages.makeAsyncIterator()
                    if let first = try await iterator.next() { try await writer.write(first) }
                    started.fire()
                    do {
                        try await waitUntilCancelled()
                    } catch {
                        #expect(Task.isCancelled)
                        observedCancellation.fire()
                        throw error
                    }
                    return [:]
                }
            }
        }
    }

    @Test("Cancelling the calling task mid-stream cancels the RPC on both ends")
    func clientTaskCancellation() async throws {
        let started = Signal()
        let observed = Signal()
        try await withTestRPC(services: [blockingService(started: started, observedCancellation: observed)]) { client in
            let call = Task {
                try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<String> { writer in
                        try await writer.write("first")
                        try await waitUntilCancelled()
                    },
                    descriptor: Echo.update,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                }
            }
            await started.wait()
            call.cancel()
            await expectRPCError(.cancelled) { try await call.value }
            await observed.wait()
        }
    }

    @Test("A task cancelled before the call starts fails with CANCELLED")
    func cancelledBeforeStart() async throws {
        try await withTestRPC { client in
            let call = Task {
                try await waitUntilCancelledIgnoringError()
                return try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            call.cancel()
            await expectRPCError(.cancelled) { _ = try await call.value }
        }
    }

    func waitUntilCancelledIgnoringError() async throws {
        do { try await waitUntilCancelled() } catch {}
    }

    @Test("Leaving the response handler early cancels the rest of the stream on the server")
    func leavingScopeCancels() async throws {
        let started = Signal()
        let observed = Signal()
        try await withTestRPC(services: [blockingService(started: started, observedCancellation: observed)]) { client in
            let first = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { writer in try await writer.write("first") },
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response in
                var iterator = response.messages.makeAsyncIterator()
                return try await iterator.next()
            }
            #expect(first == "first")
            await observed.wait()
        }
    }

    @Test("The server cancelling mid-stream: the client receives what was sent, then CANCELLED")
    func serverCancelsMidStream() async throws {
        let service = ClosureService { router in
            router.registerBidirectionalStreaming(
                forMethod: Echo.update,
                deserializer: UTF8Codec(),
                serializer: UTF8Codec()
            ) {
                request,
                _ in
                StreamingServerResponse { writer in
                    for try await message in request.messages {
                        try await writer.write(message)
                        if message == "stop" { throw RPCError(code: .cancelled, message: "server gave up") }
                    }
                    return [:]
                }
            }
        }
        try await withTestRPC(services: [service]) { client in
            let received = EventLog()
            let producerEnded = Signal()
            let error = await expectRPCError(.cancelled) {
                try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<String> { writer in
                        defer { producerEnded.fire() }
                        try await writer.write("a")
                        try await writer.write("stop")
                        // The server has ended the RPC: writes now fail and end the producer.
                        for i in 0..<1_000_000 { try await writer.write("more \(i)") }
                    },
                    descriptor: Echo.update,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await message in response.messages { received.append(message) }
                }
            }
            #expect(error?.message == "server gave up")
            #expect(received.all == ["a", "stop"])
            await producerEnded.wait()
        }
    }

    @Test("Aborting the server (cancelling run) cancels running handlers; the client sees an error")
    func serverAbort() async throws {
        let started = Signal()
        let observed = Signal()
        let transport = InMemoryTransport()
        let server = CourierServer(
            transport: transport.server,
            services: [blockingService(started: started, observedCancellation: observed)]
        )
        let serverTask = Task { try await server.run() }
        try await withCourierClient(transport: transport.client) { client in
            let call = Task {
                try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<String> { writer in try await writer.write("first") },
                    descriptor: Echo.update,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                }
            }
            await started.wait()
            serverTask.cancel()
            await observed.wait()
            await expectRPCError(.cancelled) { try await call.value }
            try await serverTask.value

            // New RPCs are refused now.
            await expectRPCError(.unavailable) {
                _ = try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
        }
    }

    // MARK: - With injected faults

    @Test("Cancelling a call whose request is held back by a delay ends it at once; the handler never runs")
    func cancelDuringDelay() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.delay(.seconds(30)), at: .open, method: Echo.get)
        let handled = Counter()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                handled.increment()
                return ServerResponse(message: request.message)
            }
        }
        try await withTestRPC(services: [service], transport: transport) { client in
            let call = Task {
                try await client.unary(
                    request: ClientRequest(message: "m"),
                    descriptor: Echo.get,
                    serializer: codec,
                    deserializer: codec
                )
            }
            await transport.faults.waitUntilInjected(count: 1)
            call.cancel()
            await expectRPCError(.cancelled) { _ = try await call.value }
        }
        #expect(handled.current == 0)
        #expect(clock.pendingTimers == 0)
    }

    @Test("RST_STREAM(CANCEL) from the network mid-stream: the client sees CANCELLED, the handler is cancelled")
    func networkReset() async throws {
        let started = Signal()
        let observed = Signal()
        let transport = InMemoryTransport()
        transport.faults.inject(.reset(.cancel), at: .requestMessage(2), method: Echo.update)
        try await withTestRPC(
            services: [blockingService(started: started, observedCancellation: observed)],
            transport: transport
        ) { client in
            let error = await expectRPCError(.cancelled) {
                try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<String> { writer in
                        try await writer.write("first")
                        await started.wait()
                        try await writer.write("second")  // reset here
                    },
                    descriptor: Echo.update,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                }
            }
            #expect(error?.message == "The server cancelled the RPC.")
            await observed.wait()
        }
    }

    @Test("The connection lost mid-stream: the client sees UNAVAILABLE, the handler is cancelled")
    func connectionLost() async throws {
        let started = Signal()
        let observed = Signal()
        let transport = InMemoryTransport()
        try await withTestRPC(
            services: [blockingService(started: started, observedCancellation: observed)],
            transport: transport
        ) { client in
            let call = Task {
                try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<String> { writer in
                        try await writer.write("first")
                        try await waitUntilCancelled()
                    },
                    descriptor: Echo.update,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                }
            }
            await started.wait()
            transport.faults.loseConnection()
            await expectRPCError(.unavailable) { try await call.value }
            await observed.wait()
        }
    }
}

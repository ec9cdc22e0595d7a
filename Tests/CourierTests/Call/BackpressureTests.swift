import Courier
import CourierInMemory
import Testing

@Suite("Backpressure: a slow consumer bounds the producer")
struct BackpressureTests {
    let codec = UTF8Codec()

    /// Spins (yielding, never sleeping) until `condition` holds; fails the test after `limit` turns.
    func eventually(_ limit: Int = 200_000, _ condition: () -> Bool) async -> Bool {
        for _ in 0..<limit {
            if condition() { return true }
            await Task.yield()
        }
        return condition()
    }

    @Test("A server writer suspends while the client doesn't read; buffered messages stay bounded")
    func serverWriterSuspends() async throws {
        let written = Counter()
        let service = ClosureService { router in
            router.registerServerStreaming(forMethod: Echo.expand, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                _,
                _ in
                StreamingServerResponse { writer in
                    for i in 0..<1_000 {
                        try await writer.write("message \(i)")
                        written.increment()
                    }
                    return [:]
                }
            }
        }
        let configuration = InMemoryTransport.Configuration(maxBufferedMessages: 8, maxBufferedBytes: 1 << 20)
        try await withTestRPC(services: [service], transport: InMemoryTransport(configuration: configuration)) {
            client in
            let total = try await client.serverStreaming(
                request: ClientRequest(message: ""),
                descriptor: Echo.expand,
                serializer: codec,
                deserializer: codec
            ) { response in
                var iterator = response.messages.makeAsyncIterator()
                // Don't read: the producer fills the buffer (8 messages, plus the one it waits on).
                #expect(await eventually { written.current >= 8 })
                for _ in 0..<10_000 { await Task.yield() }
                #expect(written.current <= 9, "producer ran ahead: \(written.current) written, none read")

                // Read slowly: the producer never gets more than the bound ahead of the reader.
                var read = 0
                while try await iterator.next() != nil {
                    read += 1
                    #expect(written.current - read <= 9)
                }
                return read
            }
            #expect(total == 1_000)
        }
    }

    @Test("A client writer suspends while the server doesn't read")
    func clientWriterSuspends() async throws {
        let written = Counter()
        let release = Signal()
        let service = ClosureService { router in
            router.registerClientStreaming(forMethod: Echo.collect, deserializer: UTF8Codec(), serializer: UTF8Codec())
            {
                request,
                _ in
                await release.wait()
                var count = 0
                for try await _ in request.messages { count += 1 }
                return ServerResponse(message: "\(count)")
            }
        }
        let configuration = InMemoryTransport.Configuration(maxBufferedMessages: 4, maxBufferedBytes: 1 << 20)
        try await withTestRPC(services: [service], transport: InMemoryTransport(configuration: configuration)) {
            client in
            async let reply = client.clientStreaming(
                request: StreamingClientRequest<String> { writer in
                    for i in 0..<200 {
                        try await writer.write("m\(i)")
                        written.increment()
                    }
                },
                descriptor: Echo.collect,
                serializer: codec,
                deserializer: codec
            ) { try $0.message }
            #expect(await eventually { written.current >= 4 })
            for _ in 0..<10_000 { await Task.yield() }
            #expect(written.current <= 5, "producer ran ahead: \(written.current) written, none read")
            release.fire()
            let collected = try await reply
            #expect(collected == "200")
        }
    }

    @Test("The byte bound holds too: one large message at a time")
    func byteBound() async throws {
        let written = Counter()
        let service = ClosureService { router in
            router.registerServerStreaming(forMethod: Echo.expand, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                _,
                _ in
                StreamingServerResponse { writer in
                    for _ in 0..<20 {
                        try await writer.write(String(repeating: "x", count: 100_000))
                        written.increment()
                    }
                    return [:]
                }
            }
        }
        let configuration = InMemoryTransport.Configuration(maxBufferedMessages: 100, maxBufferedBytes: 150_000)
        try await withTestRPC(services: [service], transport: InMemoryTransport(configuration: configuration)) {
            client in
            try await client.serverStreaming(
                request: ClientRequest(message: ""),
                descriptor: Echo.expand,
                serializer: codec,
                deserializer: codec
            ) { response in
                #expect(await eventually { written.current >= 1 })
                for _ in 0..<10_000 { await Task.yield() }
                // 150 kB allows one 100 kB message buffered and the producer waiting on the second.
                #expect(written.current <= 2)
                var count = 0
                for try await _ in response.messages { count += 1 }
                #expect(count == 20)
            }
        }
    }
}

import Courier
import CourierHTTP2
import Synchronization
import Testing

final class Count: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var current: Int { value.load(ordering: .relaxed) }
}

@Suite("HTTP/2 flow control and stream limits")
struct FlowControlTests {
    @Test("A handler that doesn't read bounds what a fast client can make the server hold")
    func slowReaderBoundsSender() async throws {
        let written = Count()
        let release = AsyncStream<Void>.makeStream()
        let service = BlockingSink(release: release.stream)
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.streamWindowBytes = 64 << 10
        try await withHTTP2(services: [service], serverConfiguration: configuration) { client in
            async let total = client.clientStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    for _ in 0..<2_000 {
                        try await writer.write([UInt8](repeating: 1, count: 1_000))
                        written.increment()
                    }
                },
                descriptor: method("Sink"),
                serializer: codec,
                deserializer: codec
            ) { try $0.message }

            // The client can have 64 KiB in the server's stream window and 64 KiB in its own buffer:
            // about 130 messages of 1,005 framed bytes, nowhere near the 2,000 it wants to send.
            var turns = 0
            while written.current < 100, turns < 2_000_000 {
                await Task.yield()
                turns += 1
            }
            for _ in 0..<20_000 { await Task.yield() }
            #expect(written.current >= 100)
            #expect(written.current <= 140, "wrote \(written.current) messages while the server read none")

            release.continuation.finish()
            let reply = try await total
            #expect(reply == withUnsafeBytes(of: UInt64(2_000).bigEndian) { Array($0) })
        }
    }

    @Test("A request writer that never awaits anything else starves neither its replies nor other calls")
    func writerFairness() async throws {
        // The producer writes small messages in a loop on the client's event loop, where every write takes
        // the fast path and need not suspend. Replies must still arrive early (not after the whole 1 MiB
        // window, ≈50,000 messages), and a unary call made meanwhile must not wait behind the writer.
        let total = 40_000
        let written = Count()
        let (atFirstReply, duringUnary) = try await withHTTP2 { client in
            try await client.bidirectionalStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    for _ in 0..<total {
                        try await writer.write([7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7])
                        written.increment()
                    }
                },
                descriptor: method("Update"),
                serializer: codec,
                deserializer: codec
            ) { response -> (Int, Int) in
                var iterator = response.messages.makeAsyncIterator()
                _ = try await iterator.next()
                let atFirstReply = written.current
                let before = written.current
                let reply = try await client.unary(
                    request: ClientRequest(message: [1]),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == [1])
                let duringUnary = written.current - before
                var replies = 1
                while try await iterator.next() != nil { replies += 1 }
                #expect(replies == total)
                return (atFirstReply, duringUnary)
            }
        }
        #expect(atFirstReply < 5_000, "\(atFirstReply) messages were written before the first reply arrived")
        #expect(duringUnary < 5_000, "\(duringUnary) messages were written while a unary call waited")
    }

    @Test("Streams reset while the server holds their unread messages give that window back to the connection")
    func resetStreamsReturnConnectionWindow() async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.streamWindowBytes = 64 << 10
        configuration.connectionWindowBytes = 160 << 10
        try await withHTTP2(services: [IgnoringSink(), RawEchoService()], serverConfiguration: configuration) {
            client in
            // Four streams, each filling its 64 KiB window with messages the handler never reads, then
            // cancelled: 256 KiB in all, more than the connection's 160 KiB window.
            for _ in 0..<4 {
                let written = Count()
                let call = Task {
                    try await client.clientStreaming(
                        request: StreamingClientRequest<[UInt8]> { writer in
                            while true {
                                try await writer.write([UInt8](repeating: 1, count: 1_000))
                                written.increment()
                            }
                        },
                        descriptor: method("Ignore"),
                        serializer: codec,
                        deserializer: codec
                    ) { try $0.message }
                }
                // 64 KiB in the server's window and up to 64 KiB in the client's buffer: ≈130 messages.
                var turns = 0
                while written.current < 120, turns < 2_000_000 {
                    await Task.yield()
                    turns += 1
                }
                #expect(written.current >= 120, "the stream's window didn't fill: the connection's is used up")
                call.cancel()
                _ = await call.result
            }
            // The connection still carries a request.
            var options = CallOptions.defaults
            options.timeout = .seconds(10)
            let reply = try await client.unary(
                request: ClientRequest(message: [1, 2, 3]),
                descriptor: method("Get"),
                serializer: codec,
                deserializer: codec,
                options: options
            )
            #expect(reply == [1, 2, 3])
        }
    }

    @Test("RPCs beyond the server's MAX_CONCURRENT_STREAMS queue; none fails")
    func concurrencyLimitQueues() async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.maxConcurrentStreams = 4
        try await withHTTP2(serverConfiguration: configuration) { client in
            let ok = try await withThrowingTaskGroup(of: Bool.self, returning: Int.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let message = Array("\(i)".utf8)
                        return try await client.unary(
                            request: ClientRequest(message: message),
                            descriptor: method("Get"),
                            serializer: codec,
                            deserializer: codec
                        ) == message
                    }
                }
                var ok = 0
                for try await matched in group where matched { ok += 1 }
                return ok
            }
            #expect(ok == 200)
        }
    }
}

/// Waits for a release before reading; then counts the messages and answers the count as 8 bytes.
struct BlockingSink: RegistrableRPCService {
    let release: AsyncStream<Void>

    func registerMethods(with router: inout RPCRouter) {
        let release = self.release
        router.registerClientStreaming(forMethod: method("Sink"), deserializer: codec, serializer: codec) {
            request,
            _ in
            for await _ in release {}
            var count = 0
            for try await _ in request.messages { count += 1 }
            return ServerResponse(message: withUnsafeBytes(of: UInt64(count).bigEndian) { Array($0) })
        }
    }
}

/// Never reads its request: waits until the RPC is cancelled, then answers nothing.
struct IgnoringSink: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerClientStreaming(forMethod: method("Ignore"), deserializer: codec, serializer: codec) { _, _ in
            let (forever, continuation) = AsyncStream<Void>.makeStream()
            for await _ in forever {}  // ends when the handler's task is cancelled
            continuation.finish()
            return ServerResponse(message: [])
        }
    }
}

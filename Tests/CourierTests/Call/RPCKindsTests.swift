import Courier
import CourierInMemory
import Testing

@Suite("The four RPC kinds over the in-memory transport")
struct RPCKindsTests {
    let codec = UTF8Codec()

    @Test("Unary")
    func unary() async throws {
        try await withTestRPC { client in
            let reply = try await client.unary(
                request: ClientRequest(message: "hello"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
            #expect(reply == "hello")
        }
    }

    @Test("Server streaming")
    func serverStreaming() async throws {
        try await withTestRPC { client in
            let words = try await client.serverStreaming(
                request: ClientRequest(message: "a b c d"),
                descriptor: Echo.expand,
                serializer: codec,
                deserializer: codec
            ) { response in
                var words: [String] = []
                for try await word in response.messages { words.append(word) }
                return words
            }
            #expect(words == ["a", "b", "c", "d"])
        }
    }

    @Test("Client streaming")
    func clientStreaming() async throws {
        try await withTestRPC { client in
            let request = StreamingClientRequest<String> { writer in
                try await writer.write(contentsOf: ["x", "y", "z"])
            }
            let joined = try await client.clientStreaming(
                request: request,
                descriptor: Echo.collect,
                serializer: codec,
                deserializer: codec
            ) { try $0.message }
            #expect(joined == "x y z")
        }
    }

    @Test("Client streaming with no messages")
    func clientStreamingEmpty() async throws {
        try await withTestRPC { client in
            let joined = try await client.clientStreaming(
                request: StreamingClientRequest<String> { _ in },
                descriptor: Echo.collect,
                serializer: codec,
                deserializer: codec
            ) { try $0.message }
            #expect(joined == "")
        }
    }

    @Test("Bidirectional streaming in lockstep: each response arrives before the next request is sent")
    func bidirectionalLockstep() async throws {
        try await withTestRPC { client in
            let (requests, continuation) = AsyncStream<String>.makeStream()
            let request = StreamingClientRequest<String> { writer in
                for await message in requests { try await writer.write(message) }
            }
            let received = try await client.bidirectionalStreaming(
                request: request,
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response in
                var received: [String] = []
                continuation.yield("ping-0")
                for try await message in response.messages {
                    received.append(message)
                    if received.count < 4 {
                        continuation.yield("ping-\(received.count)")
                    } else {
                        continuation.finish()
                    }
                }
                return received
            }
            #expect(received == ["ping-0", "ping-1", "ping-2", "ping-3"])
        }
    }

    @Test("Bidirectional: the server answers before the client finishes, and the client finishes before reading")
    func bidirectionalIndependentDirections() async throws {
        let service = ClosureService { router in
            let codec = UTF8Codec()
            router.registerBidirectionalStreaming(forMethod: Echo.update, deserializer: codec, serializer: codec) {
                request,
                _ in
                StreamingServerResponse { writer in
                    // Answer before reading anything.
                    try await writer.write("hello first")
                    var count = 0
                    for try await _ in request.messages { count += 1 }
                    try await writer.write("got \(count)")
                    return [:]
                }
            }
        }
        try await withTestRPC(services: [service]) { client in
            let firstArrived = Signal()
            let request = StreamingClientRequest<String> { writer in
                await firstArrived.wait()
                try await writer.write(contentsOf: ["1", "2", "3"])
            }
            let received = try await client.bidirectionalStreaming(
                request: request,
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response in
                var received: [String] = []
                for try await message in response.messages {
                    received.append(message)
                    firstArrived.fire()
                }
                return received
            }
            #expect(received == ["hello first", "got 3"])
        }
    }

    @Test("Empty bidirectional stream: no messages either way")
    func emptyStream() async throws {
        try await withTestRPC { client in
            let count = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { _ in },
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response in
                var count = 0
                for try await _ in response.messages { count += 1 }
                return count
            }
            #expect(count == 0)
        }
    }

    @Test("Large messages pass through the bounded buffers")
    func largeMessages() async throws {
        try await withTestRPC { client in
            let big = String(repeating: "x", count: 1_000_000)
            let reply = try await client.unary(
                request: ClientRequest(message: big),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            )
            #expect(reply.utf8.count == 1_000_000)
        }
    }

    @Test("10,000 concurrent unary RPCs: every one answered, nothing lost")
    func manyConcurrentUnary() async throws {
        try await withTestRPC { client in
            let replies = try await withThrowingTaskGroup(of: (Int, String).self, returning: [Int: String].self) {
                group in
                for i in 0..<10_000 {
                    group.addTask {
                        let reply = try await client.unary(
                            request: ClientRequest(message: "m\(i)"),
                            descriptor: Echo.get,
                            serializer: codec,
                            deserializer: codec
                        )
                        return (i, reply)
                    }
                }
                var replies: [Int: String] = [:]
                for try await (i, reply) in group { replies[i] = reply }
                return replies
            }
            #expect(replies.count == 10_000)
            #expect((0..<10_000).allSatisfy { replies[$0] == "m\($0)" })
        }
    }
}

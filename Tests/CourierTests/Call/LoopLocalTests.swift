import Courier
import CourierInMemory
import Testing

/// A serial executor that runs nothing: only its identity matters to ``LoopLocal``.
private final class IdleExecutor: SerialExecutor {
    func enqueue(_ job: consuming ExecutorJob) {}
}

@Suite("LoopLocal and ServerContext.executor")
struct LoopLocalTests {
    @Test("One value per executor, made once; nil shares one value")
    func perExecutor() {
        let first = IdleExecutor()
        let second = IdleExecutor()
        let made = Counter()
        let table = LoopLocal { executor -> Int in
            _ = made.increment()
            return executor === first ? 1 : executor === second ? 2 : 0
        }
        #expect(table.value(for: first) == 1)
        #expect(table.value(for: second) == 2)
        #expect(table.value(for: first) == 1)
        #expect(table.value(for: nil as (any SerialExecutor)?) == 0)
        #expect(table.value(for: ServerContext(descriptor: Echo.get, peer: "test")) == 0)
        #expect(made.current == 3)
        #expect(table.values == [1, 2, 0])
    }

    @Test("The in-memory transport has no executor: every RPC gets the shared value")
    func inMemory() async throws {
        let table = LoopLocal { executor in executor == nil ? "shared" : "loop" }
        let codec = UTF8Codec()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: codec, serializer: codec) { _, context in
                ServerResponse(message: table.value(for: context) + (context.executor == nil ? "" : "?"))
            }
        }
        let transport = InMemoryTransport()
        let answer = try await withTestRPC(services: [service], transport: transport) { client in
            try await client.unary(
                request: ClientRequest(message: "x"),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            ) { try $0.message }
        }
        #expect(answer == "shared")
    }
}

import Courier
import Synchronization
import Testing

@testable import CourierInMemory

/// Runs every job inline, on the thread that enqueues it: a continuation resumed by the code under
/// test runs to its next suspension before that code goes on, so an ordering race becomes a
/// deterministic order.
private final class InlineTaskExecutor: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        job.runSynchronously(on: asUnownedTaskExecutor())
    }
}

@Suite("InMemoryStreamLink: how a stream ends on both sides")
struct InMemoryStreamLinkTests {
    /// The order inside `reset`: the client's responses fail first (nothing the server writes
    /// afterwards can reach the client ahead of the client's error), then the handler is cancelled,
    /// then the server's reads fail. The old order woke the server's reader first; under CI's load
    /// its handler ended with its own status, which the client read as `CANCELLED` before the
    /// reset reached the client, and the handler never saw a cancellation.
    @Test("A reset fails the client side and cancels the handler before it wakes the server's reader")
    func resetOrder() async throws {
        let link = InMemoryStreamLink(
            configuration: InMemoryTransport.Configuration(),
            faults: InMemoryFaults(),
            clock: .system
        )
        let seenByReader = Mutex<(cancelled: Bool, clientError: RPCError.Code?)?>(nil)
        let reader = Task(executorPreference: InlineTaskExecutor()) {
            do {
                _ = try await link.requests.next()
            } catch {
                // Runs inline inside `reset`, at the moment the reader is woken.
                let clientError: RPCError.Code? = link.responses.failureForTesting.map {
                    ($0 as? RPCError)?.code ?? .unknown
                }
                seenByReader.withLock { $0 = (link.serverCancellation.isCancelled, clientError) }
            }
        }
        // The inline executor ran the reader up to its suspension in `next()` before `Task` returned.
        try #require(link.requests.hasConsumerForTesting)
        link.reset(
            client: RPCError(code: .unavailable, message: "lost"),
            server: RPCError(code: .cancelled, message: "lost")
        )
        await reader.value
        let seen = seenByReader.withLock { $0 }
        #expect(seen?.cancelled == true)
        #expect(seen?.clientError == .unavailable)
    }
}

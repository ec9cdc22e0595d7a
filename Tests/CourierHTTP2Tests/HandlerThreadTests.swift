@_spi(CourierInternals) import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import Synchronization
import Testing

/// Where each piece of user code ran, as thread ids.
private final class ThreadLog: Sendable {
    private let entries = CourierMutex<[(String, pthread_t)]>([])
    func record(_ label: String) { entries.withLock { $0.append((label, pthread_self())) } }
    var all: [(String, pthread_t)] { entries.withLock { $0 } }
}

/// An interceptor as Courier's own targets compile it: `nonisolated(nonsending)`.
private struct NonsendingInterceptor: ServerInterceptor {
    let log: ThreadLog
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        log.record("nonsending interceptor, before next")
        let response = try await next(request, context)
        log.record("nonsending interceptor, after next")
        return response
    }
}

@Suite("Handlers and interceptors run on the event loop that serves the stream")
struct HandlerThreadTests {
    /// The client cancels once it has the first message; the RST_STREAM reaches the server's loop, which
    /// cancels the handler's task and so runs its cancellation handler on the loop's own thread. Every
    /// other record must be on that same thread: no hop between I/O, interceptors and handler.
    /// (The same test, with interceptors and handlers compiled in a package with Swift's default settings,
    /// runs in Tests/UserPackage: `./dev/test-user-package.sh`.)
    @Test("Interceptors, handler and response producer share the loop's thread")
    func sameThread() async throws {
        let log = ThreadLog()
        let gate = Gate()
        let finished = AsyncStream<Void>.makeStream()
        let service = ThreadProbeService(log: log, gate: gate, finished: finished.continuation)
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(
            transport: server,
            services: [service],
            interceptors: [NonsendingInterceptor(log: log), NonsendingInterceptor(log: log)]
        ) { _ in
            let port = try #require(try await server.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                try await client.serverStreaming(
                    request: ClientRequest(message: Array("go".utf8)),
                    descriptor: MethodDescriptor(fullyQualifiedService: "probe.Probe", method: "Stream"),
                    serializer: BytesCodec(),
                    deserializer: BytesCodec()
                ) { response in
                    for try await _ in response.messages { break }  // leaving cancels the RPC
                }
            }
            for await _ in finished.stream { break }
        }
        let records = log.all
        let loopThread = try #require(records.first { $0.0 == "cancellation handler" }?.1)
        #expect(records.count == 9, "\(records.map(\.0))")
        for (label, thread) in records {
            #expect(pthread_equal(thread, loopThread) != 0, "\(label) ran off the loop's thread")
        }
    }
}

private struct ThreadProbeService: RegistrableRPCService {
    let log: ThreadLog
    let gate: Gate
    let finished: AsyncStream<Void>.Continuation

    func registerMethods(with router: inout RPCRouter) {
        let descriptor = MethodDescriptor(fullyQualifiedService: "probe.Probe", method: "Stream")
        router.registerServerStreaming(forMethod: descriptor, deserializer: BytesCodec(), serializer: BytesCodec()) {
            [log, gate, finished] request, _ in
            log.record("handler")
            return StreamingServerResponse { writer in
                defer { finished.yield() }
                log.record("producer")
                try await writer.write(request.message)
                log.record("producer, after write")
                await withTaskCancellationHandler {
                    await gate.wait()
                } onCancel: {
                    log.record("cancellation handler")
                    gate.open()
                }
                log.record("producer, after cancellation")
                throw CancellationError()
            }
        }
    }
}

import Courier
import CourierHTTP2
import Foundation
import KeyValue
import Synchronization
import Testing

/// Opens when told to; waiters resume then.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Bytes in, bytes out.
struct BytesCodec: MessageCodec {
    func serialize(_ message: [UInt8]) throws -> MessageBuffer { MessageBuffer(message) }
    func deserialize(_ buffer: MessageBuffer) throws -> [UInt8] { buffer.withUnsafeBytes { Array($0) } }
}

/// A server-streaming method that writes one message, then waits to be cancelled.
struct ProbeService: RegistrableRPCService {
    let threads: ThreadLog
    let gate = Gate()
    let finished: AsyncStream<Void>.Continuation

    func registerMethods(with router: inout RPCRouter) {
        let descriptor = MethodDescriptor(fullyQualifiedService: "probe.Probe", method: "Stream")
        router.registerServerStreaming(forMethod: descriptor, deserializer: BytesCodec(), serializer: BytesCodec()) {
            [threads, gate, finished] request, _ in
            threads.record("handler")
            return StreamingServerResponse { writer in
                defer { finished.yield() }
                threads.record("producer")
                try await writer.write(request.message)
                threads.record("producer, after write")
                await withTaskCancellationHandler {
                    await gate.wait()
                } onCancel: {
                    threads.record("cancellation handler")
                    gate.open()
                }
                throw CancellationError()
            }
        }
    }
}

/// The generated protocol, implemented by delegating to the app's service and recording threads.
struct RecordingKeyValue: Kv_KeyValue.ServiceProtocol {
    let base = KeyValueService()
    let threads: ThreadLog

    func get(request: ServerRequest<Kv_GetRequest>, context: ServerContext) async throws -> ServerResponse<Kv_Entry> {
        threads.record("get")
        return try await base.get(request: request, context: context)
    }

    func watch(
        request: ServerRequest<Kv_WatchRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Kv_Change> {
        threads.record("watch")
        let response = try await base.watch(request: request, context: context)
        threads.record("watch, after the service")
        return response
    }

    func putMany(
        request: StreamingServerRequest<Kv_Entry>,
        context: ServerContext
    ) async throws -> ServerResponse<Kv_PutSummary> {
        threads.record("putMany")
        let response = try await base.putMany(request: request, context: context)
        threads.record("putMany, after reading")
        return response
    }

    func sync(
        request: StreamingServerRequest<Kv_Command>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Kv_Change> {
        try await base.sync(request: request, context: context)
    }
}

@Suite("User code compiled with default settings runs on the event loop")
struct ThreadTests {
    /// Code in this package is `@concurrent` (no NonisolatedNonsendingByDefault). The RPC's task prefers
    /// the loop that serves the connection, so that code still runs there: the RST_STREAM of the client's
    /// cancellation is handled on the loop's thread, which runs the cancellation handler, and every other
    /// record must be on that same thread.
    @Test("Interceptor, handler and producer share the loop's thread with the transport")
    func sameThread() async throws {
        let threads = ThreadLog()
        let finished = AsyncStream<Void>.makeStream()
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(
            transport: server,
            services: [
                ProbeService(threads: threads, finished: finished.continuation), RecordingKeyValue(threads: threads),
            ],
            interceptors: [APIKeyInterceptor(key: "k", threads: threads)]
        ) { _ in
            let port = try #require(try await server.listeningAddress().port)
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)")
            try await withCourierClient(transport: transport, interceptors: [APIKeyClientInterceptor(key: "k")]) {
                client in
                // A generated handler too (client streaming, then server streaming), before the probe.
                let kv = Kv_KeyValue.Client(wrapping: client)
                _ = try await kv.putMany { writer in try await writer.write(.with { $0.key = "a" }) }
                try await kv.watch(.with { $0.prefix = "a" }) { response in for try await _ in response.messages {} }

                try await client.serverStreaming(
                    request: ClientRequest(message: Array("go".utf8)),
                    descriptor: MethodDescriptor(fullyQualifiedService: "probe.Probe", method: "Stream"),
                    serializer: BytesCodec(),
                    deserializer: BytesCodec()
                ) { response in
                    for try await _ in response.messages { break }  // leaving the scope cancels the RPC
                }
            }
            for await _ in finished.stream { break }
        }
        let records = threads.all
        let loopThread = try #require(records.first { $0.label == "cancellation handler" }?.thread)
        #expect(
            Set(records.map(\.label)).isSuperset(of: [
                "server interceptor", "server interceptor, after next", "putMany", "putMany, after reading", "watch",
                "watch, after the service", "handler", "producer", "producer, after write",
            ])
        )
        for record in records {
            #expect(pthread_equal(record.thread, loopThread) != 0, "\(record.label) ran off the loop's thread")
        }
    }
}

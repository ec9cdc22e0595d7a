@_spi(CourierInternals) import Courier
import CourierTestSupport
import Testing

@testable import CourierHTTP2

@Suite("Handler tasks are reused across RPCs; a cancelled one is not")
struct HandlerReuseTests {
    @Test("Twenty unary RPCs one after another run on one or two tasks, not twenty")
    func sequentialUnaryReusesTask() async throws {
        try await withProbeServer(ProbeService(gate: Gate())) { server, client in
            for _ in 0..<20 {
                let reply = try await askCancelled(client)
                #expect(reply == [0])
            }
            // Each handler has parked before the loop reads the next request (the same loop runs both),
            // so one task serves them all; two allows for a handler still unwinding when the next comes.
            #expect(server.handlerTasksStartedForTesting <= 2)
        }
    }

    /// A parked task must not keep the stream it served: the stream holds its connection, so a parked
    /// task would keep a closed connection's buffers alive until it serves again.
    @Test("A parked task keeps nothing of the RPC it served: the stream is released")
    func parkedTaskReleasesStream() async throws {
        let probe = WeakProbe()
        try await withProbeServer(ProbeService(gate: Gate(), probe: probe)) { _, client in
            for _ in 0..<3 { _ = try await askCancelled(client) }
            // The handler may still be unwinding when the response arrives: wait (bounded, no sleep)
            // until its task has parked and let go.
            let deadline = ContinuousClock.now + .seconds(5)
            while probe.isAlive, ContinuousClock.now < deadline { await Task.yield() }
            #expect(!probe.isAlive, "a parked handler task still holds the last stream it served")
        }
    }

    /// Cancellation is sticky: a task whose RPC was cancelled must not serve another, or the next RPC
    /// would start cancelled.
    @Test("After a cancelled RPC, the next handler does not see a cancelled task")
    func cancelledTaskNotReused() async throws {
        let gate = Gate()
        try await withProbeServer(ProbeService(gate: gate)) { server, client in
            try await client.serverStreaming(
                request: ClientRequest(message: []),
                descriptor: MethodDescriptor(fullyQualifiedService: probeServiceName, method: "WaitForCancel"),
                serializer: BytesCodec(),
                deserializer: BytesCodec()
            ) { response in
                for try await _ in response.messages { break }  // leaving cancels the RPC
            }
            await gate.wait()  // the server's handler saw the cancellation
            for _ in 0..<5 {
                let reply = try await askCancelled(client)
                #expect(reply == [0], "a handler ran on a cancelled task")
            }
            #expect(server.handlerTasksStartedForTesting >= 2)
        }
    }
}

private let probeServiceName = "reuse.Probe"

/// Runs `body` with a client connected over HTTP/2 to a server that serves `service` on a free port.
private func withProbeServer(
    _ service: ProbeService,
    _ body: (HTTP2ServerTransport, CourierClient) async throws -> Void
) async throws {
    let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
    try await withCourierServer(transport: server, services: [service]) { _ in
        let port = try #require(try await server.listeningAddress().port)
        try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
            try await body(server, client)
        }
    }
}

/// Calls `Cancelled`: `[1]` if the handler's task was cancelled, `[0]` if not.
private func askCancelled(_ client: CourierClient) async throws -> [UInt8] {
    try await client.unary(
        request: ClientRequest(message: []),
        descriptor: MethodDescriptor(fullyQualifiedService: probeServiceName, method: "Cancelled"),
        serializer: BytesCodec(),
        deserializer: BytesCodec()
    ) { try $0.message }
}

/// `Cancelled` answers whether its task is cancelled (1) or not (0); `WaitForCancel` sends one message,
/// then waits until it is cancelled and opens the gate.
private struct ProbeService: RegistrableRPCService {
    let gate: Gate
    var probe: WeakProbe? = nil

    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(
            forMethod: MethodDescriptor(fullyQualifiedService: probeServiceName, method: "Cancelled"),
            deserializer: BytesCodec(),
            serializer: BytesCodec()
        ) { [probe] _, context in
            if let probe, let stream = context.transportStream { probe.watch(stream as AnyObject) }
            return ServerResponse(message: [Task.isCancelled ? 1 : 0])
        }
        router.registerServerStreaming(
            forMethod: MethodDescriptor(fullyQualifiedService: probeServiceName, method: "WaitForCancel"),
            deserializer: BytesCodec(),
            serializer: BytesCodec()
        ) { [gate] _, _ in
            StreamingServerResponse { writer in
                try await writer.write([1])
                let never = Gate()
                await withTaskCancellationHandler {
                    await never.wait()
                } onCancel: {
                    never.open()
                }
                gate.open()
                throw CancellationError()
            }
        }
    }
}

/// A weak reference to the last object it was shown.
private final class WeakProbe: Sendable {
    private struct Box: @unchecked Sendable { weak var object: AnyObject? }
    private let box = CourierMutex(Box())
    func watch(_ object: AnyObject) { box.withLock { $0.object = object } }
    var isAlive: Bool { box.withLock { $0.object != nil } }
}

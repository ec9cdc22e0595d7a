// Testing with the in-memory transport: a real server and client in one process, and a manual clock so
// that deadline tests never sleep.
import Courier
import CourierInMemory

struct UTF8Codec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(Array(message.utf8)) }
    func deserialize(_ buffer: MessageBuffer) throws -> String {
        buffer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

let echo = MethodDescriptor(fullyQualifiedService: "demo.Echo", method: "Echo")
let wait = MethodDescriptor(fullyQualifiedService: "demo.Echo", method: "Wait")

struct EchoService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(forMethod: echo, deserializer: UTF8Codec(), serializer: UTF8Codec()) { request, _ in
            ServerResponse(message: request.message)
        }
        router.registerUnary(forMethod: wait, deserializer: UTF8Codec(), serializer: UTF8Codec()) { _, _ in
            try await Task.sleep(for: .seconds(3600))  // until the deadline cancels it
            return ServerResponse(message: "late")
        }
    }
}

// The pair has the semantics of the network: metadata, status, deadlines, cancellation, backpressure.
let pair = InMemoryTransport()
try await withCourierServer(transport: pair.server, services: [EchoService()]) { _ in
    try await withCourierClient(transport: pair.client) { client in
        let reply = try await client.unary(
            request: ClientRequest(message: "ping"),
            descriptor: echo,
            serializer: UTF8Codec(),
            deserializer: UTF8Codec()
        )
        assert(reply == "ping")
    }
}

// Deadlines on a clock the test moves: nothing sleeps.
let clock = ManualRPCClock()
let timed = InMemoryTransport(clock: clock)
try await withCourierServer(transport: timed.server, services: [EchoService()]) { _ in
    try await withCourierClient(transport: timed.client) { client in
        async let outcome: String = client.unary(
            request: ClientRequest(message: "x"),
            descriptor: wait,
            serializer: UTF8Codec(),
            deserializer: UTF8Codec(),
            options: CallOptions(timeout: .seconds(30))
        )
        while clock.pendingTimers == 0 { await Task.yield() }  // the call has armed its deadline
        clock.advance(by: .seconds(30))
        do {
            _ = try await outcome
        } catch let error as RPCError {
            assert(error.code == .deadlineExceeded)
        }
    }
}

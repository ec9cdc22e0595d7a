// Testing failure handling: the in-memory transport injects the faults of a real network (a refused
// stream, a slow or lost response, a lost connection), scripted per method and per attempt.
import Courier
import CourierInMemory

struct UTF8Codec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(Array(message.utf8)) }
    func deserialize(_ buffer: MessageBuffer) throws -> String {
        buffer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

let lookup = MethodDescriptor(fullyQualifiedService: "demo.Inventory", method: "Lookup")

struct InventoryService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(forMethod: lookup, deserializer: UTF8Codec(), serializer: UTF8Codec()) { request, _ in
            ServerResponse(message: "\(request.message): 3 in stock")
        }
    }
}

/// The code under test: a lookup that tries once more when the server is unavailable.
func lookUp(_ item: String, with client: CourierClient) async throws -> String {
    for attempt in 1...2 {
        do {
            return try await client.unary(
                request: ClientRequest(message: item),
                descriptor: lookup,
                serializer: UTF8Codec(),
                deserializer: UTF8Codec(),
                options: CallOptions(timeout: .seconds(5))
            )
        } catch let error as RPCError where error.code == .unavailable && attempt == 1 {
            continue
        }
    }
    throw RPCError(code: .unavailable, message: "unreachable")
}

// Attempt 1 is refused as a server at its stream limit refuses it (RST_STREAM REFUSED_STREAM, which
// the client sees as UNAVAILABLE); attempt 2 goes through.
let transport = InMemoryTransport()
transport.faults.inject(.reset(.refusedStream), at: .open, method: lookup, attempt: 1)
try await withCourierServer(transport: transport.server, services: [InventoryService()]) { _ in
    try await withCourierClient(transport: transport.client) { client in
        let answer = try await lookUp("bolts", with: client)
        precondition(answer == "bolts: 3 in stock")
        precondition(transport.faults.injected.count == 1)
    }
}

// A response held back longer than the deadline, on a clock the test moves: nothing sleeps.
let clock = ManualRPCClock()
let slow = InMemoryTransport(clock: clock)
slow.faults.inject(.delay(.seconds(10)), at: .responseMessage(1), method: lookup)
try await withCourierServer(transport: slow.server, services: [InventoryService()]) { _ in
    try await withCourierClient(transport: slow.client) { client in
        let call = Task { try await lookUp("nuts", with: client) }
        await slow.faults.waitUntilInjected(count: 1)  // the answer is on its way, held back
        clock.advance(by: .seconds(5))  // the call's 5 s deadline passes first
        do {
            _ = try await call.value
            preconditionFailure("the deadline should have ended the call")
        } catch let error as RPCError {
            precondition(error.code == .deadlineExceeded)
        }
    }
}

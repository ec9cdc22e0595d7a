// Deadlines and cancellation: a timeout on the client becomes a deadline on both ends.
// Built by `swift build` with the rest of the package, so the article's code can't rot.
import Courier
import CourierInMemory

/// Strings in, strings out.
struct UTF8Codec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(Array(message.utf8)) }
    func deserialize(_ buffer: MessageBuffer) throws -> String {
        buffer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

let work = MethodDescriptor(fullyQualifiedService: "demo.Worker", method: "Work")

struct Worker: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(forMethod: work, deserializer: UTF8Codec(), serializer: UTF8Codec()) { request, context in
            // What is left of the client's deadline (nil when it set none).
            if let remaining = context.timeRemaining, remaining < .milliseconds(50) {
                throw RPCError(code: .deadlineExceeded, message: "Not enough time left to start.")
            }
            // The handler's task is cancelled when the deadline passes or the client cancels:
            // Task.sleep throws CancellationError, and so does Task.checkCancellation().
            try await Task.sleep(for: .seconds(5))
            return ServerResponse(message: request.message)
        }
    }
}

let transport = InMemoryTransport()
try await withCourierServer(transport: transport.server, services: [Worker()]) { _ in
    try await withCourierClient(transport: transport.client) { client in
        do {
            _ = try await client.unary(
                request: ClientRequest(message: "report"),
                descriptor: work,
                serializer: UTF8Codec(),
                deserializer: UTF8Codec(),
                options: CallOptions(timeout: .milliseconds(200))
            )
        } catch let error as RPCError where error.code == .deadlineExceeded {
            print("gave up after 200 ms: \(error.message)")
        }

        // Cancelling the calling task cancels the RPC on both ends (HTTP/2: RST_STREAM CANCEL).
        let call = Task {
            try await client.unary(
                request: ClientRequest(message: "report"),
                descriptor: work,
                serializer: UTF8Codec(),
                deserializer: UTF8Codec()
            )
        }
        call.cancel()
        do {
            _ = try await call.value
        } catch let error as RPCError where error.code == .cancelled {
            print("cancelled")
        }
    }
}

@_spi(CourierInternals) import Courier
import CourierTestSupport
import Testing

@testable import CourierHTTP2

/// Cancelling the task of a unary call whose response read is parked. On the unary path the HTTP/2 stream
/// parks that read without a cancellation handler of its own (`CallOptions.streamCancelledByCaller`): the
/// call's handler cancels the stream, which must wake the read and reset the stream on the wire.
@Suite("Cancelling a unary call over HTTP/2 while its response is awaited")
struct UnaryCancellationTests {
    /// A unary method that opens `started`, then waits until it is cancelled and opens `cancelled`.
    struct HoldService: RegistrableRPCService {
        let started: Gate
        let cancelled: Gate

        func registerMethods(with router: inout RPCRouter) {
            router.registerUnary(forMethod: method("Hold"), deserializer: codec, serializer: codec) { _, _ in
                started.open()
                await withTaskCancellationHandler {
                    await cancelled.wait()
                } onCancel: {
                    cancelled.open()
                }
                throw CancellationError()
            }
        }
    }

    @Test(
        "The call fails CANCELLED and the server's handler is cancelled; with and without the loop's preference",
        .timeLimit(.minutes(1)),
        arguments: [false, true]
    )
    func cancelWhileReading(preferLoop: Bool) async throws {
        let started = Gate()
        let cancelled = Gate()
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [HoldService(started: started, cancelled: cancelled)])
        {
            _ in
            let port = try #require(try await server.listeningAddress().port)
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)")
            try await withCourierClient(transport: transport) { client in
                let call = Task {
                    let unary = {
                        try await client.unary(
                            request: ClientRequest(message: [1]),
                            descriptor: method("Hold"),
                            serializer: codec,
                            deserializer: codec
                        )
                    }
                    if preferLoop { return try await transport.withExecutorPreference { try await unary() } }
                    return try await unary()
                }
                await started.wait()
                call.cancel()
                do {
                    _ = try await call.value
                    Issue.record("expected CANCELLED")
                } catch let error as RPCError {
                    #expect(error.code == .cancelled)
                }
                // The reset reached the server: its handler was cancelled.
                await cancelled.wait()
            }
        }
    }
}

public import Courier  // PingService conforms to a Courier protocol
internal import SwiftProtobuf

#if canImport(Glibc)
internal import Glibc
#endif

/// `ping.PingService`: `Send` answers with the request's text; `SendStream` answers each request with one
/// response and ends when the client half-closes.
public struct PingService: Ping_PingService.ServiceProtocol {
    /// Creates the service.
    public init() {}

    public func send(
        request: ServerRequest<Ping_Request>,
        context: ServerContext
    ) async throws -> ServerResponse<Ping_Response> {
        ServerResponse(message: .with { $0.msg = request.message.msg })
    }

    public func sendStream(
        request: StreamingServerRequest<Ping_Request>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Ping_Response> {
        StreamingServerResponse { writer in
            for try await message in request.messages {
                try await writer.write(.with { $0.msg = message.msg })
            }
            return [:]
        }
    }
}

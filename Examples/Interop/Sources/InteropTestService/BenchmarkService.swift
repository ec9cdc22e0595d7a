public import Courier  // the service conforms to a Courier service protocol
internal import Foundation
public import GRPCTestingProtos  // the generated protocol it conforms to
internal import SwiftProtobuf

/// `grpc.testing.BenchmarkService` as grpc's own benchmark servers implement it: every response carries a
/// payload of the request's `response_size` zero bytes.
public struct BenchmarkService: Grpc_Testing_BenchmarkService.ServiceProtocol {
    /// Creates the service.
    public init() {}

    static func response(to request: Grpc_Testing_SimpleRequest) -> Grpc_Testing_SimpleResponse {
        .with { $0.payload = .with { $0.body = Data(count: Int(max(0, request.responseSize))) } }
    }

    public func unaryCall(
        request: ServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_SimpleResponse> {
        ServerResponse(message: Self.response(to: request.message))
    }

    /// Ping-pong: one response per request, until the client half-closes.
    public func streamingCall(
        request: StreamingServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Testing_SimpleResponse> {
        StreamingServerResponse { writer in
            for try await message in request.messages { try await writer.write(Self.response(to: message)) }
            return [:]
        }
    }

    /// Consumes every request, then answers once (for the last request's `response_size`).
    public func streamingFromClient(
        request: StreamingServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_SimpleResponse> {
        var last = Grpc_Testing_SimpleRequest()
        for try await message in request.messages { last = message }
        return ServerResponse(message: Self.response(to: last))
    }

    /// Sends responses until the client cancels.
    public func streamingFromServer(
        request: ServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Testing_SimpleResponse> {
        let response = Self.response(to: request.message)
        return StreamingServerResponse { writer in
            while !Task.isCancelled { try await writer.write(response) }
            throw CancellationError()
        }
    }

    /// Both sides send what they like: one response per request here.
    public func streamingBothWays(
        request: StreamingServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Testing_SimpleResponse> {
        try await streamingCall(request: request, context: context)
    }
}

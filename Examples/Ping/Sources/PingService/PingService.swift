public import Courier  // PingService conforms to a Courier protocol
internal import SwiftProtobuf

#if canImport(Glibc)
internal import Glibc
#endif

/// `ping.PingService`: `Send` answers with the request's text; `SendStream` answers each request with one
/// response and ends when the client half-closes; `SendRepeated` answers one request with `count`
/// responses; `SendMany` answers a stream of requests with their texts joined.
///
/// A request's `delay_ms` (at most 10 s) makes the service wait before each answer, and its `fail_code`
/// ends the RPC with that status instead: controls for tests and soaks of a deployment (deadlines that
/// expire, statuses a client must handle), off when zero.
public struct PingService: Ping_PingService.ServiceProtocol {
    /// Creates the service.
    public init() {}

    public func send(
        request: ServerRequest<Ping_Request>,
        context: ServerContext
    ) async throws -> ServerResponse<Ping_Response> {
        try await Self.honour(request.message)
        return ServerResponse(message: .with { $0.msg = request.message.msg })
    }

    public func sendStream(
        request: StreamingServerRequest<Ping_Request>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Ping_Response> {
        StreamingServerResponse { writer in
            for try await message in request.messages {
                try await Self.honour(message)
                try await writer.write(.with { $0.msg = message.msg })
            }
            return [:]
        }
    }

    public func sendRepeated(
        request: ServerRequest<Ping_Request>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Ping_Response> {
        let message = request.message
        guard (0...1000).contains(message.count) else {
            throw RPCError(code: .invalidArgument, message: "count must be 0 to 1000, not \(message.count)")
        }
        try Self.validate(message)
        return StreamingServerResponse { writer in
            for _ in 0..<max(1, Int(message.count)) {
                try await Self.honour(message)
                try await writer.write(.with { $0.msg = message.msg })
            }
            return [:]
        }
    }

    public func sendMany(
        request: StreamingServerRequest<Ping_Request>,
        context: ServerContext
    ) async throws -> ServerResponse<Ping_Response> {
        var texts: [String] = []
        for try await message in request.messages {
            try await Self.honour(message)
            texts.append(message.msg)
        }
        return ServerResponse(message: .with { $0.msg = texts.joined(separator: " ") })
    }

    /// The longest `delay_ms` honoured.
    static let maximumDelayMilliseconds: Int32 = 10_000

    /// Rejects controls out of range with INVALID_ARGUMENT.
    static func validate(_ message: Ping_Request) throws {
        guard (0...maximumDelayMilliseconds).contains(message.delayMs) else {
            throw RPCError(code: .invalidArgument, message: "delay_ms must be 0 to 10000, not \(message.delayMs)")
        }
        guard message.failCode == 0 || Status.Code(rawValue: Int(message.failCode)).flatMap(RPCError.Code.init) != nil
        else {
            throw RPCError(code: .invalidArgument, message: "fail_code must be 1 to 16, not \(message.failCode)")
        }
    }

    /// Validates the request's controls, waits its `delay_ms`, then ends the RPC with its `fail_code`.
    static func honour(_ message: Ping_Request) async throws {
        try validate(message)
        if message.delayMs > 0 { try await Task.sleep(for: .milliseconds(Int(message.delayMs))) }
        if message.failCode != 0, let code = Status.Code(rawValue: Int(message.failCode)).flatMap(RPCError.Code.init) {
            throw RPCError(code: code, message: "asked for by the request (fail_code \(message.failCode))")
        }
    }
}

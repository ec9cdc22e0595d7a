public import Courier  // PingService and the interceptor conform to Courier protocols
public import Logging  // the interceptor takes a Logger
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

/// Logs one line per RPC when it ends: method, status, duration and peer (never metadata, so never
/// tokens). Put it first, so that it sees what later interceptors (such as auth) decide.
public struct RPCLoggingInterceptor: ServerInterceptor {
    private let logger: Logger

    /// Creates the interceptor.
    ///
    /// - Parameter logger: Where the lines go, at `info` (`warning` for server-side failures).
    public init(logger: Logger) {
        self.logger = logger
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        let start = ContinuousClock.now
        let logger = self.logger
        let log: @Sendable (RPCError.Code?) -> Void = { code in
            let elapsed = ContinuousClock.now - start
            let milliseconds = Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
            let serverFault: Set<RPCError.Code> = [.unknown, .internal, .dataLoss]
            logger.log(
                level: code.map(serverFault.contains) == true ? .warning : .info,
                "rpc",
                metadata: [
                    "method": "\(context.descriptor.path)",
                    "status": "\(code.map { "\($0)" } ?? "OK")",
                    "duration_ms": "\((milliseconds * 1000).rounded() / 1000)",
                    "peer": "\(context.peer)",
                ]
            )
        }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            log(RPCError(serverError: error).code)
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            log(error.code)
            return response
        case .success(let contents):
            var logged = contents
            logged.producer = { writer in
                do {
                    let trailers = try await contents.producer(writer)
                    log(nil)
                    return trailers
                } catch {
                    log(RPCError(serverError: error).code)
                    throw error
                }
            }
            var wrapped = response
            wrapped.accepted = .success(logged)
            return wrapped
        }
    }
}

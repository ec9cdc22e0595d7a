/// Wraps every RPC a server serves: sees the request, calls `next`, sees the response or error.
///
/// Interceptors run in the order given to the server: the first sees the request first and the
/// response last. An interceptor can read and change metadata, reject the RPC by throwing an
/// ``RPCError`` before the handler runs, and observe each message by wrapping the request's
/// `messages` or the response's producer.
///
/// ```swift
/// struct AuthInterceptor: ServerInterceptor {
///     func intercept<Input: Sendable, Output: Sendable>(
///         request: StreamingServerRequest<Input>,
///         context: ServerContext,
///         next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
///     ) async throws -> StreamingServerResponse<Output> {
///         guard request.metadata.firstString(forKey: "x-api-key") == "secret" else {
///             throw RPCError(code: .unauthenticated, message: "Missing or wrong API key.")
///         }
///         return try await next(request, context)
///     }
/// }
/// ```
public protocol ServerInterceptor: Sendable {
    /// Intercepts one RPC.
    ///
    /// - Parameters:
    ///   - request: The request: metadata and the messages.
    ///   - context: The RPC's method, peer and deadline.
    ///   - next: The rest of the chain, then the handler. Call it at most once.
    /// - Returns: The response.
    /// - Throws: An ``RPCError`` to fail the RPC.
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output>
}

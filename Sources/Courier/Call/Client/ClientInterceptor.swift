/// Wraps every call a client makes: sees the request, calls `next`, sees the response or error.
///
/// Interceptors run in the order given to the client: the first sees the request first and the
/// response last. An interceptor can change request metadata, reject the call by throwing an
/// ``RPCError`` (the transport never sees it), and observe or change each message by wrapping the
/// request's producer or the response's body.
///
/// ```swift
/// struct RequestIDInterceptor: ClientInterceptor {
///     func intercept<Input: Sendable, Output: Sendable>(
///         request: StreamingClientRequest<Input>,
///         context: ClientContext,
///         next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
///     ) async throws -> StreamingClientResponse<Output> {
///         var request = request
///         request.metadata.addString("42", forKey: "x-request-id")
///         return try await next(request, context)
///     }
/// }
/// ```
public protocol ClientInterceptor: Sendable {
    /// Intercepts one call.
    ///
    /// - Parameters:
    ///   - request: The request: metadata and the producer of its messages.
    ///   - context: The call's method and deadline.
    ///   - next: The rest of the chain, then the transport. Call it at most once.
    /// - Returns: The response; its body has not been read yet.
    /// - Throws: An ``RPCError`` to fail the call.
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output>
}

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
///         next: ServerInterceptorNext<Input, Output>
///     ) async throws -> StreamingServerResponse<Output> {
///         guard request.metadata.firstString(forKey: "x-api-key") == "secret" else {
///             throw RPCError(code: .unauthenticated, message: "Missing or wrong API key.")
///         }
///         return try await next(request, context)
///     }
/// }
/// ```
///
/// Write `next`'s type as ``ServerInterceptorNext``: it compiles the same whether or not your package
/// enables `NonisolatedNonsendingByDefault`. (Spelled out, the type is a `nonisolated(nonsending)`
/// closure: `next` runs on the caller's executor, so calling it costs no executor switch.)
///
/// The interceptor runs on the RPC's task, which the HTTP/2 transport starts on the event loop that owns
/// the connection. An interceptor compiled without `NonisolatedNonsendingByDefault` is `@concurrent`: it
/// still runs on that loop (the task prefers it), at the cost of one executor check when it is entered;
/// mark it `nonisolated(nonsending)`, or enable the feature, to avoid that.
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
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output>
}

/// The rest of a server's interceptor chain, then the handler: the `next` of
/// ``ServerInterceptor/intercept(request:context:next:)``.
///
/// A `nonisolated(nonsending)` closure, spelled out so that conforming types declare the same type
/// whether or not their package enables `NonisolatedNonsendingByDefault`: call it as
/// `try await next(request, context)`, at most once.
public typealias ServerInterceptorNext<Input: Sendable, Output: Sendable> =
    nonisolated(nonsending) (
        StreamingServerRequest<Input>,
        ServerContext
    ) async throws -> StreamingServerResponse<Output>

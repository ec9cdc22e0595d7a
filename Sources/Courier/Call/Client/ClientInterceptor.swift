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
///         next: ClientInterceptorNext<Input, Output>
///     ) async throws -> StreamingClientResponse<Output> {
///         var request = request
///         request.metadata.addString("42", forKey: "x-request-id")
///         return try await next(request, context)
///     }
/// }
/// ```
///
/// Write `next`'s type as ``ClientInterceptorNext``: it compiles the same whether or not your package
/// enables `NonisolatedNonsendingByDefault`. (Spelled out, the type is a `nonisolated(nonsending)`
/// closure: `next` runs on the caller's executor, so calling it costs no executor switch.)
///
/// The interceptor runs on the caller's task. An interceptor compiled without
/// `NonisolatedNonsendingByDefault` is `@concurrent`: called from an actor (the main actor, say), it
/// leaves that actor for the global executor; mark it `nonisolated(nonsending)`, or enable the feature, to
/// stay on the caller's executor.
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
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output>
}

/// The rest of a client's interceptor chain, then the transport: the `next` of
/// ``ClientInterceptor/intercept(request:context:next:)``.
///
/// A `nonisolated(nonsending)` closure, spelled out so that conforming types declare the same type
/// whether or not their package enables `NonisolatedNonsendingByDefault`: call it as
/// `try await next(request, context)`, at most once.
public typealias ClientInterceptorNext<Input: Sendable, Output: Sendable> =
    nonisolated(nonsending) (
        StreamingClientRequest<Input>,
        ClientContext
    ) async throws -> StreamingClientResponse<Output>

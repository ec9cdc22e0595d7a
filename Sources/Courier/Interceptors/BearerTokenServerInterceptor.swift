/// Requires `authorization: Bearer <token>` on every RPC and checks the token with an async validator.
///
/// A missing header, another scheme, a malformed token, or a token the validator rejects ends the RPC
/// with `UNAUTHENTICATED` before the handler runs. A validator may instead throw an ``RPCError`` of its
/// own (say `PERMISSION_DENIED`, or `UNAVAILABLE` when the identity service is down), which is sent as
/// it is; any other error it throws becomes `UNAUTHENTICATED`. Tokens never appear in error messages.
///
/// ```swift
/// let auth = BearerTokenServerInterceptor(validator: .staticTokens(["s3cret"]),
///                                         requiresAuthentication: { $0.service.fullyQualifiedService != "grpc.health.v1.Health" })
/// ```
public struct BearerTokenServerInterceptor: ServerInterceptor {
    /// Decides whether a token is acceptable.
    public struct Validator: Sendable {
        let validate: @Sendable (_ token: String, _ context: ServerContext) async throws -> Bool

        /// Creates a validator from a function.
        ///
        /// - Parameter validate: Returns whether the token is acceptable for the RPC in the context.
        public init(_ validate: @escaping @Sendable (_ token: String, _ context: ServerContext) async throws -> Bool) {
            self.validate = validate
        }

        /// Accepts exactly the given tokens, compared in constant time.
        ///
        /// - Parameter tokens: The acceptable tokens.
        public static func staticTokens(_ tokens: [String]) -> Validator {
            let expected = tokens.map { Array($0.utf8) }
            return Validator { token, _ in
                let candidate = Array(token.utf8)
                var matched = false
                // Compare with every token, so the time taken doesn't say which one matched.
                for token in expected where BearerToken.constantTimeEquals(candidate, token) {
                    matched = true
                }
                return matched
            }
        }
    }

    private let validator: Validator
    private let requiresAuthentication: @Sendable (MethodDescriptor) -> Bool

    /// Creates the interceptor.
    ///
    /// - Parameters:
    ///   - validator: Decides whether a token is acceptable.
    ///   - requiresAuthentication: Whether a method needs a token; every method does by default.
    ///     Exempt, for example, the health service so that probes work without credentials.
    public init(
        validator: Validator,
        requiresAuthentication: @escaping @Sendable (MethodDescriptor) -> Bool = { _ in true }
    ) {
        self.validator = validator
        self.requiresAuthentication = requiresAuthentication
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard requiresAuthentication(context.descriptor) else {
            return try await next(request, context)
        }
        let values = request.metadata[stringValues: "authorization"]
        guard let value = values.first else {
            throw RPCError(code: .unauthenticated, message: "Missing authorization header.")
        }
        guard values.count == 1 else {
            throw RPCError(code: .unauthenticated, message: "More than one authorization header.")
        }
        guard let token = BearerToken.parse(value) else {
            throw RPCError(code: .unauthenticated, message: "The authorization header is not a bearer token.")
        }
        let accepted: Bool
        do {
            accepted = try await validator.validate(token, context)
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .unauthenticated, message: "The bearer token could not be validated.", cause: error)
        }
        guard accepted else {
            throw RPCError(code: .unauthenticated, message: "Invalid bearer token.")
        }
        return try await next(request, context)
    }
}

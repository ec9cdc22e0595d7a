/// Attaches `authorization: Bearer <token>` to every call, with the token from an async provider.
///
/// The provider is asked once per call, so it can refresh tokens as they expire (cache inside it).
/// If it throws, or returns a token that can't be sent in a header, the call fails with
/// `UNAUTHENTICATED` before anything is sent. The token never appears in an error message.
///
/// ```swift
/// let auth = BearerTokenClientInterceptor { try await tokenStore.currentToken() }
/// try await withCourierClient(transport: transport, interceptors: [auth]) { client in ... }
/// ```
public struct BearerTokenClientInterceptor: ClientInterceptor {
    private let tokenProvider: @Sendable () async throws -> String

    /// Creates the interceptor.
    ///
    /// - Parameter tokenProvider: Returns the token to send, without the `Bearer ` scheme.
    public init(tokenProvider: @escaping @Sendable () async throws -> String) {
        self.tokenProvider = tokenProvider
    }

    /// Creates the interceptor with a fixed token.
    ///
    /// - Parameter token: The token to send, without the `Bearer ` scheme.
    public init(token: String) {
        self.init(tokenProvider: { token })
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output> {
        let token: String
        do {
            token = try await tokenProvider()
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .unauthenticated, message: "The bearer token provider failed.", cause: error)
        }
        guard BearerToken.isValid(token) else {
            throw RPCError(code: .unauthenticated, message: "The bearer token provider returned an invalid token.")
        }
        var request = request
        request.metadata.replaceOrAdd(.string("Bearer " + token), forKey: "authorization")
        return try await next(request, context)
    }
}

/// Helpers shared by the bearer-token interceptors.
enum BearerToken {
    /// A token is non-empty printable ASCII without spaces (RFC 6750's token68, loosely).
    static func isValid(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// Extracts the token from an `authorization` value; the scheme is case-insensitive.
    static func parse(_ value: String) -> String? {
        let prefix = "bearer "
        let utf8 = Array(value.utf8)
        guard utf8.count > prefix.utf8.count else { return nil }
        for (index, byte) in prefix.utf8.enumerated() {
            let lowered = (byte >= 0x41 && byte <= 0x5A) ? byte + 0x20 : byte
            let actual = (utf8[index] >= 0x41 && utf8[index] <= 0x5A) ? utf8[index] + 0x20 : utf8[index]
            guard lowered == actual else { return nil }
        }
        var tokenBytes = utf8[prefix.utf8.count...]
        while tokenBytes.first == 0x20 { tokenBytes = tokenBytes.dropFirst() }
        while tokenBytes.last == 0x20 { tokenBytes = tokenBytes.dropLast() }
        let token = String(decoding: tokenBytes, as: UTF8.self)
        return isValid(token) ? token : nil
    }

    /// Compares two byte strings in time that depends only on their lengths, not their contents.
    static func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
        let length = max(lhs.count, rhs.count)
        var left = lhs.makeIterator()
        var right = rhs.makeIterator()
        for _ in 0..<length {
            difference |= (left.next() ?? 0) ^ (right.next() ?? 0)
        }
        return difference == 0
    }
}

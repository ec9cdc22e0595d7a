import CourierInMemory
import Testing

@testable import Courier

@Suite("Bearer-token auth")
struct BearerTokenTests {
    let codec = UTF8Codec()
    static let token = "s3cret-T0ken.value"

    struct RawMetadataInterceptor: ClientInterceptor {
        let value: String?
        func intercept<Input: Sendable, Output: Sendable>(
            request: StreamingClientRequest<Input>,
            context: ClientContext,
            next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
        ) async throws -> StreamingClientResponse<Output> {
            var request = request
            if let value { request.metadata.addString(value, forKey: "authorization") }
            return try await next(request, context)
        }
    }

    func call(
        clientInterceptors: [any ClientInterceptor],
        validator: BearerTokenServerInterceptor.Validator = .staticTokens([token]),
        method: MethodDescriptor = Echo.get,
        handled: Counter = Counter()
    ) async throws -> String {
        let service = ClosureService { router in
            for method in [Echo.get, MethodDescriptor(fullyQualifiedService: "grpc.health.v1.Health", method: "Check")]
            {
                router.registerUnary(forMethod: method, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                    request,
                    _ in
                    handled.increment()
                    return ServerResponse(message: request.message)
                }
            }
        }
        let auth = BearerTokenServerInterceptor(validator: validator) {
            $0.service.fullyQualifiedService != "grpc.health.v1.Health"
        }
        return try await withTestRPC(
            services: [service],
            clientInterceptors: clientInterceptors,
            serverInterceptors: [auth]
        ) { client in
            try await client.unary(
                request: ClientRequest(message: "ok"),
                descriptor: method,
                serializer: codec,
                deserializer: codec
            )
        }
    }

    @Test("A valid token is accepted")
    func accepted() async throws {
        let reply = try await call(clientInterceptors: [BearerTokenClientInterceptor(token: Self.token)])
        #expect(reply == "ok")
    }

    @Test("The token provider is asked for each call")
    func provider() async throws {
        let asked = Counter()
        let interceptor = BearerTokenClientInterceptor {
            asked.increment()
            return Self.token
        }
        _ = try await call(clientInterceptors: [interceptor])
        #expect(asked.current == 1)
    }

    @Test(
        "Missing, malformed and rejected tokens are UNAUTHENTICATED and the handler never runs",
        arguments: [
            nil, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer wrong-token", "bearer s3cret-T0ken.valu",
            "Bearer s3cret-T0ken.value extra", "Token s3cret-T0ken.value",
        ] as [String?]
    )
    func rejected(header: String?) async throws {
        let handled = Counter()
        let error = await expectRPCError(.unauthenticated) {
            _ = try await call(clientInterceptors: [RawMetadataInterceptor(value: header)], handled: handled)
        }
        #expect(handled.current == 0)
        #expect(error?.message.contains(Self.token) == false)
        if let header, !header.isEmpty {
            #expect(error?.message.contains(header) == false)
        }
    }

    @Test("The scheme is case-insensitive")
    func schemeCase() async throws {
        let reply = try await call(clientInterceptors: [RawMetadataInterceptor(value: "bEaReR \(Self.token)")])
        #expect(reply == "ok")
    }

    @Test("Two authorization headers are rejected")
    func twoHeaders() async throws {
        await expectRPCError(.unauthenticated) {
            _ = try await call(clientInterceptors: [
                RawMetadataInterceptor(value: "Bearer \(Self.token)"),
                RawMetadataInterceptor(value: "Bearer other"),
            ])
        }
    }

    @Test("A validator's own RPCError is sent as it is; other errors become UNAUTHENTICATED")
    func validatorErrors() async throws {
        struct Down: Error {}
        await expectRPCError(.unavailable) {
            _ = try await call(
                clientInterceptors: [BearerTokenClientInterceptor(token: Self.token)],
                validator: .init { _, _ in throw RPCError(code: .unavailable, message: "identity service down") }
            )
        }
        await expectRPCError(.unauthenticated) {
            _ = try await call(
                clientInterceptors: [BearerTokenClientInterceptor(token: Self.token)],
                validator: .init { _, _ in throw Down() }
            )
        }
    }

    @Test("Exempt methods need no token")
    func exempt() async throws {
        let reply = try await call(
            clientInterceptors: [],
            method: MethodDescriptor(fullyQualifiedService: "grpc.health.v1.Health", method: "Check")
        )
        #expect(reply == "ok")
    }

    @Test("A failing or invalid token provider fails the call with UNAUTHENTICATED before it is sent")
    func providerFailure() async throws {
        struct NoToken: Error {}
        let handled = Counter()
        await expectRPCError(.unauthenticated) {
            _ = try await call(clientInterceptors: [BearerTokenClientInterceptor { throw NoToken() }], handled: handled)
        }
        await expectRPCError(.unauthenticated) {
            _ = try await call(clientInterceptors: [BearerTokenClientInterceptor(token: "has space")], handled: handled)
        }
        #expect(handled.current == 0)
    }

    @Test("Constant-time comparison is correct")
    func constantTime() {
        #expect(BearerToken.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!BearerToken.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!BearerToken.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!BearerToken.constantTimeEquals(Array("".utf8), Array("a".utf8)))
        #expect(BearerToken.constantTimeEquals([UInt8](), [UInt8]()))
    }

    @Test("Metadata descriptions never print tokens or binary values")
    func descriptionHidesSecrets() {
        var metadata: Metadata = ["x-visible": "yes"]
        metadata.addString("Bearer \(Self.token)", forKey: "Authorization")
        metadata.addBinary(Array("secret".utf8), forKey: "x-key-bin")
        #expect(!metadata.description.contains(Self.token))
        #expect(!metadata.description.contains("secret"))
        #expect(metadata.description.contains("x-visible: yes"))
    }
}

// Interceptors on both sides, and bearer-token auth.
import Courier
import CourierInMemory
import Synchronization

/// Counts RPCs by outcome: sees the request, calls `next`, sees the response or the error.
final class MetricsInterceptor: ServerInterceptor {
    let failures = Mutex<[RPCError.Code: Int]>([:])

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        do {
            return try await next(request, context)
        } catch let error as RPCError {
            failures.withLock { $0[error.code, default: 0] += 1 }
            throw error
        }
    }
}

/// Rejects RPCs without an API key before the handler runs.
struct APIKeyInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard request.metadata.firstString(forKey: "x-api-key") == "secret" else {
            throw RPCError(code: .unauthenticated, message: "Missing or wrong API key.")
        }
        return try await next(request, context)
    }
}

/// Adds metadata to every call.
struct ClientVersionInterceptor: ClientInterceptor {
    let version: Int

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        request.metadata.add("v\(version)", forKey: "x-client-version")
        return try await next(request, context)
    }
}

// Bearer tokens: the client attaches `authorization: Bearer <token>` from a provider; the server checks it
// with a validator (in constant time for static tokens) and answers UNAUTHENTICATED without running the
// handler. The health service stays open for probes.
let serverAuth = BearerTokenServerInterceptor(
    validator: .staticTokens(["s3cret"]),
    requiresAuthentication: { $0.service.fullyQualifiedService != "grpc.health.v1.Health" }
)
let clientAuth = BearerTokenClientInterceptor { try await fetchToken() }

func fetchToken() async throws -> String { "s3cret" }

// Interceptors run in the order given: the first sees the request first and the response last.
let transport = InMemoryTransport()
let server = CourierServer(
    transport: transport.server,
    services: [],
    interceptors: [MetricsInterceptor(), serverAuth, APIKeyInterceptor()]
)
let client = CourierClient(
    transport: transport.client,
    interceptors: [ClientVersionInterceptor(version: 2), clientAuth]
)
_ = (server, client)

@_spi(CourierInternals) public import Courier  // HealthService is a Courier service
internal import Synchronization

/// The standard gRPC health service, `grpc.health.v1.Health`, for load balancers and Kubernetes
/// gRPC probes.
///
/// Add it to a server beside your services, then report each service's status. The empty service name
/// stands for the whole server and starts `SERVING`.
///
/// ```swift
/// let health = HealthService()
/// let server = CourierServer(transport: transport, services: [greeter, health])
/// health.setStatus(.serving, forService: "hello.HelloService")
/// // on SIGTERM, before draining:
/// health.markAllNotServing()
/// ```
///
/// `Check` answers a service's status, or `NOT_FOUND` for a service it has never heard of. `Watch`
/// sends the current status (`SERVICE_UNKNOWN` for an unknown service) and then every change, until the
/// client cancels or the server starts draining.
public final class HealthService: Grpc_Health_V1_Health.ServiceProtocol, Sendable {
    /// A service's health.
    public enum Status: Sendable, Hashable {
        /// Able to serve.
        case serving
        /// Not able to serve (starting, draining, failing).
        case notServing

        var proto: Grpc_Health_V1_HealthCheckResponse.ServingStatus {
            switch self {
            case .serving: .serving
            case .notServing: .notServing
            }
        }
    }

    private struct State {
        var statuses: [String: Status] = ["": .serving]
        var draining = false
        var watchers:
            [UInt64: (
                service: String,
                continuation: AsyncStream<Grpc_Health_V1_HealthCheckResponse.ServingStatus>.Continuation
            )] = [:]
        var nextWatcherID: UInt64 = 0
    }

    private let state = CourierMutex(State())

    /// Creates the service, with the whole server (`""`) `SERVING`.
    public init() {}

    /// Sets a service's status and tells its watchers. Once ``markAllNotServing()`` has been called,
    /// every status stays `NOT_SERVING`.
    ///
    /// - Parameters:
    ///   - status: The status.
    ///   - service: The fully-qualified service name, or `""` for the whole server.
    public func setStatus(_ status: Status, forService service: String) {
        typealias Continuation = AsyncStream<Grpc_Health_V1_HealthCheckResponse.ServingStatus>.Continuation
        let (effective, notify) = state.withLock { state -> (Status, [Continuation]) in
            let effective: Status = state.draining ? .notServing : status
            guard state.statuses[service] != effective else { return (effective, []) }
            state.statuses[service] = effective
            return (effective, state.watchers.values.filter { $0.service == service }.map(\.continuation))
        }
        for continuation in notify { continuation.yield(effective.proto) }
    }

    /// Marks every service `NOT_SERVING` for good, as a server does when it starts draining. Watchers
    /// get `NOT_SERVING`, then their streams end with `UNAVAILABLE`, so that open watches don't hold up a
    /// graceful shutdown.
    public func markAllNotServing() {
        let watchers = state.withLock { state in
            state.draining = true
            for key in state.statuses.keys { state.statuses[key] = .notServing }
            return state.watchers.values.map {
                (known: state.statuses[$0.service] != nil, continuation: $0.continuation)
            }
        }
        for watcher in watchers {
            if watcher.known { watcher.continuation.yield(.notServing) }
            watcher.continuation.finish()
        }
    }

    /// The status of a service, or `nil` if it is unknown.
    ///
    /// - Parameter service: The fully-qualified service name, or `""`.
    public func status(forService service: String) -> Status? {
        state.withLock { $0.statuses[service] }
    }

    public func check(
        request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Health_V1_HealthCheckResponse> {
        guard let status = status(forService: request.message.service) else {
            throw RPCError(code: .notFound, message: "Unknown service '\(request.message.service.prefix(256))'.")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status.proto
        return ServerResponse(message: response)
    }

    public func watch(
        request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Health_V1_HealthCheckResponse> {
        let service = request.message.service
        return StreamingServerResponse { writer in
            let (changes, continuation) = AsyncStream.makeStream(
                of: Grpc_Health_V1_HealthCheckResponse.ServingStatus.self,
                bufferingPolicy: .bufferingNewest(1)
            )
            let id = self.state.withLock { state -> UInt64 in
                if state.draining {
                    continuation.yield(state.statuses[service]?.proto ?? .serviceUnknown)
                    continuation.finish()
                    return 0
                }
                state.nextWatcherID += 1
                state.watchers[state.nextWatcherID] = (service, continuation)
                continuation.yield(state.statuses[service]?.proto ?? .serviceUnknown)
                return state.nextWatcherID
            }
            defer { _ = self.state.withLock { $0.watchers.removeValue(forKey: id) } }
            var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
            for await status in changes where status != last {
                last = status
                var response = Grpc_Health_V1_HealthCheckResponse()
                response.status = status
                try await writer.write(response)
            }
            // Only cancellation and draining end the stream.
            if self.state.withLock({ $0.draining }) {
                throw RPCError(code: .unavailable, message: "The server is shutting down.")
            }
            throw RPCError(code: .cancelled, message: "The watch was cancelled.")
        }
    }
}

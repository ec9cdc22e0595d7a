public import Courier  // wraps CourierServer
public import ServiceLifecycle  // conforms to Service

/// A `CourierServer` as a swift-service-lifecycle `Service`: it serves until the `ServiceGroup` shuts
/// down gracefully (SIGTERM, say), then drains with `beginGracefulShutdown(grace:)`; cancelling the group
/// aborts.
///
/// ```swift
/// let server = CourierServer(transport: transport, services: [Ping()])
/// let group = ServiceGroup(
///     services: [CourierServerService(server, grace: .seconds(20))],
///     gracefulShutdownSignals: [.sigterm, .sigint],
///     logger: logger
/// )
/// try await group.run()
/// ```
///
/// Handlers learn that draining has begun through `ServerContext.isDraining` and
/// `ServerContext.waitForDraining()`, so that a long-lived stream can end instead of holding the drain
/// until the grace period cancels it.
public struct CourierServerService: Service, CustomStringConvertible {
    /// The server.
    public let server: CourierServer
    /// How long running RPCs may take once the graceful shutdown began; `nil`: as long as they take.
    public var grace: Duration?
    /// Called when the graceful shutdown begins, before the server starts draining: mark a health service
    /// `NOT_SERVING`, for instance.
    public var onGracefulShutdown: (@Sendable () -> Void)?

    /// Creates the service.
    ///
    /// - Parameters:
    ///   - server: The server to run.
    ///   - grace: How long running RPCs may take once the graceful shutdown began; `nil`: as long as
    ///     they take.
    ///   - onGracefulShutdown: Called when the graceful shutdown begins, before draining.
    public init(
        _ server: CourierServer,
        grace: Duration? = nil,
        onGracefulShutdown: (@Sendable () -> Void)? = nil
    ) {
        self.server = server
        self.grace = grace
        self.onGracefulShutdown = onGracefulShutdown
    }

    /// Serves until the group's graceful shutdown has drained the server.
    ///
    /// - Throws: The server's error.
    public func run() async throws {
        let server = self.server
        let grace = self.grace
        let onGracefulShutdown = self.onGracefulShutdown
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            onGracefulShutdown?()
            server.beginGracefulShutdown(grace: grace)
        }
    }

    /// `CourierServerService`: the name `ServiceGroup` logs the service by. Without it, the group's
    /// `"\(service)"` describes the struct by reflection, field by field, before the server listens: with
    /// ping-server's two other services that way, ≈0.6 ms of its cold start (Benchmarks/ColdStart).
    public var description: String { "CourierServerService" }
}

/// A `CourierClient` as a swift-service-lifecycle `Service`: it runs the client's connections until the
/// `ServiceGroup` shuts down gracefully, then lets the calls in flight finish
/// (`beginGracefulShutdown()`); cancelling the group closes the connections at once.
///
/// ```swift
/// let client = CourierClient(transport: try .http2(target: "dns:///ping.example.com:443"))
/// let group = ServiceGroup(
///     services: [CourierClientService(client), worker],
///     gracefulShutdownSignals: [.sigterm],
///     logger: logger
/// )
/// ```
///
/// Put the client before the services that use it: the group shuts services down in reverse order, so
/// they stop calling before the client stops.
public struct CourierClientService: Service, CustomStringConvertible {
    /// The client.
    public let client: CourierClient

    /// Creates the service.
    ///
    /// - Parameter client: The client to run.
    public init(_ client: CourierClient) {
        self.client = client
    }

    /// Runs the client until the group's graceful shutdown has let its calls finish.
    ///
    /// - Throws: The transport's error.
    public func run() async throws {
        let client = self.client
        try await withGracefulShutdownHandler {
            try await client.run()
        } onGracefulShutdown: {
            client.beginGracefulShutdown()
        }
    }

    /// `CourierClientService`: the name `ServiceGroup` logs the service by (cheaper than reflection).
    public var description: String { "CourierClientService" }
}

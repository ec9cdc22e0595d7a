internal import Synchronization

/// A gRPC client: makes RPCs of the four kinds over a ``ClientTransport``.
///
/// A client lives in a structured scope. ``withCourierClient(transport:interceptors:isolation:_:)``
/// runs one for the duration of a closure; or call ``run()`` from a task group (or a service group)
/// and ``beginGracefulShutdown()`` when done.
///
/// ```swift
/// try await withCourierClient(transport: transport) { client in
///     let reply = try await client.unary(
///         request: ClientRequest(message: "hi"),
///         descriptor: sayHello, serializer: codec, deserializer: codec
///     )
/// }
/// ```
///
/// Generated clients wrap these methods with one typed method per RPC. Every call honours its
/// ``CallOptions/timeout`` and the deadline inherited from the RPC being served; cancelling the calling
/// task cancels the RPC on both ends and the call throws `CANCELLED`.
public final class CourierClient: Sendable {
    /// How a client treats its calls beyond their own options: the service config, and the memory
    /// retries may use.
    public struct Configuration: Sendable {
        /// Per-method settings, retries and hedging, throttling, and the load-balancing policy handed
        /// to the transport.
        public var serviceConfig: ServiceConfig
        /// The most request bytes one call keeps for replaying to later attempts; a call whose request
        /// grows past it is committed to the attempt it is on (gRFC A6). Default 256 KiB, as in grpc-go
        /// and grpc C++.
        public var retryBufferBytesPerRPC: Int
        /// The most request bytes all calls of the client keep for replay together; a call that finds
        /// no room is committed to its current attempt. Default 16 MiB, as in grpc-java.
        public var retryBufferBytes: Int

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - serviceConfig: See ``serviceConfig``.
        ///   - retryBufferBytesPerRPC: See ``retryBufferBytesPerRPC``.
        ///   - retryBufferBytes: See ``retryBufferBytes``.
        public init(
            serviceConfig: ServiceConfig = ServiceConfig(),
            retryBufferBytesPerRPC: Int = 256 * 1024,
            retryBufferBytes: Int = 16 * 1024 * 1024
        ) {
            self.serviceConfig = serviceConfig
            self.retryBufferBytesPerRPC = retryBufferBytesPerRPC
            self.retryBufferBytes = retryBufferBytes
        }

        /// No service config; the default retry buffers.
        public static var defaults: Configuration { Configuration() }
    }

    private enum State {
        case notStarted
        case running
        case stopping
        case stopped
    }

    @usableFromInline let transport: any ClientTransport
    /// The interceptors of every call, when none is conditional.
    private let interceptors: [any ClientInterceptor]
    /// Conditional interceptors, resolved per method on first use.
    private let conditional: ConditionalClientInterceptors?
    private let methodConfigs: MethodConfigTable?
    private let retry: RetryEnvironment
    private let state = CourierMutex(State.notStarted)

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - transport: How RPCs reach the server.
    ///   - interceptors: Applied to every call, first to last.
    public convenience init(transport: some ClientTransport, interceptors: [any ClientInterceptor] = []) {
        self.init(
            transport: transport,
            interceptors: interceptors.map { .apply($0, to: .all) },
            validated: .defaults,
            random: { Double.random(in: 0..<1) }
        )
    }

    /// Creates a client whose interceptors apply to some methods only.
    ///
    /// - Parameters:
    ///   - transport: How RPCs reach the server.
    ///   - interceptors: Applied, first to last, to the methods of their subjects.
    public convenience init(
        transport: some ClientTransport,
        interceptors: [ConditionalInterceptor<any ClientInterceptor>]
    ) {
        self.init(
            transport: transport,
            interceptors: interceptors,
            validated: .defaults,
            random: { Double.random(in: 0..<1) }
        )
    }

    /// Creates a client with a configuration, such as a ``ServiceConfig``.
    ///
    /// The service config's load-balancing policies go to the transport
    /// (``ClientTransport/applyLoadBalancingConfig(_:)``); its method configs apply to each call under
    /// the call's own ``CallOptions``.
    ///
    /// - Parameters:
    ///   - transport: How RPCs reach the server.
    ///   - interceptors: Applied, first to last, to the methods of their subjects.
    ///   - configuration: The service config and retry buffers.
    /// - Throws: ``RuntimeError`` with code ``RuntimeError/Code/invalidConfiguration`` if the service
    ///   config is invalid (see ``ServiceConfig/validate()``) or a buffer size is negative.
    public convenience init(
        transport: some ClientTransport,
        interceptors: [ConditionalInterceptor<any ClientInterceptor>] = [],
        configuration: Configuration
    ) throws(RuntimeError) {
        try configuration.serviceConfig.validate()
        guard configuration.retryBufferBytes >= 0, configuration.retryBufferBytesPerRPC >= 0 else {
            throw .invalidConfig("retry buffer sizes must not be negative.")
        }
        self.init(
            transport: transport,
            interceptors: interceptors,
            validated: configuration,
            random: { Double.random(in: 0..<1) }
        )
    }

    /// Creates a client from a validated configuration, with the backoff's source of randomness.
    init(
        transport: some ClientTransport,
        interceptors: [ConditionalInterceptor<any ClientInterceptor>],
        validated configuration: Configuration,
        random: @escaping @Sendable () -> Double
    ) {
        self.transport = transport
        if interceptors.allSatisfy(\.subject.isAll) {
            self.interceptors = Courier.interceptors(interceptors, applyingTo: nil)
            self.conditional = nil
        } else {
            self.interceptors = []
            self.conditional = ConditionalClientInterceptors(interceptors)
        }
        let service = configuration.serviceConfig
        self.methodConfigs = service.methodConfig.isEmpty ? nil : MethodConfigTable(service.methodConfig)
        self.retry = RetryEnvironment(
            throttle: service.retryThrottling.map(RetryThrottle.init),
            budget: RetryBufferBudget(bytes: configuration.retryBufferBytes),
            perRPCBufferBytes: configuration.retryBufferBytesPerRPC,
            random: random
        )
        transport.applyLoadBalancingConfig(service.loadBalancingConfig)
    }

    /// A call's options under its method config, its retry or hedging policy, and its interceptors.
    private func prepare(
        _ descriptor: MethodDescriptor,
        _ options: CallOptions
    ) -> (CallOptions, RetryStateMachine.Policy?, [any ClientInterceptor]) {
        let interceptors = conditional?.interceptors(for: descriptor) ?? self.interceptors
        guard let methodConfigs, let config = methodConfigs.config(for: descriptor) else {
            return (options, nil, interceptors)
        }
        let policy: RetryStateMachine.Policy? =
            switch config.executionPolicy {
            case nil: nil
            case .retry(let retry): .retry(retry)
            case .hedging(let hedging): .hedging(hedging)
            }
        return (options.applying(config), policy, interceptors)
    }

    /// Runs the transport's connection management until ``beginGracefulShutdown()`` has been called
    /// and every RPC has finished. Cancelling the calling task closes every connection.
    ///
    /// - Throws: ``RuntimeError`` ``RuntimeError/Code/clientIsAlreadyRunning`` if the client is running or
    ///   has run; the transport's error if it fails as a whole. Returns at once if the client was shut
    ///   down before it ran.
    public func run() async throws {
        let old = state.withLock { state -> State in
            let old = state
            if case .notStarted = old { state = .running }
            return old
        }
        switch old {
        case .notStarted:
            break
        case .running:
            throw RuntimeError(code: .clientIsAlreadyRunning, message: "The client is already running.")
        case .stopping, .stopped:
            // Shut down before it ran: nothing to do.
            return
        }
        defer { state.withLock { $0 = .stopped } }
        try await transport.connect()
    }

    /// Stops new RPCs (they fail with `UNAVAILABLE`); RPCs in flight finish, then ``run()`` returns.
    public func beginGracefulShutdown() {
        state.withLock { state in
            switch state {
            case .notStarted, .stopped: state = .stopped
            case .running, .stopping: state = .stopping
            }
        }
        transport.beginGracefulShutdown()
    }

    private func checkAcceptingRPCs() throws(RPCError) {
        let accepting = state.withLock { state in
            switch state {
            case .notStarted, .running: true
            case .stopping, .stopped: false
            }
        }
        guard accepting else {
            throw RPCError(code: .unavailable, message: "The client has been shut down.")
        }
    }

    /// Makes a unary call: one request message, one response message.
    ///
    /// - Parameters:
    ///   - request: The request.
    ///   - descriptor: The method.
    ///   - serializer: Serializes the request.
    ///   - deserializer: Deserializes the response.
    ///   - options: Timeout and limits.
    ///   - handler: Receives the response, successful or not, and returns the call's result.
    /// - Returns: What `handler` returns.
    /// - Throws: What `handler` throws, or an ``RPCError`` if the call could not be started.
    @inlinable
    public func unary<Request: Sendable, Response: Sendable, Result: Sendable>(
        request: ClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        options: CallOptions = .defaults,
        onResponse handler: @Sendable (ClientResponse<Response>) async throws -> Result
    ) async throws -> Result {
        // Inlinable down to the transport (DesignNotes/Performance.md, "A unary path specialised in the
        // caller's module"): a generated client specialises the plain path for its message types, so a call
        // instantiates no generic metadata; calls with interceptors or a retry policy go to the general path.
        let prepared = try prepareUnary(descriptor, options)
        if prepared.isPlain {
            return try await ClientRPCExecutor.executeUnary(
                request: request,
                descriptor: descriptor,
                serializer: serializer,
                deserializer: deserializer,
                options: prepared.options,
                transport: transport,
                handler: handler
            )
        }
        return try await unaryThroughInterceptors(
            request: request,
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            prepared: prepared,
            handler: handler
        )
    }

    /// A unary call's options after its method config, and whether it takes the plain path (no
    /// interceptor, no retry policy).
    @usableFromInline
    struct PreparedCall {
        @usableFromInline let options: CallOptions
        let policy: RetryStateMachine.Policy?
        let interceptors: [any ClientInterceptor]
        @usableFromInline var isPlain: Bool { policy == nil && interceptors.isEmpty }
    }

    /// Checks the client accepts RPCs and applies the method config.
    @usableFromInline
    func prepareUnary(_ descriptor: MethodDescriptor, _ options: CallOptions) throws(RPCError) -> PreparedCall {
        try checkAcceptingRPCs()
        let (options, policy, interceptors) = prepare(descriptor, options)
        return PreparedCall(options: options, policy: policy, interceptors: interceptors)
    }

    /// A unary call through interceptors or a retry policy: the streaming shapes, collected.
    @usableFromInline
    func unaryThroughInterceptors<Request: Sendable, Response: Sendable, Result: Sendable>(
        request: ClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        prepared: PreparedCall,
        handler: (ClientResponse<Response>) async throws -> Result
    ) async throws -> Result {
        try await execute(
            request: StreamingClientRequest(request),
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            options: prepared.options,
            policy: prepared.policy,
            producerMode: .beforeResponse,
            interceptors: prepared.interceptors
        ) { response in
            try await handler(ClientResponse(collecting: response))
        }
    }

    /// Runs a call through the retrying executor if it has a policy, else the plain one.
    private func execute<Request: Sendable, Response: Sendable, Result: Sendable>(
        request: StreamingClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        options: CallOptions,
        policy: RetryStateMachine.Policy?,
        producerMode: ClientRPCExecutor.ProducerMode,
        interceptors: [any ClientInterceptor],
        handler: (StreamingClientResponse<Response>) async throws -> Result
    ) async throws -> Result {
        if let policy {
            return try await ClientRPCExecutor.executeWithPolicy(
                request: request,
                descriptor: descriptor,
                serializer: serializer,
                deserializer: deserializer,
                options: options,
                policy: policy,
                transport: transport,
                interceptors: interceptors,
                environment: retry,
                handler: handler
            )
        }
        return try await ClientRPCExecutor.execute(
            request: request,
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            options: options,
            producerMode: producerMode,
            transport: transport,
            interceptors: interceptors,
            handler: handler
        )
    }

    /// Makes a unary call and returns the response message.
    ///
    /// - Parameters:
    ///   - request: The request.
    ///   - descriptor: The method.
    ///   - serializer: Serializes the request.
    ///   - deserializer: Deserializes the response.
    ///   - options: Timeout and limits.
    /// - Returns: The response message.
    /// - Throws: ``RPCError`` if the call failed.
    @inlinable
    public func unary<Request: Sendable, Response: Sendable>(
        request: ClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        options: CallOptions = .defaults
    ) async throws -> Response {
        try await unary(
            request: request,
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            options: options
        ) { try $0.message }
    }

    /// Makes a client-streaming call: the request's producer writes messages, one response comes back.
    ///
    /// - Parameters:
    ///   - request: The request and its producer.
    ///   - descriptor: The method.
    ///   - serializer: Serializes the requests.
    ///   - deserializer: Deserializes the response.
    ///   - options: Timeout and limits.
    ///   - handler: Receives the response, successful or not, and returns the call's result.
    /// - Returns: What `handler` returns.
    /// - Throws: What `handler` throws, or an ``RPCError`` if the call could not be made.
    public func clientStreaming<Request: Sendable, Response: Sendable, Result: Sendable>(
        request: StreamingClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        options: CallOptions = .defaults,
        onResponse handler: @Sendable (ClientResponse<Response>) async throws -> Result
    ) async throws -> Result {
        try checkAcceptingRPCs()
        let (options, policy, interceptors) = prepare(descriptor, options)
        return try await execute(
            request: request,
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            options: options,
            policy: policy,
            producerMode: .beforeResponse,
            interceptors: interceptors
        ) { response in
            try await handler(ClientResponse(collecting: response))
        }
    }

    /// Makes a server-streaming call: one request message, a stream of responses.
    ///
    /// - Parameters:
    ///   - request: The request.
    ///   - descriptor: The method.
    ///   - serializer: Serializes the request.
    ///   - deserializer: Deserializes the responses.
    ///   - options: Timeout and limits.
    ///   - handler: Consumes the response stream; the RPC is cancelled if it returns before the end.
    /// - Returns: What `handler` returns.
    /// - Throws: What `handler` throws, or an ``RPCError`` if the call could not be made.
    public func serverStreaming<Request: Sendable, Response: Sendable, Result: Sendable>(
        request: ClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        options: CallOptions = .defaults,
        onResponse handler: @Sendable (StreamingClientResponse<Response>) async throws -> Result
    ) async throws -> Result {
        try checkAcceptingRPCs()
        let (options, policy, interceptors) = prepare(descriptor, options)
        return try await execute(
            request: StreamingClientRequest(request),
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            options: options,
            policy: policy,
            producerMode: .beforeResponse,
            interceptors: interceptors,
            handler: handler
        )
    }

    /// Makes a bidirectional-streaming call: the request's producer and `handler` run concurrently, so
    /// either side may send before the other finishes.
    ///
    /// - Important: `handler` starts once the server has sent its response headers. Many servers
    ///   (grpcio's among them) send them only with their first response message, so a producer must not
    ///   wait for `handler` before writing the first request.
    ///
    /// - Parameters:
    ///   - request: The request and its producer.
    ///   - descriptor: The method.
    ///   - serializer: Serializes the requests.
    ///   - deserializer: Deserializes the responses.
    ///   - options: Timeout and limits.
    ///   - handler: Consumes the response stream; the RPC is cancelled if it returns before the end.
    /// - Returns: What `handler` returns.
    /// - Throws: What `handler` throws, or an ``RPCError`` if the call could not be made.
    public func bidirectionalStreaming<Request: Sendable, Response: Sendable, Result: Sendable>(
        request: StreamingClientRequest<Request>,
        descriptor: MethodDescriptor,
        serializer: some MessageSerializer<Request>,
        deserializer: some MessageDeserializer<Response>,
        options: CallOptions = .defaults,
        onResponse handler: @Sendable (StreamingClientResponse<Response>) async throws -> Result
    ) async throws -> Result {
        try checkAcceptingRPCs()
        let (options, policy, interceptors) = prepare(descriptor, options)
        return try await execute(
            request: request,
            descriptor: descriptor,
            serializer: serializer,
            deserializer: deserializer,
            options: options,
            policy: policy,
            producerMode: .concurrent,
            interceptors: interceptors,
            handler: handler
        )
    }
}

/// Runs a client for the duration of `body`, then shuts it down gracefully.
///
/// The client's ``CourierClient/run()`` runs in a child task. When `body` returns, new RPCs are refused
/// and this function returns once the transport has closed. If `body` throws, the client is aborted.
///
/// - Parameters:
///   - transport: How RPCs reach the server.
///   - interceptors: Applied to every call, first to last.
///   - isolation: The caller's actor, inferred.
///   - body: Makes RPCs with the client.
/// - Returns: What `body` returns.
public func withCourierClient<Result: Sendable>(
    transport: some ClientTransport,
    interceptors: [any ClientInterceptor] = [],
    isolation: isolated (any Actor)? = #isolation,
    _ body: (CourierClient) async throws -> Result
) async throws -> Result {
    try await withCourierClient(client: CourierClient(transport: transport, interceptors: interceptors), body)
}

/// Runs a client with a configuration (a ``ServiceConfig``, say) for the duration of `body`, then shuts
/// it down gracefully.
///
/// - Parameters:
///   - transport: How RPCs reach the server.
///   - interceptors: Applied, first to last, to the methods of their subjects.
///   - configuration: The service config and retry buffers.
///   - isolation: The caller's actor, inferred.
///   - body: Makes RPCs with the client.
/// - Returns: What `body` returns.
/// - Throws: ``RuntimeError`` for an invalid configuration, before anything runs; else what `body` throws.
public func withCourierClient<Result: Sendable>(
    transport: some ClientTransport,
    interceptors: [ConditionalInterceptor<any ClientInterceptor>] = [],
    configuration: CourierClient.Configuration,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (CourierClient) async throws -> Result
) async throws -> Result {
    let client = try CourierClient(transport: transport, interceptors: interceptors, configuration: configuration)
    return try await withCourierClient(client: client, body)
}

private func withCourierClient<Result: Sendable>(
    client: CourierClient,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (CourierClient) async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
        group.addTask { try await client.run() }
        do {
            let result = try await body(client)
            client.beginGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

extension ClientResponse {
    /// Collects a streaming response that must carry exactly one message.
    init(collecting response: StreamingClientResponse<Message>) async {
        switch response.accepted {
        case .failure(let error):
            self.init(accepted: .failure(error))
        case .success(let contents):
            do {
                var message: Message?
                var trailers: Metadata = [:]
                for try await part in contents.bodyParts {
                    switch part {
                    case .message(let received):
                        guard message == nil else {
                            throw RPCError.moreThanOneMessage(.response)
                        }
                        message = received
                    case .trailingMetadata(let received):
                        trailers = received
                    }
                }
                guard let message else {
                    throw RPCError.noMessage(.response)
                }
                self.init(
                    accepted: .success(
                        Contents(metadata: contents.metadata, message: message, trailingMetadata: trailers)
                    )
                )
            } catch let error as RPCError {
                self.init(accepted: .failure(error))
            } catch {
                self.init(accepted: .failure(.readingResponseFailed(error)))
            }
        }
    }
}

/// A client's conditional interceptors, resolved per method the first time it is called.
final class ConditionalClientInterceptors: Sendable {
    private let all: [ConditionalInterceptor<any ClientInterceptor>]
    private let cache = CourierMutex<[String: [any ClientInterceptor]]>([:])

    init(_ all: [ConditionalInterceptor<any ClientInterceptor>]) { self.all = all }

    func interceptors(for descriptor: MethodDescriptor) -> [any ClientInterceptor] {
        if let cached = cache.withLock({ $0[descriptor.path] }) { return cached }
        let resolved = Courier.interceptors(all, applyingTo: descriptor)
        cache.withLock { $0[descriptor.path] = resolved }
        return resolved
    }
}
